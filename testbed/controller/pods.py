"""Helpers shared by the workload controllers: building, ranking and deleting pods."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import random
import string
from collections.abc import Callable

from testbed.cluster.objects import normalize
from testbed.controller.actions import Action, Create, Delete, MarkDeleting, Update
from testbed.controller.snapshot import Snapshot, is_terminating, status_key_of
from testbed.store.base import KeyValue

_SUFFIX_CHARS = string.ascii_lowercase + string.digits
log = logging.getLogger("controller")


def guarded(what: str, key: str, fn: Callable[..., list[Action]], *args) -> list[Action]:
    """``fn(*args)``, or no actions (and a warning) if the object is malformed.

    One user object with, say, ``replicas: null`` must not stop every other object from
    being reconciled.
    """
    try:
        return fn(*args)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        log.warning("skipping %s %s: malformed object (%r)", what, key, exc)
        return []


def template_hash(template: dict) -> str:
    """10-character hash of a pod template; stable across processes (sorted-key JSON)."""
    raw = json.dumps(template or {}, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:10]


def random_suffix(rng: random.Random, n: int = 5) -> str:
    """``n`` random characters from ``[a-z0-9]`` (the generateName suffix)."""
    return "".join(rng.choice(_SUFFIX_CHARS) for _ in range(n))


def owner_ref(kind: str, owner: dict) -> dict:
    """A controller ownerReference to ``owner`` (Deployment or StatefulSet)."""
    meta = owner["metadata"]
    return {"apiVersion": "apps/v1", "kind": kind, "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def controller_uid(pod: dict) -> str | None:
    """uid of the pod's controlling owner, if any."""
    for ref in pod.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None


def owned_pods(snap: Snapshot, owner: dict) -> list[KeyValue]:
    """Pods (terminating ones included) in the owner's namespace controlled by ``owner``."""
    meta = owner["metadata"]
    ns, uid = meta.get("namespace", "default"), meta.get("uid")
    return [kv for kv in snap.of("pods")
            if kv.value["metadata"].get("namespace") == ns and controller_uid(kv.value) == uid]


def build_pod(kind: str, owner: dict, name: str, labels: dict, spec_extra: dict | None = None
              ) -> dict:
    """A normalised pod from ``owner``'s template (labels/annotations/spec copied)."""
    template = owner.get("spec", {}).get("template") or {}
    tmeta = template.get("metadata") or {}
    meta = {"name": name, "namespace": owner["metadata"].get("namespace", "default"),
            "labels": {**(tmeta.get("labels") or {}), **labels},
            "ownerReferences": [owner_ref(kind, owner)]}
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    spec = copy.deepcopy(template.get("spec") or {})
    spec.update(spec_extra or {})
    # The template may carry a nodeName the user meant literally; otherwise it is left empty
    # and the scheduler (same pass) fills it in.
    return normalize({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})


def deletion_order(snap: Snapshot, pods: list[KeyValue]) -> list[KeyValue]:
    """Which pods to remove first on scale-down: not-ready first, then newest first."""
    return sorted(pods, key=lambda kv: (snap.pod_ready(kv), -kv.create_revision))


def delete_pod(snap: Snapshot, pod: KeyValue) -> list[Action]:
    """Actions that delete a pod, unless it is already terminating.

    A pod bound to a cluster node is only marked: that node's agent tears it down and then
    deletes the spec and status keys. A pod nobody runs (unbound, or bound to a node not in
    the config) has no agent to finish the job, so it is deleted outright: spec by CAS, then
    its status.
    """
    if is_terminating(pod.value):
        return []
    node = pod.value.get("spec", {}).get("nodeName")
    if node and node in snap.node_names:
        return [MarkDeleting(pod.key, pod.value, pod.mod_revision)]
    return [Delete(pod.key, pod.mod_revision, then=(Delete(status_key_of(pod.key)),))]


def status_action(snap: Snapshot, key: str, status: dict) -> list[Action]:
    """Create/CAS-update the status of the object at spec ``key`` if it differs."""
    current = snap.status(key)
    if current is None:
        return [Create(status_key_of(key), status)]
    if current.value != status:
        return [Update(current.key, status, current.mod_revision)]
    return []
