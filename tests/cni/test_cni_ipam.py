"""IPAM: the pure allocator, both stores, and concurrent allocation."""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from testbed.cni import errors, ip4, ipam

IP = ip4.parse_ip


def rng(cidr: str = "10.244.1.0/24", start=None, end=None, gateway="10.244.1.1") -> ipam.IpRange:
    return ipam.IpRange.from_cidr(cidr, start, end, gateway)


def test_allocate_first_skips_network_and_gateway():
    assert ip4.format_ip(ipam.allocate(rng(), set())) == "10.244.1.2"
    assert ip4.format_ip(ipam.allocate(rng(gateway="10.244.1.7"), set())) == "10.244.1.1"


def test_allocate_round_robin_after_last_and_wraps():
    r = rng()
    assert ip4.format_ip(ipam.allocate(r, set(), IP("10.244.1.9"))) == "10.244.1.10"
    used = {IP("10.244.1.254")}
    assert ip4.format_ip(ipam.allocate(r, used, IP("10.244.1.253"))) == "10.244.1.2"
    # a cursor outside the range (e.g. range changed) restarts at the range start
    assert ip4.format_ip(ipam.allocate(r, set(), IP("10.9.9.9"))) == "10.244.1.2"


def test_allocate_never_returns_broadcast_network_or_gateway():
    r = rng("10.0.0.0/30", start="10.0.0.0", end="10.0.0.3", gateway="10.0.0.1")
    assert ipam.allocate(r, set()) == IP("10.0.0.2")
    with pytest.raises(ipam.IpamExhausted) as exc:
        ipam.allocate(r, {IP("10.0.0.2")})
    assert exc.value.code == errors.TRY_AGAIN_LATER


def test_allocate_respects_explicit_range():
    r = rng(start="10.244.1.100", end="10.244.1.102")
    got = set()
    last = None
    for _ in range(3):
        last = ipam.allocate(r, got, last)
        got.add(last)
    assert sorted(ip4.format_ip(i) for i in got) == ["10.244.1.100", "10.244.1.101", "10.244.1.102"]
    with pytest.raises(ipam.IpamExhausted):
        ipam.allocate(r, got, last)


def test_free_count():
    r = rng("10.0.0.0/29", gateway="10.0.0.1")  # hosts .1-.6, gateway .1 -> 5 allocatable
    assert r.free_count(set()) == 5
    assert r.free_count({IP("10.0.0.2"), IP("10.0.0.99")}) == 4


def _stores(tmp_path):
    return [ipam.MemoryIpamStore(), ipam.FileIpamStore(str(tmp_path), "net")]


@pytest.mark.parametrize("kind", [0, 1], ids=["memory", "file"])
def test_store_contract(tmp_path, kind):
    store = _stores(tmp_path)[kind]
    r = rng("10.0.0.0/29", gateway="10.0.0.1")
    a, new_a = ipam.assign(store, r, "c1", "eth0")
    b, _ = ipam.assign(store, r, "c2", "eth0")
    assert new_a and (ip4.format_ip(a), ip4.format_ip(b)) == ("10.0.0.2", "10.0.0.3")
    assert store.owners() == {a: ("c1", "eth0"), b: ("c2", "eth0")}
    assert store.reserved() == {a, b} and store.last_reserved() == b
    assert ipam.assign(store, r, "c1", "eth0", reuse=True) == (a, False)
    assert not store.reserve(a, "x", "eth0")
    assert ipam.release_ip(store, a, "someone-else", "eth0") is False
    assert ipam.release(store, "c1", "eth0") == [a]
    assert ipam.release(store, "c1", "eth0") == []  # idempotent
    c, _ = ipam.assign(store, r, "c3", "eth1")
    assert ip4.format_ip(c) == "10.0.0.4"  # round robin, not the just-freed .2
    assert sorted(ipam.gc(store, {("c3", "eth1")})) == [b]
    assert store.owners() == {c: ("c3", "eth1")}
    assert store.writable()


