"""Contract tests run against MemoryStore and a real etcd (EtcdStore)."""

from __future__ import annotations

import threading
import time

import pytest

from testbed.store import (
    Compacted,
    Conflict,
    Event,
    MemoryStore,
    list_then_watch,
    list_watch,
    mutate,
)

WAIT = 5.0


def collect(watch, n: int, timeout: float = WAIT) -> list[Event]:
    """Read exactly ``n`` events (fail if they do not arrive in time)."""
    events: list[Event] = []
    deadline = time.monotonic() + timeout
    while len(events) < n:
        left = deadline - time.monotonic()
        assert left > 0, f"only {len(events)}/{n} events: {events}"
        ev = watch.get(timeout=left)
        if ev is not None:
            events.append(ev)
    return events


def test_crud(store, pfx):
    key = pfx + "a"
    assert store.get(key) is None
    rev1 = store.put(key, {"n": 1})
    kv = store.get(key)
    assert (kv.key, kv.value, kv.mod_revision, kv.create_revision) == (key, {"n": 1}, rev1, rev1)
    rev2 = store.put(key, {"n": 2})
    assert rev2 > rev1
    kv = store.get(key)
    assert (kv.value, kv.mod_revision, kv.create_revision) == ({"n": 2}, rev2, rev1)
    assert store.delete(key) is True
    assert store.get(key) is None
    assert store.delete(key) is False


def test_values_round_trip(store, pfx):
    key = pfx + "ünï/cödé"
    value = {"s": "héllo ✓", "l": [1, 2.5, None, True], "d": {"x": {"y": []}}}
    store.put(key, value)
    got = store.get(key).value
    assert got == value
    got["s"] = "mutated by caller"
    assert store.get(key).value == value
    with pytest.raises(TypeError):
        store.put(key, ["not", "a", "dict"])


def test_list_sorted_with_revision(store, pfx):
    last = 0
    for name in ["c", "a", "b/x", "b"]:
        last = store.put(pfx + name, {"name": name})
    store.put(pfx.rstrip("/") + "x", {"outside": True})  # sibling prefix, same leading chars
    store.put(pfx[:-1], {"outside": True})  # the prefix without its slash
    items, rev = store.list(pfx)
    assert [kv.key for kv in items] == [pfx + "a", pfx + "b", pfx + "b/x", pfx + "c"]
    assert [kv.value["name"] for kv in items] == ["a", "b", "b/x", "c"]
    assert rev >= last + 2
    assert store.list(pfx + "zzz") == ([], rev)
    items2, rev2 = list_watch(store, pfx)
    assert (items2, rev2) == (items, rev)


def test_create_if_absent_race(store, pfx):
    key = pfx + "leader"
    n = 8
    barrier = threading.Barrier(n)
    results: dict[int, bool] = {}

    def contend(i: int) -> None:
        barrier.wait()
        results[i] = store.create(key, {"winner": i})

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, ok in results.items() if ok]
    assert len(winners) == 1
    assert store.get(key).value == {"winner": winners[0]}
    assert store.create(key, {"winner": -1}) is False


def test_compare_and_swap(store, pfx):
    key = pfx + "cas"
    assert store.update(key, {"v": 0}, 1) is False  # absent
    store.put(key, {"v": 1})
    stale = store.get(key)
    assert store.update(key, {"v": 2}, stale.mod_revision) is True
    assert store.update(key, {"v": 3}, stale.mod_revision) is False
    current = store.get(key)
    assert current.value == {"v": 2} and current.mod_revision > stale.mod_revision
    assert store.delete(key, expected_mod_revision=stale.mod_revision) is False
    assert store.get(key) is not None
    assert store.delete(key, expected_mod_revision=current.mod_revision) is True
    assert store.get(key) is None


def test_delete_prefix(store, pfx):
    for name in ["a", "b", "c/d"]:
        store.put(pfx + name, {})
    outside = pfx.rstrip("/") + "-other"
    store.put(outside, {})
    _, rev = store.list(pfx)
    w = store.watch(pfx, rev + 1)
    try:
        assert store.delete_prefix(pfx) == 3
        events = collect(w, 3)
    finally:
        w.cancel()
    assert {e.key for e in events} == {pfx + "a", pfx + "b", pfx + "c/d"}
    assert all(e.type == "DELETE" and e.value is None for e in events)
    assert len({e.mod_revision for e in events}) == 1  # one revision for the whole range
    assert store.list(pfx)[0] == []
    assert store.get(outside) is not None
    assert store.delete_prefix(pfx) == 0


def test_watch_ordering(store, pfx):
    _, rev = store.list(pfx)
    w = store.watch(pfx, rev + 1)
    try:
        expected = []
        for i in range(10):
            key = pfx + f"k{i % 3}"
            expected.append(("PUT", key, {"i": i}, store.put(key, {"i": i})))
        store.put("/elsewhere" + pfx, {"ignored": True})
        events = collect(w, 10)
        assert [(e.type, e.key, e.value, e.mod_revision) for e in events] == expected
        assert w.get(timeout=0.2) is None  # nothing else (the /elsewhere write is filtered)
    finally:
        w.cancel()


