"""Scheduler: nodeSelector, taints and tolerations, spread, unschedulable status."""

from __future__ import annotations

import pytest

from testbed.controller.scheduler import fit, tolerates
from testbed.store.keys import spec_key
from testbed.store.memory import MemoryStore

from .helpers import make_config, pod, pods, put, reconcile, setup_store, status

CP = "node-role.kubernetes.io/control-plane"


def node_of(store, name: str) -> str | None:
    return pods(store)[name]["spec"].get("nodeName")


def test_spread_over_workers_in_node_order(store):
    for i in range(5):
        put(store, pod(f"p{i}"))
    reconcile(store)
    assert [node_of(store, f"p{i}") for i in range(5)] == [
        "worker1", "worker2", "worker1", "worker2", "worker1"]


def test_spread_counts_existing_pods_but_not_terminating_ones(store):
    put(store, pod("a", nodeName="worker1"))
    put(store, pod("b", nodeName="worker1"))
    gone = pod("c", nodeName="worker2")
    gone["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    put(store, gone)
    put(store, pod("new"))
    reconcile(store)
    assert node_of(store, "new") == "worker2"


def test_node_selector(store):
    put(store, pod("p", nodeSelector={"zone": "b"}))
    reconcile(store)
    assert node_of(store, "p") == "worker2"


def test_unschedulable_status_and_later_binding(store):
    put(store, pod("p", nodeSelector={"zone": "c"}))
    reconcile(store)
    assert node_of(store, "p") is None
    assert status(store, "Pod", "p") == {"phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/3 nodes match nodeSelector zone=c"}]}
    assert reconcile(store) == [], "the same verdict is not rewritten"
    # Label a node zone=c: the pod gets bound and our verdict is replaced.
    kv = store.get(spec_key("Node", None, "worker2"))
    node = kv.value
    node["metadata"]["labels"]["zone"] = "c"
    store.put(kv.key, node)
    reconcile(store)
    assert node_of(store, "p") == "worker2"
    assert status(store, "Pod", "p")["conditions"][0] == {"type": "PodScheduled",
                                                          "status": "True"}


def test_control_plane_taint_needs_toleration(store):
    put(store, pod("p", nodeSelector={CP: ""}))
    put(store, pod("q", nodeSelector={CP: ""},
                   tolerations=[{"key": CP, "operator": "Exists", "effect": "NoSchedule"}]))
    reconcile(store)
    assert node_of(store, "p") is None
    msg = status(store, "Pod", "p")["conditions"][0]["message"]
    assert msg.startswith("0/3 nodes are available: ")
    assert f"1 node(s) had untolerated taint {CP}:NoSchedule" in msg
    assert "2 node(s) didn't match nodeSelector" in msg
    assert node_of(store, "q") == "control-plane"


@pytest.mark.parametrize(("toleration", "ok"), [
    ({"operator": "Exists"}, True),
    ({"key": "k", "operator": "Exists"}, True),
    ({"key": "k", "value": "v"}, True),
    ({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}, True),
    ({"key": "k", "value": "w"}, False),
    ({"key": "other", "operator": "Exists"}, False),
    ({"key": "k", "operator": "Exists", "effect": "NoExecute"}, False),
    ({"value": "v"}, False),
])
def test_toleration_matching(toleration, ok):
    assert tolerates([toleration], {"key": "k", "value": "v", "effect": "NoSchedule"}) is ok


def test_single_node_cluster_schedules_on_control_plane():
    store = MemoryStore()
    setup_store(store, make_config(workers=0))
    put(store, pod("p"))
    reconcile(store)
    assert node_of(store, "p") == "control-plane"


def test_host_network_pod_is_scheduled_like_any_other(store):
    put(store, pod("h", hostNetwork=True))
    reconcile(store)
    assert node_of(store, "h") == "worker1"


def test_cordoned_and_user_tainted_nodes_are_skipped(store):
    reconcile(store)
    for name, change in (("worker1", {"unschedulable": True}),
                         ("worker2", {"taints": [{"key": "gpu", "effect": "NoExecute"}]})):
        kv = store.get(spec_key("Node", None, name))
        kv.value["spec"].update(change)
        store.put(kv.key, kv.value)
    put(store, pod("p"))
    reconcile(store)
    msg = status(store, "Pod", "p")["conditions"][0]["message"]
    assert "1 node(s) were unschedulable" in msg
    assert "1 node(s) had untolerated taint gpu:NoExecute" in msg


def test_fit_without_nodes():
    node, why = fit(pod("p"), [])
    assert node is None and why.startswith("0/0 nodes")


def test_already_bound_pod_is_left_alone(store):
    put(store, pod("p", nodeName="control-plane"))
    reconcile(store)
    assert node_of(store, "p") == "control-plane"


def test_required_pod_anti_affinity_spreads_replicas_over_hostnames():
    from testbed.controller.scheduler import NodeInfo, fit

    term = {"topologyKey": "kubernetes.io/hostname",
            "labelSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
    pod = {"metadata": {"namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
           "spec": {"affinity": {"podAntiAffinity": {
               "requiredDuringSchedulingIgnoredDuringExecution": [term]}}}}
    a, b = NodeInfo("a", {}, []), NodeInfo("b", {}, [])
    a.add(pod)
    b.pods = 5  # busier, but the only node without a kube-dns pod
    chosen, _ = fit(pod, [a, b])
    assert chosen is b
    b.add(pod)
    chosen, why = fit(pod, [a, b])
    assert chosen is None and "anti-affinity" in why
    other_ns = {"metadata": {"namespace": "default", "labels": {"k8s-app": "kube-dns"}},
                "spec": pod["spec"]}
    assert fit(other_ns, [a, b])[0] is a  # the term's scope is the pod's own namespace
