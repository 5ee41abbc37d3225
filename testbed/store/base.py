"""Store interface shared by the etcd and in-memory implementations.

Values are JSON objects (dicts). Every write bumps a store-wide revision
(as in etcd); each key remembers the revision that created it and the one
that last modified it, which is what compare-and-swap works on.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential


@dataclass(frozen=True)
class KeyValue:
    """A key with its decoded value and revisions."""

    key: str
    value: dict
    mod_revision: int
    create_revision: int


@dataclass(frozen=True)
class Event:
    """A change seen by a watch; ``value`` is None for DELETE."""

    type: Literal["PUT", "DELETE"]
    key: str
    value: dict | None
    mod_revision: int


class StoreError(Exception):
    """Base class of store errors."""


class StoreUnavailable(StoreError):
    """The backend could not be reached (or did not answer in time)."""


class Conflict(StoreError):
    """A compare-and-swap kept failing (raised by :func:`mutate` once out of retries)."""


class WatchError(StoreError):
    """A watch stream broke; callers should re-list and watch again."""


class Compacted(WatchError):
    """The watch's start revision is older than the retained history; re-list."""

    def __init__(self, revision: int, compact_revision: int | None = None) -> None:
        self.revision = revision
        self.compact_revision = compact_revision
        detail = f" (history starts at {compact_revision})" if compact_revision else ""
        super().__init__(f"revision {revision} has been compacted{detail}; re-list")


def encode_value(value: dict) -> bytes:
    """Serialize a value the way both stores keep it: compact JSON, UTF-8."""
    if not isinstance(value, dict):
        raise TypeError(f"store values must be dicts, not {type(value).__name__}")
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode_value(raw: bytes, key: str = "?") -> dict:
    """Inverse of :func:`encode_value`; raises :class:`StoreError` on non-JSON data."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"value at {key} is not UTF-8 JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise StoreError(f"value at {key} is not a JSON object")
    return value


class Watch(Protocol):
    """A stream of :class:`Event` for a key prefix, in revision order.

    Iterating blocks for the next event and ends after :meth:`cancel`.
    :meth:`get` polls with a timeout. Both raise :class:`WatchError` (or its
    subclass :class:`Compacted`) once the stream fails; the events delivered
    before the failure are returned first.
    """

    def get(self, timeout: float | None = None) -> Event | None:
        """Next event, or None on timeout or once cancelled."""
        ...

    def cancel(self) -> None:
        """Stop the watch (idempotent, callable from any thread)."""
        ...

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        ...

    def __iter__(self) -> Iterator[Event]: ...


class Store(Protocol):
    """Key-value store holding JSON objects, with revisions, CAS and watches."""

    def get(self, key: str) -> KeyValue | None:
        """The key's current value, or None."""
        ...

    def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        """Items under ``prefix`` sorted by key, and the store revision of the read."""
        ...

    def put(self, key: str, value: dict) -> int:
        """Unconditional write; returns the new store revision."""
        ...

    def create(self, key: str, value: dict) -> bool:
        """Write only if the key is absent; False if it exists."""
        ...

    def update(self, key: str, value: dict, expected_mod_revision: int) -> bool:
        """Write only if the key's mod_revision is still ``expected_mod_revision``."""
        ...

    def delete(self, key: str, expected_mod_revision: int | None = None) -> bool:
        """Delete (optionally only at the expected mod_revision); True if deleted."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key under ``prefix``; returns how many were deleted."""
        ...

    def watch(self, prefix: str, start_revision: int) -> Watch:
        """Events under ``prefix`` with mod_revision >= ``start_revision`` (0: from now)."""
        ...

    def close(self) -> None:
        """Cancel open watches and release resources."""
        ...


