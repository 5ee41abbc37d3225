"""Store actions produced by the decision functions, and how they are applied.

Every write to an existing key is a compare-and-swap on the ``mod_revision`` the decision
was based on, so a decision made on a stale snapshot fails instead of clobbering a newer
write; the loop is level-triggered and simply decides again on the next pass. ``then``
holds follow-up actions that only make sense if their parent succeeded (e.g. delete a
pod's status only once its spec is gone).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

from testbed.cluster.objects import now_iso

log = logging.getLogger("controller")


@dataclass(frozen=True)
class Create:
    """Create ``key`` (only if absent)."""

    key: str
    obj: dict
    then: tuple = field(default=(), compare=False)


@dataclass(frozen=True)
class Update:
    """Replace ``key`` if it is still at ``rev``."""

    key: str
    obj: dict
    rev: int
    then: tuple = field(default=(), compare=False)


@dataclass(frozen=True)
class Delete:
    """Delete ``key`` (only at ``rev`` if given)."""

    key: str
    rev: int | None = None
    then: tuple = field(default=(), compare=False)


@dataclass(frozen=True)
class MarkDeleting:
    """Set ``metadata.deletionTimestamp`` on ``obj`` (the value of ``key`` at ``rev``)."""

    key: str
    obj: dict
    rev: int
    then: tuple = field(default=(), compare=False)


Action = Create | Update | Delete | MarkDeleting


@dataclass
class ApplyResult:
    """What happened to a batch of actions."""

    applied: list = field(default_factory=list)
    failed: list = field(default_factory=list)


def describe(action: Action) -> str:
    """One log line for an action."""
    name = type(action).__name__.lower()
    if isinstance(action, (Create, Update)):
        node = action.obj.get("spec", {}).get("nodeName") if action.key.startswith(
            "/registry/pods/") else None
        return f"{name} {action.key}" + (f" (node {node})" if node else "")
    return f"{name} {action.key}"


def marked(obj: dict) -> dict:
    """A copy of ``obj`` marked for deletion."""
    out = copy.deepcopy(obj)
    out.setdefault("metadata", {})["deletionTimestamp"] = now_iso()
    return out


def apply_one(store, action: Action) -> bool:
    """Apply one action (without its follow-ups); False if the CAS/create did not happen."""
    if isinstance(action, Create):
        return store.create(action.key, action.obj)
    if isinstance(action, Update):
        return store.update(action.key, action.obj, action.rev)
    if isinstance(action, MarkDeleting):
        return store.update(action.key, marked(action.obj), action.rev)
    if isinstance(action, Delete):
        return store.delete(action.key, action.rev)
    raise TypeError(f"not an action: {action!r}")


def apply_actions(store, actions: list[Action]) -> ApplyResult:
    """Apply ``actions`` in order, each one's ``then`` right after it if it succeeded.

    A failed action is not retried here: it means the snapshot was stale, and the write
    that made it stale also wakes the loop for a fresh pass.
    """
    result = ApplyResult()
    pending = list(actions)
    while pending:
        action = pending.pop(0)
        if apply_one(store, action):
            log.info("%s", describe(action))
            result.applied.append(action)
            pending[0:0] = list(action.then)
        else:
            log.debug("skipped (stale) %s", describe(action))
            result.failed.append(action)
    return result
