"""The controller loop against a MemoryStore in a thread: watch, resync, re-list."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from testbed.controller.loop import Controller
from testbed.store.base import Compacted
from testbed.store.keys import CONFIG_KEY, spec_key
from testbed.store.memory import MemoryStore

from .helpers import FakeAgents, deployment, make_config, pods, put, status


def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


class Running:
    """A controller running in a thread until the context exits."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.stop = threading.Event()
        self.thread = threading.Thread(target=controller.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> Controller:
        self.thread.start()
        return self.controller

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        assert not self.thread.is_alive(), "controller did not stop"


def test_loop_reacts_to_changes_and_stops(store, config):
    agents = FakeAgents(store, config)
    with Running(Controller(store, resync=60)):
        wait_for(lambda: store.get(spec_key("Node", None, "worker1")) is not None)
        key = put(store, deployment("web", replicas=2))
        wait_for(lambda: len(pods(store)) == 2)
        agents.step()  # Ready statuses are events too: the status follows without a resync
        wait_for(lambda: (status(store, "Deployment", "web") or {}).get("readyReplicas") == 2)
        store.delete(key)
        wait_for(lambda: all(p["metadata"].get("deletionTimestamp")
                             for p in pods(store, live=False).values()))


def test_loop_waits_for_config_then_converges():
    store = MemoryStore()
    controller = Controller(store, resync=60)
    with Running(controller):
        wait_for(lambda: controller.passes >= 1)
        assert store.list("/registry/")[0] == []
        store.put(CONFIG_KEY, make_config())
        wait_for(lambda: store.get(spec_key("Namespace", None, "default")) is not None)


def test_periodic_resync_runs_without_events(store):
    controller = Controller(store, resync=0.1)
    with Running(controller):
        wait_for(lambda: controller.passes >= 4, timeout=3)


def test_node_heartbeats_do_not_wake_a_pass_but_pods_do(store):
    controller = Controller(store, resync=60)
    with Running(controller):
        wait_for(lambda: store.get(spec_key("Node", None, "worker1")) is not None)
        time.sleep(0.3)  # let the passes the controller's own writes caused settle
        before = controller.passes
        for i in range(20):
            store.put("/status/nodes/worker1", {"conditions": [
                {"type": "Ready", "status": "True", "lastHeartbeatTime": str(i)}]})
            time.sleep(0.01)
        time.sleep(0.3)
        assert controller.passes == before
        put(store, deployment("web", replicas=1))
        wait_for(lambda: len(pods(store)) == 1)
        assert controller.passes > before


def test_periodic_resync_runs_amid_heartbeats(store):
    controller = Controller(store, resync=0.2)
    with Running(controller):
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:  # a steady heartbeat stream must not hide resyncs
            store.put("/status/nodes/worker1", {"t": time.monotonic()})
            time.sleep(0.02)
        assert controller.passes >= 4


class FlakyWatchStore(MemoryStore):
    """A MemoryStore whose first ``failures`` watches fail with Compacted right away."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.watches = 0

    def watch(self, prefix: str, start_revision: int = 0):
        self.watches += 1
        w = super().watch(prefix, start_revision)
        if self.failures > 0:
            self.failures -= 1
            w.finish(Compacted(start_revision, start_revision + 1))
        return w


def test_loop_relists_after_compaction():
    store = FlakyWatchStore(failures=2)
    store.put(CONFIG_KEY, make_config())
    with Running(Controller(store, resync=60)):
        wait_for(lambda: store.watches >= 3)
        put(store, deployment("web", replicas=1))
        wait_for(lambda: len(pods(store)) == 1)


def test_reconcile_errors_do_not_kill_the_loop(store, monkeypatch):
    controller = Controller(store, resync=0.05)
    calls = {"n": 0}
    real = controller.reconcile

    def flaky():
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return real()

    monkeypatch.setattr(controller, "reconcile", flaky)
    with Running(controller):
        wait_for(lambda: store.get(spec_key("Node", None, "worker1")) is not None)


def test_status_gc_in_the_loop_uses_the_clock(store):
    now = {"t": 0.0}
    controller = Controller(store, status_grace=30, clock=lambda: now["t"])
    store.put("/status/pods/default/ghost", {"phase": "Running"})
    for _ in range(2):
        controller.reconcile()
    assert store.get("/status/pods/default/ghost") is not None
    now["t"] = 31.0
    controller.reconcile()
    assert store.get("/status/pods/default/ghost") is None
