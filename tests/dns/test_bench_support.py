"""Benchmark inputs and the UDP flood client."""

from __future__ import annotations

from testbed.dns.bench_support import (
    bench_services,
    service_fqdn,
    service_ip,
    udp_flood,
    write_dnsmasq_hosts,
    write_dnsperf_queries,
)
from testbed.dns.records import build_zone
from testbed.store.memory import MemoryStore

from .helpers import Harness, put


def test_files_describe_the_same_services(tmp_path) -> None:
    n = write_dnsperf_queries(tmp_path / "q.txt", 50, nxdomain_ratio=0.2)
    lines = (tmp_path / "q.txt").read_text().splitlines()
    assert n == len(lines) == 60 and all(line.endswith(" A") for line in lines)
    assert sum(line.startswith("missing-") for line in lines) == 10
    assert write_dnsmasq_hosts(tmp_path / "hosts", 50) == 50
    hosts = dict(reversed(line.split()) for line in (tmp_path / "hosts").read_text().splitlines())
    zone = build_zone(bench_services(50))
    for line in lines:
        name = line.split()[0]
        ans = zone.lookup(name, "A")
        if name.startswith("missing-"):
            assert ans.rcode == 3
        else:
            assert [r.data for r in ans.answers] == [hosts[name]]
    assert service_fqdn(3) == "svc-3.bench.svc.cluster.local"
    assert service_ip(0) == "10.96.3.232"


def test_udp_flood_against_server() -> None:
    store = MemoryStore()
    for svc in bench_services(3):
        put(store, svc)
    h = Harness(store, upstream=False)
    try:
        h.wait_ready()
        res = udp_flood("127.0.0.1", h.port, service_fqdn(1), count=500, window=16)
        assert res.sent == res.received == 500 and res.qps > 0
        assert h.server.metrics.cache_hits >= 499
    finally:
        h.close()


def test_bench_pins_servers_and_load_generator_apart():
    from testbed.bench.dns_node import cpu_split, percentiles, pinned

    assert cpu_split({0, 1}) == ([1], [0])
    assert cpu_split({0, 1, 2, 3}) == ([3], [0, 1, 2])
    assert cpu_split({5}) == ([5], [5])  # one CPU: nothing to split
    assert pinned(["dnsperf", "-l", "1"], [0, 2]) == ["taskset", "-c", "0,2", "dnsperf",
                                                     "-l", "1"]
    out = "\n".join(["> NOERROR a A 0.000100"] * 98 + ["> NOERROR a A 0.004000", "> T a A"])
    assert percentiles(out)["p99_ms"] == float("inf")  # a lost query counts as the slowest
    assert percentiles(out)["p50_ms"] == 0.1


def test_median_run_is_picked_by_p99():
    from testbed.bench.dns_node import median_run

    runs = [{"p99_ms": 9.0, "qps": 1}, {"p99_ms": 2.0, "qps": 2}, {"qps": 3}]
    assert median_run(runs)["qps"] == 1  # a run without percentiles ranks as the worst
