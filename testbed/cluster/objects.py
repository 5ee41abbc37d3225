"""Pure helpers on Kubernetes-shaped objects: normalising for the store, merging status."""

from __future__ import annotations

import copy
import datetime as dt
import uuid

from testbed.store.keys import DEFAULT_NAMESPACE, KINDS, UnknownKind, is_namespaced


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def normalize(obj: dict, existing: dict | None = None) -> dict:
    """Fill what the API server would: namespace, uid, creationTimestamp, generation."""
    kind = obj.get("kind")
    if kind not in KINDS:
        raise UnknownKind(str(kind))
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.setdefault("metadata", {})
    if is_namespaced(kind):
        meta.setdefault("namespace", DEFAULT_NAMESPACE)
    else:
        meta.pop("namespace", None)
    meta.setdefault("labels", {})
    if existing is not None:
        old = existing.get("metadata", {})
        meta["uid"] = old.get("uid") or str(uuid.uuid4())
        meta["creationTimestamp"] = old.get("creationTimestamp") or now_iso()
        changed = existing.get("spec") != out.get("spec")
        meta["generation"] = int(old.get("generation", 1)) + (1 if changed else 0)
    else:
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now_iso())
        meta["generation"] = 1
    return out


def with_status(obj: dict, status: dict | None) -> dict:
    """The object as `kubectl get -o json` shows it: spec and status together."""
    out = dict(obj)
    out["status"] = status or {}
    return out


def ref(obj: dict) -> str:
    """`namespace/name` (or `name` for cluster-scoped objects), for messages."""
    meta = obj.get("metadata", {})
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))


def condition(status: dict | None, kind: str) -> bool:
    """True when the status has condition `kind` with status "True"."""
    for cond in (status or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond.get("status") == "True"
    return False
