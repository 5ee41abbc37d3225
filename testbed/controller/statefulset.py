"""StatefulSet controller: pods ``<name>-0 .. <name>-(N-1)`` with stable names.

OrderedReady (the default) creates ordinal i only once 0..i-1 are all Ready and removes
the highest ordinal first, one at a time, each only after the previous is fully gone.
Parallel creates and removes all at once. A missing pod (e.g. deleted by the user) is
recreated under the same name once the old one's key is gone. A template change rolls
pods from the highest ordinal down, one at a time while all others are Ready (the
RollingUpdate strategy; ``OnDelete`` leaves that to the user).
"""

from __future__ import annotations

from testbed.controller.actions import Action, Create
from testbed.controller.pods import (
    build_pod,
    delete_pod,
    guarded,
    owned_pods,
    status_action,
    template_hash,
)
from testbed.controller.snapshot import Snapshot, is_terminating
from testbed.store.base import KeyValue
from testbed.store.keys import spec_key

REVISION_LABEL = "controller-revision-hash"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"


def ordinal(set_name: str, pod_name: str) -> int | None:
    """The ordinal of ``<set_name>-<i>``, or None if the name does not have that shape."""
    head, sep, tail = pod_name.rpartition("-")
    if head != set_name or not sep or not tail.isdigit() or str(int(tail)) != tail:
        return None
    return int(tail)


def _revision(kv: KeyValue) -> str | None:
    return kv.value["metadata"].get("labels", {}).get(REVISION_LABEL)


def _new_pod(sts: dict, i: int, revision: str) -> Create:
    name, ns = sts["metadata"]["name"], sts["metadata"].get("namespace", "default")
    pod_name = f"{name}-{i}"
    extra = {"hostname": pod_name}
    if sts.get("spec", {}).get("serviceName"):
        extra["subdomain"] = sts["spec"]["serviceName"]
    labels = {POD_NAME_LABEL: pod_name, REVISION_LABEL: revision}
    return Create(spec_key("Pod", ns, pod_name),
                  build_pod("StatefulSet", sts, pod_name, labels, extra))


def reconcile_statefulset(snap: Snapshot, sts_kv: KeyValue) -> list[Action]:
    """Pod creations/deletions and the status update for one StatefulSet."""
    sts = sts_kv.value
    spec = sts.get("spec", {})
    name, ns = sts["metadata"]["name"], sts["metadata"].get("namespace", "default")
    want = max(int(spec.get("replicas", 1)), 0)
    parallel = spec.get("podManagementPolicy") == "Parallel"
    revision = f"{name}-{template_hash(spec.get('template') or {})}"
    by_ordinal: dict[int, KeyValue] = {}
    for kv in owned_pods(snap, sts):
        i = ordinal(name, kv.value["metadata"]["name"])
        if i is not None:
            by_ordinal[i] = kv
    any_terminating = any(is_terminating(kv.value) for kv in by_ordinal.values())
    actions: list[Action] = []

    for i in range(want):
        pod = by_ordinal.get(i)
        if pod is None:
            # The name may still be held by a pod we do not own (e.g. left by a deleted
            # StatefulSet of the same name, now being garbage-collected): wait for it.
            if spec_key("Pod", ns, f"{name}-{i}") not in snap.objects:
                actions.append(_new_pod(sts, i, revision))
            if not parallel:
                break
        elif not parallel and not snap.pod_ready(pod):
            break  # OrderedReady: nothing past a pod that is not Ready (or terminating)

    extras = sorted((i for i in by_ordinal if i >= want), reverse=True)
    extras = [i for i in extras if not is_terminating(by_ordinal[i].value)]
    if not parallel:
        extras = [] if any_terminating else extras[:1]
    for i in extras:
        actions += delete_pod(snap, by_ordinal[i])

    steady = not actions and not any_terminating and all(
        i in by_ordinal and snap.pod_ready(by_ordinal[i]) for i in range(want))
    rolling = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"
    if steady and rolling:
        stale = [i for i in range(want) if _revision(by_ordinal[i]) != revision]
        if stale:
            actions += delete_pod(snap, by_ordinal[max(stale)])

    live = [kv for kv in by_ordinal.values() if not is_terminating(kv.value)]
    ready = sum(1 for kv in live if snap.pod_ready(kv))
    updated = sum(1 for kv in live if _revision(kv) == revision)
    status = {
        "observedGeneration": sts["metadata"].get("generation", 1),
        "replicas": len(live),
        "readyReplicas": ready,
        "currentReplicas": updated,
        "updatedReplicas": updated,
        "availableReplicas": ready,
        "currentRevision": revision,
        "updateRevision": revision,
    }
    return actions + status_action(snap, sts_kv.key, status)


def reconcile_statefulsets(snap: Snapshot) -> list[Action]:
    """Actions for every StatefulSet in the snapshot."""
    out: list[Action] = []
    for kv in snap.of("statefulsets"):
        out += guarded("statefulset", kv.key, reconcile_statefulset, snap, kv)
    return out
