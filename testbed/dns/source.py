"""Feeds a :class:`~testbed.dns.index.ClusterIndex` from the store's watches.

One thread per prefix runs the list-then-watch loop (the store's watches block) and
hands lists and events to the asyncio loop with ``call_soon_threadsafe``; the index
is only touched on the loop thread. A broken watch (``WatchError``, ``Compacted``) or an
unreachable store leads to a fresh list after a short back-off.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from testbed.dns.index import PREFIXES, ClusterIndex
from testbed.store import Store, list_then_watch
from testbed.store.base import Event, KeyValue, Watch

log = logging.getLogger(__name__)

RELIST_SECONDS = 60.0


class StoreSource:
    """Feeds ``index`` from a store; ``on_change("list"|"event")`` runs after each update."""

    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop, index: ClusterIndex,
                 on_change: Callable[[str], None], backoff: float = 0.5) -> None:
        self.store = store
        self.loop = loop
        self.index = index
        self.on_change = on_change
        self.backoff = backoff
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._watches: dict[str, Watch] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start one list-then-watch thread per prefix."""
        for prefix in PREFIXES:
            t = threading.Thread(target=self._run, args=(prefix,), daemon=True,
                                 name=f"dns-watch{prefix.replace('/', '-')}")
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the threads (cancels their watches) and wait for them."""
        self._stop.set()
        with self._lock:
            watches = list(self._watches.values())
        for w in watches:
            w.cancel()
        for t in self._threads:
            t.join(timeout)

    def _deliver(self, fn: Callable[..., None], *args: object) -> None:
        if self._stop.is_set():
            return
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # loop closed
            self._stop.set()

    def _on_list(self, prefix: str, items: list[KeyValue]) -> None:
        self.index.replace(prefix, items)
        self.on_change("list")

    def _on_event(self, prefix: str, event: Event) -> None:
        self.index.apply(prefix, event)
        self.on_change("event")

    def _run(self, prefix: str) -> None:
        while not self._stop.is_set():
            watch: Watch | None = None
            try:
                items, watch = list_then_watch(self.store, prefix)
                with self._lock:
                    self._watches[prefix] = watch
                self._deliver(self._on_list, prefix, items)
                # A periodic re-list heals a watch that stalled without an error.
                relist_at = time.monotonic() + RELIST_SECONDS
                while not self._stop.is_set() and time.monotonic() < relist_at:
                    event = watch.get(timeout=0.5)
                    if event is not None:
                        self._deliver(self._on_event, prefix, event)
                    elif watch.cancelled:
                        break
            except Exception as exc:  # noqa: BLE001 - any failure: back off and re-list
                if not self._stop.is_set():
                    log.warning("watch of %s failed (%s); re-listing", prefix, exc)
                    self._stop.wait(self.backoff)
            finally:
                if watch is not None:
                    watch.cancel()
                with self._lock:
                    self._watches.pop(prefix, None)


__all__ = ["StoreSource"]
