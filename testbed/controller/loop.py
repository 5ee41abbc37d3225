"""The controller's level-triggered loop: watch, debounce, re-read everything, plan, apply.

Events are only a wake-up signal; every pass re-lists the whole store and decides from
scratch, so a missed or duplicated event, a crash half-way through a pass, or a restart
cannot leave anything behind that the next pass would not fix.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from testbed.controller.actions import Action, ApplyResult, apply_actions
from testbed.controller.gc import STATUS_GRACE_SECONDS, StatusGC
from testbed.controller.plan import plan
from testbed.controller.snapshot import Snapshot
from testbed.store.base import StoreError, WatchError, list_then_watch

log = logging.getLogger("controller")

# One watch over registry, status and config: readiness (status) drives rolling updates
# and ordered StatefulSet creation, so waiting for the periodic resync would be too slow.
WATCH_PREFIX = "/"
RESYNC_SECONDS = 5.0
DEBOUNCE_SECONDS = 0.05
MAX_BATCH_SECONDS = 0.5
RETRY_SECONDS = 1.0
# Node heartbeats (every node, every 2 s) decide nothing here: waking a full pass on each
# one made an idle controller re-list the store twice a second (27% of a core and 15% of
# etcd with 1,000 services). What depends on time (status GC) runs on the periodic resync.
IGNORED_PREFIXES = ("/status/nodes/",)


def wakes(event) -> bool:
    """Whether a watch event can change what a pass decides (heartbeats cannot)."""
    return not event.key.startswith(IGNORED_PREFIXES)


class Controller:
    """Runs :func:`~testbed.controller.plan.plan` against a store until stopped."""

    def __init__(
        self,
        store,
        *,
        resync: float = RESYNC_SECONDS,
        debounce: float = DEBOUNCE_SECONDS,
        status_grace: float = STATUS_GRACE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.resync = resync
        self.debounce = debounce
        self.clock = clock
        self.rng = rng or random.Random()
        self.status_gc = StatusGC(status_grace)
        self.passes = 0
        self._waiting_logged = False

    def reconcile(self) -> ApplyResult:
        """One full pass: read a snapshot, decide, apply. Returns what was (not) applied."""
        snap = Snapshot.read(self.store)
        self.passes += 1
        if snap is None:
            if not self._waiting_logged:
                log.info("no cluster config in the store yet; waiting")
                self._waiting_logged = True
            return ApplyResult()
        actions: list[Action] = plan(snap, self.rng)
        actions += self.status_gc.plan(snap, self.clock())
        result = apply_actions(self.store, actions)
        if result.failed:
            log.info("%d action(s) hit a newer store state; next pass retries",
                     len(result.failed))
        return result

    def safe_reconcile(self) -> None:
        """:meth:`reconcile`, logging instead of raising (the loop must keep going)."""
        try:
            self.reconcile()
        except StoreError as exc:
            log.warning("reconcile failed: %s", exc)
        except Exception:  # a bug in one pass must not stop the next ones
            log.exception("reconcile failed")

    def run(self, stop: threading.Event) -> None:
        """Watch and reconcile until ``stop`` is set; re-list after any watch failure."""
        log.info("controller starting")
        while not stop.is_set():
            try:
                _, watch = list_then_watch(self.store, WATCH_PREFIX)
            except StoreError as exc:
                log.warning("cannot watch the store (%s); retrying", exc)
                stop.wait(RETRY_SECONDS)
                continue
            try:
                self._watch_loop(watch, stop)
            except WatchError as exc:
                log.warning("watch ended (%s); re-listing", exc)
            finally:
                watch.cancel()
        log.info("controller stopped")

    def _watch_loop(self, watch, stop: threading.Event) -> None:
        self.safe_reconcile()
        last = self.clock()
        while not stop.is_set():
            timeout = max(0.0, min(0.2, self.resync - (self.clock() - last)))
            asked = time.monotonic()
            event = watch.get(timeout=timeout)
            if event is None:
                if watch.cancelled:
                    return
                if timeout > 0.05 and time.monotonic() - asked < timeout / 2:
                    # get() only returns early with nothing once the stream has ended;
                    # polling it again would spin, so treat it as a failed watch.
                    raise WatchError("watch stream ended")
            elif wakes(event):
                self._drain(watch)
                self.safe_reconcile()
                last = self.clock()
                continue
            if self.clock() - last >= self.resync:
                self.safe_reconcile()
                last = self.clock()

    def _drain(self, watch) -> None:
        """Swallow the rest of a burst: until ``debounce`` passes quietly (bounded)."""
        start = self.clock()
        while self.clock() - start < MAX_BATCH_SECONDS:
            if watch.get(timeout=self.debounce) is None:
                return
