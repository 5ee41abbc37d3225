"""Writing and deleting user objects in the store (what `kubectl apply/delete` does)."""

from __future__ import annotations

import copy

from testbed.cluster.objects import normalize, now_iso
from testbed.store.keys import object_key

ALLOCATED_ANNOTATION = "testbed.io/allocated"


def keep_allocations(new: dict, existing: dict | None) -> dict:
    """Re-applying a Service keeps what the controller allocated (clusterIP, nodePorts), as
    kubectl apply's merge does, unless the new spec asks for something else (pure)."""
    if existing is None or new.get("kind") != "Service":
        return new
    old_spec, spec = existing.get("spec", {}), new.setdefault("spec", {})
    for field in ("clusterIP", "clusterIPs"):
        if field not in spec and field in old_spec:
            spec[field] = old_spec[field]
    old_ports = {(p.get("port"), p.get("protocol", "TCP")): p for p in old_spec.get("ports", [])}
    for port in spec.get("ports", []):
        old = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
        if old and "nodePort" in old and "nodePort" not in port:
            port["nodePort"] = old["nodePort"]
    old_ann = existing.get("metadata", {}).get("annotations", {})
    if ALLOCATED_ANNOTATION in old_ann:
        new["metadata"].setdefault("annotations", {}).setdefault(
            ALLOCATED_ANNOTATION, old_ann[ALLOCATED_ANNOTATION])
    return new


def apply_objects(store, objects: list[dict]) -> list[tuple[str, str]]:
    """Create or update each object; returns (key, "created"|"configured"|"unchanged")."""
    results = []
    for obj in objects:
        key = object_key(normalize(obj))
        current = store.get(key)
        existing = current.value if current else None
        new = normalize(keep_allocations(copy.deepcopy(obj), existing), existing)
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