def test_watch_resume_from_list_revision(store, pfx):
    store.put(pfx + "before", {"n": 0})
    items, rev = list_watch(store, pfx)
    assert [kv.key for kv in items] == [pfx + "before"]
    # written after the list but before the watch starts: must not be lost
    r1 = store.put(pfx + "gap1", {"n": 1})
    r2 = store.put(pfx + "before", {"n": 2})
    w = store.watch(pfx, rev + 1)
    try:
        r3 = store.put(pfx + "after", {"n": 3})
        events = collect(w, 3)
    finally:
        w.cancel()
    assert [(e.key, e.mod_revision) for e in events] == [
        (pfx + "gap1", r1),
        (pfx + "before", r2),
        (pfx + "after", r3),
    ]


def test_list_then_watch(store, pfx):
    store.put(pfx + "x", {"n": 1})
    items, w = list_then_watch(store, pfx)
    with w:
        rev = store.put(pfx + "y", {"n": 2})
        (event,) = collect(w, 1)
    assert [kv.key for kv in items] == [pfx + "x"]
    assert (event.key, event.mod_revision) == (pfx + "y", rev)


def test_watch_large_values(store, pfx):
    big = {"blob": "x" * 300_000, "uni": "é" * 1000}
    with store.watch(pfx, 0) as w:
        store.put(pfx + "big", big)
        store.put(pfx + "small", {"n": 1})
        first, second = collect(w, 2)
    assert first.value == big and second.value == {"n": 1}


def test_watch_delete_events(store, pfx):
    key = pfx + "gone"
    store.put(key, {"n": 1})
    mod = store.get(key).mod_revision
    w = store.watch(pfx, mod)
    try:
        store.delete(key)
        put, delete = collect(w, 2)
    finally:
        w.cancel()
    assert (put.type, put.key, put.value, put.mod_revision) == ("PUT", key, {"n": 1}, mod)
    assert (delete.type, delete.key, delete.value) == ("DELETE", key, None)
    assert delete.mod_revision > mod


def test_watch_cancel_from_other_thread(store, pfx):
    before = set(threading.enumerate())
    w = store.watch(pfx, 0)
    assert w.get(timeout=0.1) is None  # poll with nothing to read
    seen: list[Event] = []
    done = threading.Event()

    def consume() -> None:
        seen.extend(w)  # blocks until cancel
        done.set()

    consumer = threading.Thread(target=consume)
    consumer.start()
    store.put(pfx + "one", {})
    deadline = time.monotonic() + WAIT
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    w.cancel()
    assert done.wait(WAIT), "iteration did not end after cancel"
    consumer.join()
    w.cancel()  # idempotent
    assert w.cancelled
    assert [e.key for e in seen] == [pfx + "one"]
    store.put(pfx + "two", {})
    assert w.get(timeout=0.2) is None
    assert list(w) == []
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leaked == []


def test_close_cancels_watches(store, pfx):
    w = store.watch(pfx, 0)
    store.close()
    assert w.cancelled
    assert w.get(timeout=0.1) is None


def test_watch_compacted_revision(store, pfx):
    first = store.put(pfx + "a", {"n": 1})
    last = store.put(pfx + "a", {"n": 2})
    store.compact(last)
    w = store.watch(pfx, first)
    try:
        with pytest.raises(Compacted) as info:
            w.get(timeout=WAIT)
        assert info.value.revision == first
        with pytest.raises(Compacted):
            list(w)
    finally:
        w.cancel()
    # watching from the compaction point itself still works
    with store.watch(pfx, last) as w2:
        (event,) = collect(w2, 1)
    assert (event.value, event.mod_revision) == ({"n": 2}, last)


def test_mutate_concurrent_writers_lose_no_update(store, pfx):
    key = pfx + "counter"
    writers, increments = 4, 12

    def bump(current: dict | None) -> dict:
        value = current or {"count": 0, "by": []}
        value["count"] += 1
        return value

    def work() -> None:
        for _ in range(increments):
            mutate(store, key, bump, retries=200)

    threads = [threading.Thread(target=work) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get(key).value["count"] == writers * increments


def test_mutate_noop_and_give_up(store, pfx):
    key = pfx + "m"
    assert mutate(store, key, lambda cur: None) is None
    assert store.get(key) is None
    assert mutate(store, key, lambda cur: {"v": 1}) == {"v": 1}
    rev = store.get(key).mod_revision
    assert mutate(store, key, lambda cur: cur) == {"v": 1}
    assert store.get(key).mod_revision == rev  # unchanged value: no write

    calls = []

    def racing(cur: dict | None) -> dict:
        calls.append(1)
        store.put(key, {"v": len(calls) * 100})  # someone else always wins
        return {"v": -1}

    with pytest.raises(Conflict):
        mutate(store, key, racing, retries=3)
    assert len(calls) == 3
    assert store.get(key).value == {"v": 300}


def test_memory_history_limit():
    store = MemoryStore(history_limit=3)
    revs = [store.put("/k", {"i": i}) for i in range(5)]
    with pytest.raises(Compacted):
        store.watch("/", revs[0]).get(timeout=1)
    with store.watch("/", revs[2]) as w:
        assert [e.mod_revision for e in collect(w, 3)] == revs[2:]
