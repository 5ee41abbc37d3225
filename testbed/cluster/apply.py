"""Writing and deleting user objects in the store (what `kubectl apply/delete` does)."""

from __future__ import annotations

from testbed.cluster.objects import normalize, now_iso
from testbed.store.keys import object_key


def apply_objects(store, objects: list[dict]) -> list[tuple[str, str]]:
    """Create or update each object; returns (key, "created"|"configured"|"unchanged")."""
    results = []
    for obj in objects:
        key = object_key(normalize(obj))
        current = store.get(key)
        existing = current.value if current else None
        new = normalize(obj, existing)
        if existing == new:
            results.append((key, "unchanged"))
            continue
        store.put(key, new)
        results.append((key, "configured" if existing else "created"))
    return results


def delete_objects(store, objects: list[dict]) -> list[tuple[str, str]]:
    """Delete each object. Pods are marked for graceful deletion; their agent removes them."""
    results = []
    for obj in objects:
        key = object_key(normalize(obj))
        current = store.get(key)
        if current is None:
            results.append((key, "not found"))
            continue
        if obj.get("kind") == "Pod" and current.value.get("spec", {}).get("nodeName"):
            marked = dict(current.value)
            marked["metadata"] = dict(marked["metadata"], deletionTimestamp=now_iso())
            store.update(key, marked, current.mod_revision)
        else:
            store.delete(key)
        results.append((key, "deleted"))
    return results
