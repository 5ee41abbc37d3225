"""StatefulSets: stable names, ordered and parallel creation, scale-down, recreation."""

from __future__ import annotations

from testbed.controller.snapshot import Snapshot
from testbed.controller.statefulset import ordinal
from testbed.store.keys import spec_key, status_key

from .helpers import converge, pods, put, ready_status, reconcile, statefulset, status


def test_ordinal_parsing():
    assert ordinal("web", "web-0") == 0
    assert ordinal("web", "web-12") == 12
    assert ordinal("web", "web-01") is None
    assert ordinal("web", "web-x") is None
    assert ordinal("web", "webby-1") is None
    assert ordinal("web", "web-a-1") is None


def test_ordered_creation_waits_for_ready(store, agents):
    sts = statefulset("db", replicas=3)
    put(store, sts)
    reconcile(store)
    reconcile(store)
    assert sorted(pods(store)) == ["db-0"], "db-1 must wait for db-0 to be Ready"
    p = pods(store)["db-0"]
    assert p["spec"]["hostname"] == "db-0" and p["spec"]["subdomain"] == "db-svc"
    assert p["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "db-0"
    assert p["metadata"]["labels"]["app"] == "db"
    ref = p["metadata"]["ownerReferences"][0]
    assert ref["kind"] == "StatefulSet" and ref["uid"] == sts["metadata"]["uid"]
    agents.step()
    reconcile(store)
    assert sorted(pods(store)) == ["db-0", "db-1"]
    converge(store, agents)
    assert sorted(pods(store)) == ["db-0", "db-1", "db-2"]
    st = status(store, "StatefulSet", "db")
    assert (st["replicas"], st["readyReplicas"], st["currentReplicas"]) == (3, 3, 3)


def test_no_service_name_no_subdomain(store):
    sts = statefulset("db", replicas=1)
    del sts["spec"]["serviceName"]
    put(store, sts)
    reconcile(store)
    assert "subdomain" not in pods(store)["db-0"]["spec"]


def test_parallel_creates_all_at_once(store):
    put(store, statefulset("db", replicas=3, podManagementPolicy="Parallel"))
    reconcile(store)
    assert sorted(pods(store)) == ["db-0", "db-1", "db-2"]


def test_scale_down_highest_first_one_at_a_time(store, agents):
    sts = statefulset("db", replicas=3)
    put(store, sts)
    converge(store, agents)
    sts["spec"]["replicas"] = 1
    put(store, sts)
    agents.finalize = False
    reconcile(store)
    reconcile(store)
    live = pods(store)
    assert sorted(live) == ["db-0", "db-1"], "db-2 goes first; db-1 waits until it is gone"
    agents.finalize = True
    agents.step()
    reconcile(store)
    assert sorted(pods(store)) == ["db-0"]
    converge(store, agents)
    assert sorted(pods(store, live=False)) == ["db-0"]


def test_parallel_scale_down_all_at_once(store, agents):
    sts = statefulset("db", replicas=3, podManagementPolicy="Parallel")
    put(store, sts)
    converge(store, agents)
    sts["spec"]["replicas"] = 0
    put(store, sts)
    reconcile(store)
    assert pods(store) == {}


def test_deleted_pod_recreated_with_same_name_after_it_is_gone(store, agents):
    put(store, statefulset("db", replicas=2))
    converge(store, agents)
    old = store.get(spec_key("Pod", "default", "db-1"))
    gone = dict(old.value, metadata=dict(old.value["metadata"], deletionTimestamp="now"))
    store.update(old.key, gone, old.mod_revision)  # what `delete pod` does
    reconcile(store)
    assert store.get(old.key).value["metadata"]["uid"] == old.value["metadata"]["uid"]
    agents.step()  # the agent finalises: spec and status keys go
    reconcile(store)
    new = store.get(old.key).value
    assert new["metadata"]["uid"] != old.value["metadata"]["uid"]
    assert new["metadata"].get("deletionTimestamp") is None


def test_stale_status_of_previous_incarnation_is_ignored(store):
    put(store, statefulset("db", replicas=2))
    reconcile(store)
    # A Ready status left behind by an older db-0 (written before this db-0 existed) must
    # not count; simulate it by re-creating the pod after the status was written.
    key = spec_key("Pod", "default", "db-0")
    store.put(status_key("Pod", "default", "db-0"), ready_status())
    value = store.get(key).value
    store.delete(key)
    store.create(key, value)
    snap = Snapshot.read(store)
    assert not snap.pod_ready(snap.objects[key])
    reconcile(store)
    assert sorted(pods(store)) == ["db-0"]


def test_template_change_rolls_from_highest_ordinal(store, agents):
    sts = statefulset("db", replicas=3)
    put(store, sts)
    converge(store, agents)
    sts["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2"
    put(store, sts)
    agents.finalize = False
    reconcile(store)
    marked = [n for n, p in pods(store, live=False).items()
              if p["metadata"].get("deletionTimestamp")]
    assert marked == ["db-2"]
    agents.finalize = True
    converge(store, agents)
    images = {n: p["spec"]["containers"][0]["image"] for n, p in pods(store).items()}
    assert images == {"db-0": "busybox:2", "db-1": "busybox:2", "db-2": "busybox:2"}


def test_converged_statefulset_is_idempotent(store, agents):
    put(store, statefulset("db", replicas=3))
    converge(store, agents)
    assert reconcile(store) == []
