"""The list → watch → sync loop the node daemons (proxyd, policyd) share.

List every watched prefix, converge fully, then follow one watch on "/": events are taken in
batches (a burst becomes one sync), a canary restores the kernel state when someone removed
it, and the loop starts over with a fresh list when the watch fails, when it has been silent
for ``stall_seconds`` (node heartbeats put an event under "/" every ~2 s, so silence means a
watch that stalled inside etcd's gateway without an error) or, optionally, every
``relist_seconds`` to heal anything a watch may have missed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from testbed.agent.watched import WatchedState
from testbed.store.base import Event, WatchError

log = logging.getLogger(__name__)


@dataclass
class Follower:
    """Keeps ``state`` current from ``store`` and calls back a daemon's steps.

    ``on_event(event) -> bool`` applies an event (to ``state``) and says whether a sync is
    due; ``sync(full)`` converges the kernel; ``rules_present()`` is the canary; ``tick()``
    runs once per loop turn (about every ``poll_seconds``) for periodic work.
    """

    store: object
    state: WatchedState
    on_event: Callable[[Event], bool]
    sync: Callable[[bool], None]
    rules_present: Callable[[], bool]
    tick: Callable[[], None] | None = None
    name: str = "daemon"
    poll_seconds: float = 0.5
    batch_seconds: float = 0.05
    canary_seconds: float = 2.0
    stall_seconds: float = 10.0
    relist_seconds: float | None = None

    def run(self, stop: threading.Event | None = None) -> None:
        """List, sync fully, follow the watch; start over after any watch failure."""
        stop = stop or threading.Event()
        while not stop.is_set():
            revision = self.state.load(self.store)
            self.sync(True)
            watch = self.store.watch("/", revision + 1)
            try:
                self.follow(watch, stop)
            except WatchError as exc:
                log.warning("%s: watch ended (%s); re-listing", self.name, exc)
            finally:
                watch.cancel()

    def follow(self, watch, stop: threading.Event) -> None:
        """Follow one watch until it is time to re-list (returns) or it fails (raises)."""
        started = last_canary = last_event = time.monotonic()
        while not stop.is_set():
            if self.relist_seconds is not None and \
                    time.monotonic() - started >= self.relist_seconds:
                return
            event = watch.get(timeout=self.poll_seconds)
            changed = False
            while event is not None:
                last_event = time.monotonic()
                changed |= bool(self.on_event(event))
                event = watch.get(timeout=self.batch_seconds)
            if time.monotonic() - last_event > self.stall_seconds:
                raise WatchError("no event for a while; the watch has stalled")
            if changed:
                self.sync(False)
            if time.monotonic() - last_canary > self.canary_seconds:
                last_canary = time.monotonic()
                if not self.rules_present():
                    log.warning("%s: rules missing from the kernel; full resync", self.name)
                    self.sync(True)
            if self.tick is not None:
                self.tick()
