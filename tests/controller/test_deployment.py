"""Deployments: pod naming and ownership, scaling, rolling updates, status."""

from __future__ import annotations

import random
import re

from testbed.controller.actions import MarkDeleting
from testbed.controller.deployment import reconcile_deployments
from testbed.controller.pods import template_hash
from testbed.controller.snapshot import Snapshot
from testbed.store.keys import object_key

from .helpers import converge, deployment, pods, put, reconcile, status


def test_scale_up_creates_owned_scheduled_pods(store, agents):
    dep = deployment("web", replicas=3)
    put(store, dep)
    reconcile(store)
    created = pods(store)
    assert len(created) == 3
    phash = template_hash(dep["spec"]["template"])
    assert len(phash) == 10
    for name, p in created.items():
        assert re.fullmatch(rf"web-{phash}-[a-z0-9]{{5}}", name)
        meta = p["metadata"]
        assert meta["labels"] == {"app": "web", "pod-template-hash": phash}
        assert meta["namespace"] == "default"
        assert meta["ownerReferences"] == [{
            "apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
            "uid": dep["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
        assert meta["uid"] and meta["creationTimestamp"] and meta["generation"] == 1
        assert p["spec"]["containers"] == dep["spec"]["template"]["spec"]["containers"]
    # Spread over the two workers; the tainted control plane gets nothing.
    nodes = sorted(p["spec"]["nodeName"] for p in created.values())
    assert nodes == ["worker1", "worker1", "worker2"]
    converge(store, agents)
    assert status(store, "Deployment", "web") == {
        "observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
        "availableReplicas": 3, "unavailableReplicas": 0}


def test_replicas_defaults_to_one(store):
    dep = deployment("one")
    del dep["spec"]["replicas"]
    put(store, dep)
    reconcile(store)
    assert len(pods(store)) == 1


def test_scale_down_removes_not_ready_then_newest(store, agents):
    dep = deployment("web", replicas=4)
    put(store, dep)
    reconcile(store)
    names = sorted(pods(store), key=lambda n: store.get(
        object_key(pods(store)[n])).create_revision)
    agents.hold = {names[1]}  # the second-oldest never becomes Ready
    converge(store, agents)
    dep["spec"]["replicas"] = 2
    put(store, dep)
    actions = reconcile_deployments(Snapshot.read(store), random.Random())
    marked = [a.obj["metadata"]["name"] for a in actions if isinstance(a, MarkDeleting)]
    assert marked == [names[1], names[3]]
    converge(store, agents)
    assert sorted(pods(store)) == sorted([names[0], names[2]])


def test_scale_to_zero_and_back(store, agents):
    dep = deployment("web", replicas=2)
    put(store, dep)
    converge(store, agents)
    dep["spec"]["replicas"] = 0
    put(store, dep)
    converge(store, agents)
    assert pods(store, live=False) == {}
    assert status(store, "Deployment", "web")["replicas"] == 0
    dep["spec"]["replicas"] = 1
    put(store, dep)
    converge(store, agents)
    assert len(pods(store)) == 1


def _ready_count(store) -> int:
    snap = Snapshot.read(store)
    return sum(1 for kv in snap.of("pods") if snap.pod_ready(kv))


def test_rolling_update_surges_one_and_keeps_availability(store, agents):
    dep = deployment("web", replicas=3)
    put(store, dep)
    converge(store, agents)
    old_names = set(pods(store))
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2"
    put(store, dep)
    new_hash = template_hash(dep["spec"]["template"])
    for _ in range(40):
        applied = reconcile(store)
        assert len(pods(store)) <= 4, "never more than replicas + 1 live pods"
        assert _ready_count(store) >= 3, "an old pod went before a new one was Ready"
        marked = [a for a in applied if isinstance(a, MarkDeleting)]
        assert len(marked) <= 1, "old pods go one at a time"
        if not applied and not agents.step():
            break
    final = pods(store)
    assert len(final) == 3 and not (set(final) & old_names)
    assert all(p["metadata"]["labels"]["pod-template-hash"] == new_hash for p in final.values())
    assert all(p["spec"]["containers"][0]["image"] == "busybox:2" for p in final.values())
    st = status(store, "Deployment", "web")
    assert st["updatedReplicas"] == 3 and st["readyReplicas"] == 3


def test_rolling_update_waits_for_new_pods_to_be_ready(store, agents):
    dep = deployment("web", replicas=2)
    put(store, dep)
    converge(store, agents)
    dep["spec"]["template"]["metadata"]["labels"]["v"] = "2"
    put(store, dep)
    reconcile(store)
    new = [n for n, p in pods(store).items() if p["metadata"]["labels"].get("v") == "2"]
    assert len(new) == 1
    agents.hold = set(new)  # the new version never gets Ready
    converge(store, agents)
    live = pods(store)
    assert len(live) == 3 and sum(p["metadata"]["labels"].get("v") == "2"
                                  for p in live.values()) == 1
    agents.hold = set()
    converge(store, agents)
    assert all(p["metadata"]["labels"].get("v") == "2" for p in pods(store).values())


def test_recreate_strategy_removes_old_first(store, agents):
    dep = deployment("web", replicas=2, strategy={"type": "Recreate"})
    put(store, dep)
    converge(store, agents)
    dep["spec"]["template"]["metadata"]["labels"]["v"] = "2"
    put(store, dep)
    agents.finalize = False
    reconcile(store)
    reconcile(store)
    assert pods(store) == {}, "no new pod while old ones still terminate"
    agents.finalize = True
    converge(store, agents)
    assert len(pods(store)) == 2


def test_deployment_status_tracks_readiness(store, agents):
    put(store, deployment("web", replicas=2))
    reconcile(store)
    reconcile(store)
    st = status(store, "Deployment", "web")
    assert st["replicas"] == 2 and st["readyReplicas"] == 0 and st["unavailableReplicas"] == 2
    converge(store, agents)
    assert status(store, "Deployment", "web")["readyReplicas"] == 2


def test_converged_deployment_is_idempotent(store, agents):
    put(store, deployment("web", replicas=3))
    put(store, deployment("api", replicas=2, ns="shop"))
    converge(store, agents)
    assert reconcile(store) == []
    assert reconcile(store) == []
