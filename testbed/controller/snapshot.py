"""A point-in-time view of the store that the pure decision functions work on.

Objects are kept as :class:`~testbed.store.base.KeyValue` rather than bare dicts because
the decisions need revisions: CAS writes are conditioned on ``mod_revision``, "newest pod"
means highest ``create_revision``, and a pod status only counts if it was written after the
pod was created (see :meth:`Snapshot.pod_status`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from testbed.cluster.objects import condition
from testbed.store.base import KeyValue
from testbed.store.keys import (
    CONFIG_KEY,
    REGISTRY_ROOT,
    STATUS_ROOT,
    object_key,
    prefix,
    status_key,
)


def status_key_of(key: str) -> str:
    """The ``/status/...`` key that belongs to a ``/registry/...`` key."""
    return STATUS_ROOT + key[len(REGISTRY_ROOT):]


def spec_key_of(key: str) -> str:
    """The ``/registry/...`` key that belongs to a ``/status/...`` key."""
    return REGISTRY_ROOT + key[len(STATUS_ROOT):]


def is_terminating(obj: dict) -> bool:
    """True once the object has been marked for deletion."""
    return bool(obj.get("metadata", {}).get("deletionTimestamp"))


@dataclass
class Snapshot:
    """Config, every ``/registry/`` object and every ``/status/`` value, keyed by store key."""

    config: dict
    objects: dict[str, KeyValue] = field(default_factory=dict)
    statuses: dict[str, KeyValue] = field(default_factory=dict)

    @classmethod
    def read(cls, store) -> Snapshot | None:
        """Read everything from ``store``; None while the cluster config is not written yet."""
        cfg = store.get(CONFIG_KEY)
        if cfg is None:
            return None
        # Two lists at two revisions: good enough, because every decision is re-checked by
        # CAS on write and the next pass (triggered by the write) sees the newer state.
        objects, _ = store.list(REGISTRY_ROOT + "/")
        statuses, _ = store.list(STATUS_ROOT + "/")
        return cls(cfg.value, {kv.key: kv for kv in objects}, {kv.key: kv for kv in statuses})

    @classmethod
    def from_dicts(
        cls, config: dict, objects: list[dict], statuses: dict[str, dict] | None = None
    ) -> Snapshot:
        """Build from plain objects (for tests). Revisions follow list order; every status
        is newer than every object, so all given statuses count."""
        snap = cls(config)
        rev = 1
        for obj in objects:
            rev += 1
            key = object_key(obj)
            snap.objects[key] = KeyValue(key, obj, rev, rev)
        for key, value in (statuses or {}).items():
            rev += 1
            snap.statuses[key] = KeyValue(key, value, rev, rev)
        return snap

    # -- queries -----------------------------------------------------------------------
    def of(self, resource: str) -> list[KeyValue]:
        """All objects of a resource (or Kind), sorted by key."""
        pre = prefix(resource)
        return [kv for key, kv in sorted(self.objects.items()) if key.startswith(pre)]

    def status(self, key: str) -> KeyValue | None:
        """The status stored for the object at spec ``key``."""
        return self.statuses.get(status_key_of(key))

    def pod_status(self, pod: KeyValue) -> dict | None:
        """The pod's status, ignoring one older than the pod itself.

        A StatefulSet pod is recreated under the same name; until the agent writes a
        status for the new pod, a leftover status of the old one must not make it Ready.
        """
        st = self.statuses.get(status_key_of(pod.key))
        if st is None or st.mod_revision <= pod.create_revision:
            return None
        return st.value

    def pod_ready(self, pod: KeyValue) -> bool:
        """True when the pod is not terminating and its (fresh) status says Ready."""
        return not is_terminating(pod.value) and condition(self.pod_status(pod), "Ready")

    @property
    def node_names(self) -> list[str]:
        """Names of the cluster's nodes, in config order."""
        return [n["name"] for n in self.config.get("nodes", [])]

    def uids(self) -> set[str]:
        """uids of every object in the registry (owner lookups)."""
        return {
            uid for kv in self.objects.values() if (uid := kv.value.get("metadata", {}).get("uid"))
        }


def pod_status_key(pod: dict) -> str:
    """Status key of a pod object."""
    meta = pod["metadata"]
    return status_key("Pod", meta.get("namespace"), meta["name"])
