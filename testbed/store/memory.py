"""In-memory :class:`~testbed.store.base.Store` with etcd's semantics.

Thread-safe. Revisions start at 1 and every successful write bumps them by
one, like a fresh etcd. Values are kept JSON-encoded, so readers always get
private copies. The full event history is kept (until :meth:`compact`), so a
watch from an older revision replays what it missed.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass

from testbed.store.base import (
    Compacted,
    Event,
    KeyValue,
    QueueWatch,
    decode_value,
    encode_value,
)


@dataclass
class _Record:
    raw: bytes
    create_revision: int
    mod_revision: int


@dataclass(frozen=True)
class _Change:
    revision: int
    type: str
    key: str
    raw: bytes | None


class MemoryStore:
    """Thread-safe in-memory store.

    ``history_limit``: if set, history older than that many revisions is
    compacted automatically (watches from before it raise ``Compacted``).
    """

    def __init__(self, history_limit: int | None = None) -> None:
        self._lock = threading.RLock()
        self._data: dict[str, _Record] = {}
        self._revision = 1
        self._history: list[_Change] = []
        self._compact_revision = 0
        self._history_limit = history_limit
        self._watches: dict[int, tuple[QueueWatch, str]] = {}
        self._next_id = 0

    # -- reads -------------------------------------------------------------
    @property
    def revision(self) -> int:
        """Current store revision."""
        with self._lock:
            return self._revision

    def get(self, key: str) -> KeyValue | None:
        """The key's current value, or None."""
        with self._lock:
            rec = self._data.get(key)
            return None if rec is None else self._kv(key, rec)

    def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        """Items under ``prefix`` sorted by key, and the store revision."""
        with self._lock:
            items = [
                self._kv(k, rec) for k, rec in sorted(self._data.items()) if k.startswith(prefix)
            ]
            return items, self._revision

    # -- writes ------------------------------------------------------------
    def put(self, key: str, value: dict) -> int:
        """Unconditional write; returns the new revision."""
        raw = encode_value(value)
        with self._lock:
            return self._write(key, raw)

    def create(self, key: str, value: dict) -> bool:
        """Write only if ``key`` is absent."""
        raw = encode_value(value)
        with self._lock:
            if key in self._data:
                return False
            self._write(key, raw)
            return True

    def update(self, key: str, value: dict, expected_mod_revision: int) -> bool:
        """Write only if the key's mod_revision equals ``expected_mod_revision``."""
        raw = encode_value(value)
        with self._lock:
            rec = self._data.get(key)
            if rec is None or rec.mod_revision != expected_mod_revision:
                return False
            self._write(key, raw)
            return True

    def delete(self, key: str, expected_mod_revision: int | None = None) -> bool:
        """Delete ``key`` (only at ``expected_mod_revision`` if given)."""
        with self._lock:
            rec = self._data.get(key)
            if rec is None:
                return False
            if expected_mod_revision is not None and rec.mod_revision != expected_mod_revision:
                return False
            self._delete([key])
            return True

    def delete_prefix(self, prefix: str) -> int:
        """Delete all keys under ``prefix`` in one revision; returns the count."""
        with self._lock:
            keys = sorted(k for k in self._data if k.startswith(prefix))
            if keys:
                self._delete(keys)
            return len(keys)

    # -- watches -----------------------------------------------------------
    def watch(self, prefix: str, start_revision: int = 0) -> QueueWatch:
        """Watch ``prefix`` from ``start_revision`` (0 or less: from the next write).

        History since ``start_revision`` is replayed first; if it has been
        compacted, the watch raises :class:`Compacted` on first read.
        """
        with self._lock:
            start = start_revision if start_revision > 0 else self._revision + 1
            wid = self._next_id
            self._next_id += 1
            w = QueueWatch(prefix, start, on_cancel=lambda: self._unregister(wid))
            if start < self._compact_revision:
                w.finish(Compacted(start, self._compact_revision))
                return w
            idx = bisect.bisect_left(self._history, start, key=lambda c: c.revision)
            for change in self._history[idx:]:
                if change.key.startswith(prefix):
                    w.deliver(self._event(change))
            self._watches[wid] = (w, prefix)
            return w

    def compact(self, revision: int) -> None:
        """Forget history before ``revision`` (like etcd's compaction)."""
        with self._lock:
            if revision > self._revision:
                raise ValueError(f"cannot compact to future revision {revision}")
            if revision <= self._compact_revision:
                return
            self._compact_revision = revision
            idx = bisect.bisect_left(self._history, revision, key=lambda c: c.revision)
            del self._history[:idx]

    def close(self) -> None:
        """Cancel all open watches."""
        with self._lock:
            watches = [w for w, _ in self._watches.values()]
        for w in watches:
            w.cancel()

    # -- internals ---------------------------------------------------------
    def _unregister(self, wid: int) -> None:
        with self._lock:
            self._watches.pop(wid, None)

    @staticmethod
    def _kv(key: str, rec: _Record) -> KeyValue:
        return KeyValue(key, decode_value(rec.raw, key), rec.mod_revision, rec.create_revision)

    @staticmethod
    def _event(change: _Change) -> Event:
        value = None if change.raw is None else decode_value(change.raw, change.key)
        return Event(change.type, change.key, value, change.revision)  # type: ignore[arg-type]

    def _write(self, key: str, raw: bytes) -> int:
        self._revision += 1
        rev = self._revision
        old = self._data.get(key)
        self._data[key] = _Record(raw, old.create_revision if old else rev, rev)
        self._record([_Change(rev, "PUT", key, raw)])
        return rev

    def _delete(self, keys: list[str]) -> None:
        self._revision += 1
        for k in keys:
            del self._data[k]
        self._record([_Change(self._revision, "DELETE", k, None) for k in keys])

    def _record(self, changes: list[_Change]) -> None:
        self._history.extend(changes)
        for w, prefix in list(self._watches.values()):
            for change in changes:
                if change.key.startswith(prefix):
                    w.deliver(self._event(change))
        if self._history_limit is not None:
            floor = self._revision - self._history_limit + 1
            if floor > self._compact_revision:
                self.compact(floor)


__all__ = ["MemoryStore"]
