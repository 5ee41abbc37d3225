"""Reading objects back from the store the way `kubectl get` shows them: spec with status."""

from __future__ import annotations

from testbed.cluster.objects import ref, with_status
from testbed.store.keys import prefix, status_prefix


def key_ref(key: str) -> str:
    """`namespace/name` (or `name`) of a `/registry/...` or `/status/...` key."""
    return key.split("/", 3)[3]


def statuses(store, resource: str, namespace: str | None = None) -> dict[str, dict]:
    """Status of every object of a resource, by `namespace/name`."""
    return {key_ref(kv.key): kv.value for kv in store.list(status_prefix(resource, namespace))[0]}


def merged(store, resource: str, namespace: str | None = None) -> list[dict]:
    """Objects of a resource with their status merged in, sorted by namespace/name."""
    items, _ = store.list(prefix(resource, namespace))
    by_ref = statuses(store, resource, namespace)
    return sorted((with_status(kv.value, by_ref.get(ref(kv.value))) for kv in items), key=ref)
