"""Node and Namespace objects derived from the config and from objects in use."""

from __future__ import annotations

from testbed.controller.actions import Create, Delete, Update, apply_actions
from testbed.controller.nodes import reconcile_namespaces, reconcile_nodes
from testbed.controller.snapshot import Snapshot
from testbed.store.keys import spec_key, status_key
from testbed.store.memory import MemoryStore

from .helpers import deployment, make_config, put, reconcile, setup_store

CP_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def node(store, name: str) -> dict:
    return store.get(spec_key("Node", None, name)).value


def test_nodes_created_from_config(store, config):
    reconcile(store)
    cp, w1 = node(store, "control-plane"), node(store, "worker1")
    assert cp["kind"] == "Node" and cp["apiVersion"] == "v1"
    assert cp["metadata"]["labels"] == {
        "kubernetes.io/hostname": "control-plane", "kubernetes.io/os": "linux",
        "node-role.kubernetes.io/control-plane": ""}
    assert cp["spec"] == {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"],
                          "taints": [CP_TAINT]}
    assert w1["metadata"]["labels"] == {"zone": "a", "kubernetes.io/hostname": "worker1",
                                        "kubernetes.io/os": "linux"}
    assert w1["spec"] == {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]}
    assert w1["metadata"]["uid"] and w1["metadata"]["creationTimestamp"]
    assert w1["metadata"]["generation"] == 1


def test_single_node_cluster_has_no_taint():
    # Like kind: with no worker the control plane must run workloads itself.
    store = MemoryStore()
    setup_store(store, make_config(workers=0))
    reconcile(store)
    assert "taints" not in node(store, "control-plane")["spec"]


def test_user_labels_and_taints_survive_and_ours_come_back(store):
    reconcile(store)
    kv = store.get(spec_key("Node", None, "worker1"))
    edited = dict(kv.value)
    edited["metadata"] = dict(edited["metadata"], labels={"disk": "ssd"})
    edited["spec"] = dict(edited["spec"], taints=[{"key": "gpu", "effect": "NoSchedule"}])
    store.put(kv.key, edited)
    reconcile(store)
    w1 = node(store, "worker1")
    assert w1["metadata"]["labels"]["disk"] == "ssd"
    assert w1["metadata"]["labels"]["zone"] == "a"
    assert w1["spec"]["taints"] == [{"key": "gpu", "effect": "NoSchedule"}]
    assert w1["metadata"]["uid"] == kv.value["metadata"]["uid"]


def test_node_not_in_config_is_deleted(store, config):
    reconcile(store)
    stray = dict(node(store, "worker1"))
    stray["metadata"] = dict(stray["metadata"], name="old-node")
    put(store, stray)
    actions = reconcile_nodes(Snapshot.read(store))
    assert actions == [Delete(spec_key("Node", None, "old-node"),
                              store.get(spec_key("Node", None, "old-node")).mod_revision)]


def test_system_and_used_namespaces(store):
    put(store, deployment("web", ns="shop"))
    reconcile(store)
    for name in ("default", "kube-system", "kube-public", "kube-node-lease", "shop"):
        ns = store.get(spec_key("Namespace", None, name)).value
        assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": name}
        assert ns["metadata"]["uid"]
        assert store.get(status_key("Namespace", None, name)).value == {"phase": "Active"}


def test_user_namespace_gets_label_and_status(store):
    put(store, {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "team", "labels": {"owner": "me"}, "uid": "u1"}})
    actions = reconcile_namespaces(Snapshot.read(store))
    assert [type(a) for a in actions if "team" in a.key] == [Update, Create]
    apply_actions(store, actions)
    ns = store.get(spec_key("Namespace", None, "team")).value
    assert ns["metadata"]["labels"] == {"owner": "me", "kubernetes.io/metadata.name": "team"}
    assert ns["metadata"]["uid"] == "u1"


def test_nodes_and_namespaces_idempotent(store):
    put(store, deployment("web", ns="shop", replicas=0))
    assert reconcile(store)
    assert reconcile(store) == []
    snap = Snapshot.read(store)
    assert reconcile_nodes(snap) == [] and reconcile_namespaces(snap) == []
