"""Pure object helpers and the readiness report `up` waits on."""

from __future__ import annotations

from testbed.cluster.apply import apply_objects, delete_objects
from testbed.cluster.objects import normalize
from testbed.cluster.ready import readiness_problems
from testbed.store.keys import spec_key
from testbed.store.memory import MemoryStore


def pod(name, node="w1", uid=None, owner=None, deleting=False):
    meta = {"name": name, "namespace": "default", "uid": uid or name}
    if owner:
        meta["ownerReferences"] = [{"uid": owner}]
    if deleting:
        meta["deletionTimestamp"] = "now"
    return {"kind": "Pod", "metadata": meta, "spec": {"nodeName": node} if node else {}}


def snap(**kw):
    base = {k: {} for k in ("nodes", "nodes/status", "pods", "pods/status", "deployments",
                            "deployments/status", "statefulsets", "statefulsets/status")}
    base.update(kw)
    return base


READY = {"conditions": [{"type": "Ready", "status": "True"}]}


def test_normalize_fills_namespace_uid_and_generation():
    obj = normalize({"kind": "Service", "metadata": {"name": "s"}, "spec": {"a": 1},
                     "status": {"x": 1}})
    assert obj["metadata"]["namespace"] == "default" and obj["metadata"]["uid"]
    assert "status" not in obj and obj["metadata"]["generation"] == 1
    same = normalize({"kind": "Service", "metadata": {"name": "s"}, "spec": {"a": 1}}, obj)
    assert same["metadata"]["uid"] == obj["metadata"]["uid"]
    assert same["metadata"]["generation"] == 1
    changed = normalize({"kind": "Service", "metadata": {"name": "s"}, "spec": {"a": 2}}, obj)
    assert changed["metadata"]["generation"] == 2
    ns = normalize({"kind": "Namespace", "metadata": {"name": "x", "namespace": "y"}})
    assert "namespace" not in ns["metadata"]


def test_apply_reports_created_configured_unchanged_and_delete_marks_scheduled_pods():
    store = MemoryStore()
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"a": 1}}
    assert apply_objects(store, [svc])[0][1] == "created"
    assert apply_objects(store, [svc])[0][1] == "unchanged"
    assert apply_objects(store, [dict(svc, spec={"a": 2})])[0][1] == "configured"
    p = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
         "spec": {"nodeName": "w1"}}
    apply_objects(store, [p])
    assert delete_objects(store, [p])[0][1] == "deleted"
    marked = store.get(spec_key("Pod", "default", "p")).value
    assert marked["metadata"]["deletionTimestamp"]  # the node agent finishes the deletion
    assert delete_objects(store, [svc])[0][1] == "deleted"
    assert store.get(spec_key("Service", "default", "s")) is None
    assert delete_objects(store, [svc])[0][1] == "not found"


def test_readiness_lists_each_reason():
    problems = readiness_problems(snap(
        nodes={"w1": {}}, **{"nodes/status": {"w1": {"conditions": [
            {"type": "Ready", "status": "False", "message": "vxlan: boom"}]}}},
        pods={"default/a": pod("a"), "default/b": pod("b", node=None),
              "default/c": pod("c"), "default/gone": pod("gone", deleting=True)},
        **{"pods/status": {"default/c": {"phase": "Running", "message": "probe failed: 503",
                                         "conditions": []}}},
        deployments={"default/d": {"metadata": {"uid": "D"}, "spec": {"replicas": 2}}},
    ), ["w1", "w2"])
    assert problems == [
        "node w1: NotReady: vxlan: boom",
        "node w2: agent has not reported Ready",
        "deployment default/d: 0/2 pods created",
        "pod default/a: no status from node w1 yet",
        "pod default/b: not scheduled",
        "pod default/c: Running, not Ready (probe failed: 503)",
    ]


def test_ready_cluster_has_no_problems():
    problems = readiness_problems(snap(
        **{"nodes/status": {"w1": READY}},
        pods={"default/a": pod("a", owner="D")}, **{"pods/status": {"default/a": READY}},
        deployments={"default/d": {"metadata": {"uid": "D"}, "spec": {"replicas": 1}}},
    ), ["w1"])
    assert problems == []


def test_reapplying_a_service_keeps_its_allocations():
    store = MemoryStore()
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
           "spec": {"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP"}]}}
    apply_objects(store, [svc])
    key = spec_key("Service", "default", "s")
    allocated = store.get(key).value
    allocated["spec"]["clusterIP"] = "10.96.5.5"
    allocated["spec"]["ports"][0]["nodePort"] = 31000
    allocated["metadata"]["annotations"] = {"testbed.io/allocated": "x"}
    store.put(key, allocated)
    assert apply_objects(store, [svc])[0][1] == "unchanged"
    kept = store.get(key).value
    assert kept["spec"]["clusterIP"] == "10.96.5.5"
    assert kept["spec"]["ports"][0]["nodePort"] == 31000
    moved = dict(svc, spec={**svc["spec"], "clusterIP": "10.96.6.6"})
    apply_objects(store, [moved])
    assert store.get(key).value["spec"]["clusterIP"] == "10.96.6.6"
