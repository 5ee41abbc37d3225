"""The whole pass on plain dicts, and idempotency across all controllers."""

from __future__ import annotations

import random

from testbed.controller.actions import Create, Update
from testbed.controller.loop import Controller
from testbed.controller.plan import plan
from testbed.controller.snapshot import Snapshot

from .helpers import (
    converge,
    deployment,
    make_config,
    pod,
    pods,
    put,
    reconcile,
    statefulset,
)


def test_plan_on_plain_dicts_creates_bound_pods():
    dep = deployment("web", replicas=2, ns="shop")
    snap = Snapshot.from_dicts(make_config(), [dep])
    actions = plan(snap, random.Random(0))
    pod_creates = [a for a in actions if isinstance(a, Create) and "/pods/" in a.key]
    assert len(pod_creates) == 2
    assert sorted(a.obj["spec"]["nodeName"] for a in pod_creates) == ["worker1", "worker2"]
    keys = {a.key for a in actions}
    assert "/registry/nodes/control-plane" in keys
    assert "/registry/namespaces/shop" in keys
    assert "/status/deployments/shop/web" in keys


def test_plan_binds_existing_pod_by_cas():
    p = pod("p")
    snap = Snapshot.from_dicts(make_config(), [p])
    binds = [a for a in plan(snap) if isinstance(a, Update) and a.key.endswith("/pods/default/p")]
    assert len(binds) == 1
    assert binds[0].rev == snap.objects[binds[0].key].mod_revision
    assert binds[0].obj["spec"]["nodeName"] == "worker1"


def test_everything_converges_and_then_nothing_changes(store, agents):
    put(store, deployment("web", replicas=3))
    put(store, deployment("api", replicas=1, ns="shop"))
    put(store, statefulset("db", replicas=2))
    put(store, statefulset("cache", replicas=2, ns="shop", podManagementPolicy="Parallel"))
    put(store, pod("lonely"))
    put(store, pod("stuck", nodeSelector={"zone": "mars"}))
    converge(store, agents)
    assert reconcile(store) == []
    assert reconcile(store) == []
    # A restarted controller (fresh state) has nothing to do either.
    assert Controller(store).reconcile().applied == []


def test_malformed_objects_do_not_block_the_rest(store, caplog):
    bad = deployment("bad")
    bad["spec"]["replicas"] = None
    put(store, bad)
    put(store, pod("weird", nodeSelector=["not", "a", "dict"]))
    put(store, deployment("good", replicas=2))
    reconcile(store)
    names = sorted(pods(store))
    assert len(names) == 3 and sum(n.startswith("good-") for n in names) == 2
    assert "weird" in names and "skipping deployment" in caplog.text