def test_file_store_layout(tmp_path):
    store = ipam.FileIpamStore(str(tmp_path), "testbed")
    ip, _ = ipam.assign(store, rng(), "cid-1", "eth0")
    d = tmp_path / "testbed"
    assert (d / "10.244.1.2").read_text() == "cid-1\neth0"
    assert (d / "last_reserved_ip").read_text() == "10.244.1.2"
    assert (d / "lock").exists()
    (d / "junk.tmp").write_text("x")  # foreign files are ignored
    assert store.reserved() == {ip}


def test_file_store_missing_dir_is_empty(tmp_path):
    store = ipam.FileIpamStore(str(tmp_path / "nope"), "n")
    assert store.reserved() == set() and store.last_reserved() is None
    assert store.owner(IP("10.0.0.1")) is None


def test_file_store_not_writable(tmp_path):
    # A data dir below a regular file cannot be created, not even by root (CI runs as root).
    (tmp_path / "file").write_text("x")
    assert not ipam.FileIpamStore(str(tmp_path / "file" / "sub"), "n").writable()


def test_threads_never_share_an_address(tmp_path):
    store = ipam.FileIpamStore(str(tmp_path), "net")
    r = rng("10.1.0.0/24", gateway="10.1.0.1")
    barrier = threading.Barrier(16)

    def work(i: int) -> list[int]:
        barrier.wait()
        return [ipam.assign(store, r, f"t{i}-{j}", "eth0")[0] for j in range(8)]

    with ThreadPoolExecutor(16) as pool:
        got = [ip for chunk in pool.map(work, range(16)) for ip in chunk]
    assert len(got) == len(set(got)) == 128
    assert len(store.reserved()) == 128


def test_memory_store_threads(tmp_path):
    store = ipam.MemoryIpamStore()
    r = rng("10.1.0.0/24", gateway="10.1.0.1")
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda i: ipam.assign(store, r, f"c{i}", "eth0")[0], range(200)))
    assert len(set(got)) == 200


def _proc_worker(args: tuple[str, int, int]) -> list[int]:
    data_dir, worker, count = args
    store = ipam.FileIpamStore(data_dir, "net")
    r = ipam.IpRange.from_cidr("10.2.0.0/24", gateway="10.2.0.1")
    return [ipam.assign(store, r, f"p{worker}-{j}", "eth0")[0] for j in range(count)]


def test_processes_never_share_an_address(tmp_path):
    ctx = multiprocessing.get_context("spawn" if os.name != "posix" else "fork")
    with ctx.Pool(8) as pool:
        chunks = pool.map(_proc_worker, [(str(tmp_path), w, 30) for w in range(8)])
    got = [ip for chunk in chunks for ip in chunk]
    assert len(got) == len(set(got)) == 240
    store = ipam.FileIpamStore(str(tmp_path), "net")
    owners = store.owners()
    assert len(owners) == 240 and len(set(owners.values())) == 240


def test_processes_exhaust_cleanly(tmp_path):
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(4) as pool:
        chunks = pool.map(_try_small, [(str(tmp_path), w) for w in range(4)])
    results = [x for chunk in chunks for x in chunk]
    ok = [ip for ip in results if isinstance(ip, int)]
    assert len(ok) == len(set(ok)) == 5  # /29 minus network, gateway, broadcast
    assert results.count("exhausted") == 15


def _try_small(args: tuple[str, int]) -> list:
    data_dir, worker = args
    store = ipam.FileIpamStore(data_dir, "small")
    r = ipam.IpRange.from_cidr("10.3.0.0/29", gateway="10.3.0.1")
    out = []
    for j in range(5):
        try:
            out.append(ipam.assign(store, r, f"w{worker}-{j}", "eth0")[0])
        except ipam.IpamExhausted:
            out.append("exhausted")
    return out
