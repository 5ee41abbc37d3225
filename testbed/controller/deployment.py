"""Deployment controller: keep ``spec.replicas`` pods of the current template, roll updates.

There is no ReplicaSet layer: pods are owned by the Deployment directly and carry the
``pod-template-hash`` label, which is what tells the current template's pods ("new") from
those of earlier templates ("old"). A RollingUpdate uses maxSurge=1, maxUnavailable=0:
at most ``replicas + 1`` live pods, and an old Ready pod is only removed while enough
other pods are Ready. ``strategy.type: Recreate`` removes all old pods before creating new.
"""

from __future__ import annotations

import random

from testbed.controller.actions import Action, Create
from testbed.controller.pods import (
    build_pod,
    delete_pod,
    deletion_order,
    guarded,
    owned_pods,
    random_suffix,
    status_action,
    template_hash,
)
from testbed.controller.snapshot import Snapshot, is_terminating
from testbed.store.base import KeyValue
from testbed.store.keys import spec_key

HASH_LABEL = "pod-template-hash"
MAX_SURGE = 1


def _new_pods(snap: Snapshot, dep: dict, phash: str, count: int, rng: random.Random,
              taken: set[str]) -> list[Action]:
    name, ns = dep["metadata"]["name"], dep["metadata"].get("namespace", "default")
    out: list[Action] = []
    for _ in range(count):
        while True:  # the suffix is random; never reuse a live or just-planned name
            pod_name = f"{name}-{phash}-{random_suffix(rng)}"
            key = spec_key("Pod", ns, pod_name)
            if key not in snap.objects and key not in taken:
                break
        taken.add(key)
        out.append(Create(key, build_pod("Deployment", dep, pod_name, {HASH_LABEL: phash})))
    return out


def _delete(snap: Snapshot, pods: list[KeyValue], count: int) -> list[Action]:
    out: list[Action] = []
    for kv in deletion_order(snap, pods)[:max(count, 0)]:
        out += delete_pod(snap, kv)
    return out


def reconcile_deployment(snap: Snapshot, dep_kv: KeyValue, rng: random.Random,
                         taken: set[str]) -> list[Action]:
    """Pod creations/deletions and the status update for one Deployment."""
    dep = dep_kv.value
    spec = dep.get("spec", {})
    want = max(int(spec.get("replicas", 1)), 0)
    phash = template_hash(spec.get("template") or {})
    pods = owned_pods(snap, dep)
    live = [kv for kv in pods if not is_terminating(kv.value)]
    new = [kv for kv in live if kv.value["metadata"].get("labels", {}).get(HASH_LABEL) == phash]
    old = [kv for kv in live if kv not in new]
    ready_new = sum(1 for kv in new if snap.pod_ready(kv))
    ready_old = sum(1 for kv in old if snap.pod_ready(kv))
    actions: list[Action] = []
    recreate = (spec.get("strategy") or {}).get("type") == "Recreate"

    old_going = [kv for kv in pods if is_terminating(kv.value)
                 and kv.value["metadata"].get("labels", {}).get(HASH_LABEL) != phash]
    if recreate and (old or old_going):
        # Recreate: no new pod may run next to an old one, terminating ones included.
        actions += _delete(snap, old, len(old))
    elif len(new) > want:
        actions += _delete(snap, new, len(new) - want)
    else:
        surge_room = want + MAX_SURGE - len(live) if old else want - len(new)
        actions += _new_pods(snap, dep, phash, min(want - len(new), surge_room), rng, taken)
    if old and not recreate:
        # Old pods that are not Ready add nothing to availability: remove them first. A
        # Ready one may go only while the Ready pods left still cover the replicas.
        unready = [kv for kv in old if not snap.pod_ready(kv)]
        readies = [kv for kv in old if snap.pod_ready(kv)]
        spare = ready_new + ready_old - want
        actions += _delete(snap, unready, len(unready))
        actions += _delete(snap, readies, spare)

    status = {
        "observedGeneration": dep["metadata"].get("generation", 1),
        "replicas": len(live),
        "updatedReplicas": len(new),
        "readyReplicas": ready_new + ready_old,
        "availableReplicas": ready_new + ready_old,
        "unavailableReplicas": max(want - ready_new - ready_old, 0),
    }
    return actions + status_action(snap, dep_kv.key, status)


def reconcile_deployments(snap: Snapshot, rng: random.Random) -> list[Action]:
    """Actions for every Deployment in the snapshot."""
    taken: set[str] = set()
    out: list[Action] = []
    for kv in snap.of("deployments"):
        out += guarded("deployment", kv.key, reconcile_deployment, snap, kv, rng, taken)
    return out
