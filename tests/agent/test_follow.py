"""The daemons' shared list -> watch -> sync loop, against a MemoryStore in a thread."""

from __future__ import annotations

import threading
import time

from testbed.agent.follow import Follower
from testbed.agent.watched import WatchedState
from testbed.store.memory import MemoryStore

PODS = "/registry/pods/"


def wait_for(check, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


class Daemon:
    """Records what the loop asks of it."""

    def __init__(self, store, **options) -> None:
        self.state = WatchedState((PODS,))
        self.syncs: list[bool] = []
        self.present = True
        self.ticks = 0
        self.stop = threading.Event()
        self.follower = Follower(store, self.state, self.on_event, self.syncs.append,
                                 lambda: self.present, self.tick, poll_seconds=0.02,
                                 batch_seconds=0.02, **options)
        self.thread = threading.Thread(target=self.follower.run, args=(self.stop,),
                                       daemon=True)

    def on_event(self, event) -> bool:
        return self.state.apply(event) is not None  # heartbeats (not followed) sync nothing

    def tick(self) -> None:
        self.ticks += 1

    def __enter__(self) -> Daemon:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(5)
        assert not self.thread.is_alive()


def test_full_sync_first_then_one_sync_per_burst():
    store = MemoryStore()
    store.put(PODS + "a/one", {"n": 1})
    with Daemon(store, stall_seconds=60) as d:
        wait_for(lambda: d.syncs == [True])
        assert d.state[PODS] == {"a/one": {"n": 1}}
        for i in range(20):  # one burst
            store.put(PODS + f"a/p{i}", {"n": i})
        wait_for(lambda: len(d.state[PODS]) == 21)
        wait_for(lambda: False in d.syncs)
        time.sleep(0.1)
        assert d.syncs.count(False) <= 2  # batched, not one per event
        before = len(d.syncs)
        store.put("/status/nodes/w1", {"heartbeat": 1})  # followed by nobody: no sync
        time.sleep(0.1)
        assert len(d.syncs) == before and d.ticks > 0


def test_silent_watch_and_missing_rules_lead_to_full_syncs():
    store = MemoryStore()
    with Daemon(store, stall_seconds=0.2, canary_seconds=60) as d:
        wait_for(lambda: d.syncs.count(True) >= 3)  # no events at all: re-lists
    store = MemoryStore()
    with Daemon(store, stall_seconds=60, canary_seconds=0.05) as d:
        wait_for(lambda: d.syncs == [True])
        d.present = False
        wait_for(lambda: d.syncs.count(True) >= 2)


def test_periodic_relist_picks_up_what_the_watch_missed():
    store = MemoryStore()
    with Daemon(store, stall_seconds=60, relist_seconds=0.2) as d:
        wait_for(lambda: d.syncs == [True])
        d.state[PODS]["ghost/x"] = {}  # state that drifted from the store
        wait_for(lambda: "ghost/x" not in d.state[PODS] and d.syncs.count(True) >= 2)
