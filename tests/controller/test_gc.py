"""Garbage collection: orphaned pods, pods nobody finalises, stale statuses."""

from __future__ import annotations

from testbed.controller.actions import Delete, MarkDeleting
from testbed.controller.gc import StatusGC, orphaned_pods
from testbed.controller.snapshot import Snapshot
from testbed.store.keys import spec_key, status_key

from .helpers import (
    converge,
    deployment,
    make_config,
    pod,
    pods,
    put,
    ready_status,
    reconcile,
    statefulset,
)


def test_deleting_a_deployment_removes_its_pods(store, agents):
    dep = deployment("web", replicas=2)
    key = put(store, dep)
    put(store, statefulset("db", replicas=1))
    converge(store, agents)
    store.delete(key)
    snap = Snapshot.read(store)
    actions = orphaned_pods(snap)
    assert len(actions) == 2 and all(isinstance(a, MarkDeleting) for a in actions)
    agents.finalize = False
    reconcile(store)
    assert reconcile(store) == [], "a marked pod is not marked again"
    agents.finalize = True
    converge(store, agents)
    assert sorted(pods(store, live=False)) == ["db-0"]


def test_recreated_owner_with_new_uid_replaces_pods(store, agents):
    dep = deployment("web", replicas=1)
    key = put(store, dep)
    converge(store, agents)
    before = set(pods(store))
    store.delete(key)
    put(store, deployment("web", replicas=1))  # new uid
    converge(store, agents)
    after = pods(store)
    assert len(after) == 1 and not (set(after) & before)


def test_pod_with_a_live_owner_among_several_is_kept():
    dep = deployment("web")
    p = pod("p", nodeName="worker1")
    p["metadata"]["ownerReferences"] = [{"uid": "gone"}, {"uid": dep["metadata"]["uid"]}]
    assert orphaned_pods(Snapshot.from_dicts(make_config(), [dep, p])) == []


def test_unbound_orphan_deleted_outright_with_status(store):
    p = pod("p", nodeSelector={"zone": "nowhere"})
    p["metadata"]["ownerReferences"] = [{"kind": "Deployment", "uid": "gone",
                                         "controller": True}]
    put(store, p)
    store.put(status_key("Pod", "default", "p"), {"phase": "Pending"})
    reconcile(store)
    assert store.get(status_key("Pod", "default", "p")) is None
    assert store.get(spec_key("Pod", "default", "p")) is None


def test_terminating_pod_on_unknown_node_is_deleted(store):
    for name, node in (("a", "worker1"), ("b", "decommissioned"), ("c", "")):
        p = pod(name, nodeName=node)
        p["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
        put(store, p)
        store.put(status_key("Pod", "default", name), ready_status())
    reconcile(store)
    left = pods(store, live=False)
    assert sorted(left) == ["a"], "a pod on a real node is left to its agent"
    assert store.get(status_key("Pod", "default", "b")) is None
    assert store.get(status_key("Pod", "default", "a")) is not None
    assert reconcile(store) == []


def test_status_gc_waits_for_the_grace(store):
    put(store, pod("p", nodeName="worker1"))
    store.put(status_key("Pod", "default", "ghost"), ready_status())
    store.put(status_key("Pod", "default", "p"), ready_status())
    gc = StatusGC(grace=30)
    assert gc.plan(Snapshot.read(store), now=100.0) == []
    assert gc.plan(Snapshot.read(store), now=129.0) == []
    actions = gc.plan(Snapshot.read(store), now=130.0)
    assert [a.key for a in actions] == [status_key("Pod", "default", "ghost")]
    assert isinstance(actions[0], Delete)
    # The spec came back before the delete: the key is no longer an orphan.
    put(store, pod("ghost", nodeName="worker1"))
    assert gc.plan(Snapshot.read(store), now=131.0) == []
    assert gc.orphan_since == {}
