"""WatchedState: one list plus watch events keep prefix -> ref -> value current."""

from __future__ import annotations

from testbed.agent.watched import WatchedState
from testbed.store.memory import MemoryStore


def test_list_then_events_keep_state_current():
    store = MemoryStore()
    store.put("/registry/services/a/s1", {"n": 1})
    store.put("/registry/pods/a/p1", {"n": 2})
    state = WatchedState(("/registry/services/", "/status/nodes/"))
    revision = state.load(store)
    assert state["/registry/services/"] == {"a/s1": {"n": 1}}
    watch = store.watch("/", revision + 1)
    store.put("/status/nodes/w1", {"ready": True})
    store.delete("/registry/services/a/s1")
    store.put("/registry/pods/a/p2", {})
    changed = [state.apply(watch.get(timeout=1)) for _ in range(3)]
    watch.cancel()
    assert changed == ["/status/nodes/", "/registry/services/", None]
    assert state == {"/registry/services/": {}, "/status/nodes/": {"w1": {"ready": True}}}
