"""Garbage collection: orphaned pods, terminating pods nobody will finalise, stale statuses."""

from __future__ import annotations

from dataclasses import dataclass, field

from testbed.controller.actions import Action, Delete
from testbed.controller.pods import delete_pod
from testbed.controller.snapshot import Snapshot, is_terminating, spec_key_of, status_key_of

STATUS_GRACE_SECONDS = 30.0


def orphaned_pods(snap: Snapshot) -> list[Action]:
    """Delete pods all of whose owners (by ownerReferences uid) are gone."""
    uids = snap.uids()
    actions: list[Action] = []
    for kv in snap.of("pods"):
        refs = kv.value["metadata"].get("ownerReferences") or []
        if refs and not is_terminating(kv.value) and not any(r.get("uid") in uids for r in refs):
            actions += delete_pod(snap, kv)
    return actions


def unfinalizable_pods(snap: Snapshot) -> list[Action]:
    """Delete outright terminating pods that no agent will finish: unbound, or bound to a
    node that is not in the config. Bound pods are left to their node's agent."""
    actions: list[Action] = []
    for kv in snap.of("pods"):
        node = kv.value.get("spec", {}).get("nodeName")
        if is_terminating(kv.value) and (not node or node not in snap.node_names):
            actions.append(Delete(kv.key, kv.mod_revision,
                                  then=(Delete(status_key_of(kv.key)),)))
    return actions


@dataclass
class StatusGC:
    """Removes status keys whose spec key has been gone for ``grace`` seconds.

    The grace covers writers that legitimately run ahead of the spec (an agent reporting
    its node before the Node object exists) and the window between an agent deleting a
    pod's spec and its status. State is only "since when has this key been an orphan",
    so a restarted controller just waits one more grace period.
    """

    grace: float = STATUS_GRACE_SECONDS
    orphan_since: dict[str, float] = field(default_factory=dict)

    def plan(self, snap: Snapshot, now: float) -> list[Action]:
        """Delete actions (CAS on the seen revision) for statuses orphaned long enough."""
        orphans = {key: kv for key, kv in snap.statuses.items()
                   if spec_key_of(key) not in snap.objects}
        self.orphan_since = {key: self.orphan_since.get(key, now) for key in orphans}
        return [Delete(key, orphans[key].mod_revision)
                for key, since in sorted(self.orphan_since.items()) if now - since >= self.grace]
