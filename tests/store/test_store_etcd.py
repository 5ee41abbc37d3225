"""etcd-specific behaviour of EtcdStore (beyond the shared contract)."""

from __future__ import annotations

import threading

import pytest

from testbed.store import EtcdStore, StoreUnavailable, WatchError
from testbed.store.etcd import parse_endpoint, range_end


def test_parse_endpoint_and_range_end():
    assert parse_endpoint("172.30.0.2:2379") == ("172.30.0.2", 2379)
    assert parse_endpoint("http://10.0.0.1:12379/") == ("10.0.0.1", 12379)
    assert parse_endpoint("etcd") == ("etcd", 2379)
    assert parse_endpoint("[fd00::2]:2379") == ("fd00::2", 2379)
    store = EtcdStore.from_endpoint("172.30.0.2:2379")
    assert (store.host, store.port) == ("172.30.0.2", 2379)
    assert range_end("/registry/pods/") == b"/registry/pods0"
    assert range_end("a\xff") == b"a\xc3\xc0"  # UTF-8 bytes, last one incremented
    assert range_end("") == b"\0"


def test_etcd_unreachable_is_reported():
    store = EtcdStore("127.0.0.1", 1, timeout=0.5)  # nothing listens on port 1
    with pytest.raises(StoreUnavailable):
        store.wait_ready(timeout=0.3)
    with pytest.raises(StoreUnavailable):
        store.get("/x")
    with pytest.raises(StoreUnavailable):
        store.watch("/x/", 0)


def test_watch_reports_server_loss(etcd_factory):
    with etcd_factory() as server:
        store = EtcdStore(server.host, server.port, timeout=2)
        assert store.api_path == "/v3/"  # etcd3gw discovers /v3/ on etcd 3.4
        w = store.watch("/x/", 0)
        store.put("/x/a", {"n": 1})
        assert w.get(timeout=5).key == "/x/a"
        server.proc.terminate()
        server.proc.wait(timeout=10)
        with pytest.raises(WatchError):
            for _ in range(50):
                w.get(timeout=0.1)
        with pytest.raises(StoreUnavailable):
            store.get("/x/a")
        w.cancel()
        store.close()
        assert not [t for t in threading.enumerate() if t.name.startswith("etcd-watch")]