class _End:
    """Queue marker: the stream ended, with an optional error."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class QueueWatch:
    """A :class:`Watch` fed by a producer through a queue (used by both stores).

    Producers call :meth:`deliver` for each event and :meth:`finish` when the
    stream ends. ``on_cancel`` runs once when the consumer cancels.
    """

    def __init__(
        self, prefix: str, start_revision: int, on_cancel: Callable[[], None] | None = None
    ) -> None:
        self.prefix = prefix
        self.start_revision = start_revision
        self._queue: queue.SimpleQueue[Event | _End] = queue.SimpleQueue()
        self._cancelled = threading.Event()
        self._cancel_lock = threading.Lock()
        self._on_cancel = on_cancel
        self._error: BaseException | None = None

    # producer side
    def deliver(self, event: Event) -> None:
        """Queue an event for the consumer."""
        self._queue.put(event)

    def finish(self, error: BaseException | None = None) -> None:
        """End the stream; ``error`` is raised to the consumer after queued events."""
        self._queue.put(_End(error))

    # consumer side
    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._cancelled.is_set()

    def get(self, timeout: float | None = None) -> Event | None:
        """Next event; None on timeout or once cancelled/ended; raises on stream failure."""
        if self._cancelled.is_set():
            return None
        if self._error is not None:
            raise self._error
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, _End):
            self._queue.put(item)  # keep the marker for later calls
            if self._cancelled.is_set():
                return None
            if item.error is not None:
                self._error = item.error
                raise item.error
            return None
        return None if self._cancelled.is_set() else item

    def __iter__(self) -> Iterator[Event]:
        """Yield events until cancelled (or raise on failure)."""
        while True:
            event = self.get()
            if event is None:
                return
            yield event

    def cancel(self) -> None:
        """Stop the watch; wakes a consumer blocked in :meth:`get`."""
        with self._cancel_lock:
            if self._cancelled.is_set():
                return
            self._cancelled.set()
        self._queue.put(_End(None))
        if self._on_cancel is not None:
            self._on_cancel()

    def __enter__(self) -> QueueWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


def mutate(
    store: Store,
    key: str,
    fn: Callable[[dict | None], dict | None],
    retries: int = 30,
) -> dict | None:
    """Read-modify-write ``key`` with compare-and-swap, retrying on conflicts.

    ``fn`` gets a private copy of the current value (None if absent) and returns
    the new value, or None to leave the key alone. It may run several times, so
    it must not have side effects. Returns the value now stored (None if ``fn``
    returned None). A value equal to the current one is not rewritten. Raises
    :class:`Conflict` after ``retries`` failed attempts.
    """

    def attempt() -> dict | None:
        kv = store.get(key)
        current = None if kv is None else decode_value(encode_value(kv.value), key)
        new = fn(current)
        if new is None:
            return None
        if kv is not None and new == kv.value:
            return new
        ok = store.create(key, new) if kv is None else store.update(key, new, kv.mod_revision)
        if not ok:
            raise Conflict(f"concurrent update of {key} (gave up after {retries} attempts)")
        return new

    retrying = Retrying(
        stop=stop_after_attempt(retries),
        wait=wait_random_exponential(multiplier=0.002, max=0.05),
        retry=retry_if_exception_type(Conflict),
        reraise=True,
    )
    return retrying(attempt)


def list_watch(store: Store, prefix: str) -> tuple[list[KeyValue], int]:
    """List ``prefix`` for the level-triggered list-then-watch pattern.

    Returns (items, revision); watch from ``revision + 1`` so that nothing
    written after the list is missed. On :class:`Compacted` (or any
    :class:`WatchError`), list again.
    """
    return store.list(prefix)


def list_then_watch(store: Store, prefix: str) -> tuple[list[KeyValue], Watch]:
    """List ``prefix`` and open a watch that resumes right after the list."""
    items, revision = list_watch(store, prefix)
    return items, store.watch(prefix, revision + 1)


__all__ = [
    "Compacted",
    "Conflict",
    "Event",
    "KeyValue",
    "QueueWatch",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "Watch",
    "WatchError",
    "decode_value",
    "encode_value",
    "list_then_watch",
    "list_watch",
    "mutate",
]
