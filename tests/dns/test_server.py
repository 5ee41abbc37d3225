"""The DNS server end to end over UDP and TCP, fed by a MemoryStore."""

from __future__ import annotations

import struct
import urllib.error
import urllib.request

import pytest
from dnslib import QTYPE, DNSRecord

from testbed.dns.bench_support import build_query
from testbed.store.base import QueueWatch, WatchError
from testbed.store.memory import MemoryStore

from .helpers import (
    Harness,
    ask,
    endpoint,
    endpoint_slice,
    free_port,
    make_query,
    put,
    rdatas,
    send_raw,
    service,
    wait_for,
)

K8S = "kubernetes.default.svc.cluster.local"


@pytest.mark.parametrize("tcp", [False, True])
def test_cluster_ip_over_udp_and_tcp(harness, tcp) -> None:
    r = ask(harness.port, K8S, tcp=tcp)
    assert r.header.rcode == 0 and r.header.aa and r.header.ra
    assert rdatas(r) == ["10.96.0.1"] and r.rr[0].ttl == 5


def test_negative_answers_carry_soa(harness) -> None:
    r = ask(harness.port, "nope.default.svc.cluster.local")
    assert r.header.rcode == 3 and QTYPE[r.auth[0].rtype] == "SOA" and r.auth[0].ttl == 5
    r = ask(harness.port, K8S, "AAAA")
    assert r.header.rcode == 0 and not r.rr and QTYPE[r.auth[0].rtype] == "SOA"


def test_srv_ptr_and_headless(harness) -> None:
    r = ask(harness.port, "_http._tcp.web.default.svc.cluster.local", "SRV")
    assert sorted(rdatas(r)) == ["0 50 8080 10-244-2-6.web.default.svc.cluster.local.",
                                 "0 50 8080 web-0.web.default.svc.cluster.local."]
    assert sorted(str(rr.rdata) for rr in r.ar) == ["10.244.1.5", "10.244.2.6"]
    assert rdatas(ask(harness.port, "5.1.244.10.in-addr.arpa", "PTR")) == [
        "web-0.web.default.svc.cluster.local."]
    assert sorted(rdatas(ask(harness.port, "web.default.svc.cluster.local"))) == [
        "10.244.1.5", "10.244.2.6"]


def test_watch_update_makes_new_service_answer(harness, store) -> None:
    name = "late.default.svc.cluster.local"
    assert ask(harness.port, name).header.rcode == 3
    put(store, service("late", cluster_ip="10.96.7.7"))
    wait_for(lambda: rdatas(ask(harness.port, name)) == ["10.96.7.7"])
    store.delete("/registry/services/default/late")
    wait_for(lambda: ask(harness.port, name).header.rcode == 3)
    assert harness.server.metrics.store_events >= 2


def _forty(store) -> None:
    put(store, service("many", cluster_ip="None"))
    put(store, endpoint_slice("many", [endpoint(f"10.250.0.{i}") for i in range(1, 41)]))


def test_truncation_and_tcp_retry_for_40_endpoints(harness, store) -> None:
    _forty(store)
    name = "many.default.svc.cluster.local"
    wait_for(lambda: ask(harness.port, name, tcp=True).rr)
    udp = ask(harness.port, name)
    assert udp.header.tc and not udp.rr
    tcp = ask(harness.port, name, tcp=True)
    assert not tcp.header.tc and len(tcp.rr) == 40
    assert harness.server.metrics.truncated >= 1


def test_edns_payload_size_is_honoured(harness, store) -> None:
    _forty(store)
    name = "many.default.svc.cluster.local"
    wait_for(lambda: ask(harness.port, name, tcp=True).rr)
    small = ask(harness.port, name, edns=600)
    assert small.header.tc and not small.rr
    big = ask(harness.port, name, edns=4096, do=True)
    assert not big.header.tc and len(big.rr) == 40
    opt = [rr for rr in big.ar if rr.rtype == QTYPE.OPT]
    assert len(opt) == 1 and opt[0].rclass == 1232 and opt[0].ttl & 0x8000  # DO echoed
    plain = ask(harness.port, K8S)
    assert not [rr for rr in plain.ar if rr.rtype == QTYPE.OPT]


def test_forwarding_to_upstream(harness) -> None:
    up = harness.upstream
    assert rdatas(ask(harness.port, "www.example.test")) == ["192.0.2.10"]
    r = ask(harness.port, "alias.example.test")
    assert rdatas(r) == ["www.example.test.", "192.0.2.10"] and r.header.ra
    assert rdatas(ask(harness.port, "whoami.example.test", "TXT")) == ['"127.0.0.1"']
    assert ask(harness.port, "missing.example.test").header.rcode == 3
    before = up.queries
    ask(harness.port, "9.9.9.9.in-addr.arpa", "PTR")  # not a cluster IP: forwarded
    assert up.queries == before + 1
    assert harness.server.metrics.forwarded >= 5


def test_forwarded_replies_are_cached_for_their_ttl(harness) -> None:
    up = harness.upstream
    first = ask(harness.port, "www.example.test")
    before = up.queries
    again = ask(harness.port, "WWW.Example.TEST")
    assert up.queries == before  # answered from the forward cache
    assert rdatas(again) == rdatas(first) == ["192.0.2.10"]
    assert str(again.q.qname) == "WWW.Example.TEST." and again.header.id != first.header.id
    assert 0 < again.rr[0].ttl <= 30  # the upstream's 300 s, capped like `cache 30`
    assert harness.server.metrics.forward_cache_hits == 1
    ask(harness.port, "www.example.test", "TXT")  # another type is another entry
    assert up.queries == before + 1


def test_repeated_forwarded_queries_see_ttls_count_down(harness) -> None:
    import time

    ask(harness.port, "www.example.test")  # fills the forward cache
    first = ask(harness.port, "www.example.test").rr[0].ttl  # the same bytes: exact cache
    time.sleep(1.2)
    later = ask(harness.port, "www.example.test").rr[0].ttl
    assert first - 2 <= later < first  # not frozen by the exact-bytes cache
    assert harness.upstream.queries == 1


def test_forward_cache_can_be_turned_off(store) -> None:
    h = Harness(store, forward_cache_ttl=0)
    try:
        h.wait_ready()
        for _ in range(3):
            assert rdatas(ask(h.port, "www.example.test")) == ["192.0.2.10"]
        assert h.upstream.queries == 3 and h.server.metrics.forward_cache_hits == 0
    finally:
        h.close()


def test_forwarded_truncation_falls_back_to_tcp(harness) -> None:
    up = harness.upstream
    udp = ask(harness.port, "big.example.test")
    assert udp.header.tc  # 40 records do not fit the client's 512 bytes
    assert harness.server.forwarder.tcp_fallbacks >= 1 and up.tcp_queries >= 1
    tcp = ask(harness.port, "big.example.test", tcp=True)
    assert sorted(rdatas(tcp)) == sorted(v for _, v in up.records["big.example.test."])
    assert len(ask(harness.port, "big.example.test", edns=4096).rr) == 40


def test_external_name_is_chased_upstream(harness) -> None:
    r = ask(harness.port, "ext.default.svc.cluster.local")
    assert rdatas(r) == ["alias.example.test.", "www.example.test.", "192.0.2.10"]
    assert rdatas(ask(harness.port, "ext.default.svc.cluster.local", "CNAME")) == [
        "alias.example.test."]


def test_servfail_when_upstream_is_down(store) -> None:
    h = Harness(store, upstream=False, upstream_port=free_port())
    try:
        h.wait_ready()
        assert ask(h.port, "www.example.test").header.rcode == 2
        assert ask(h.port, "www.example.test", tcp=True).header.rcode == 2
        assert rdatas(ask(h.port, K8S)) == ["10.96.0.1"]  # cluster names unaffected
        assert h.server.metrics.forward_failures == 2
    finally:
        h.close()


def test_no_upstream_refuses(store) -> None:
    h = Harness(store, upstream=False)
    try:
        h.wait_ready()
        assert ask(h.port, "www.example.test").header.rcode == 5
    finally:
        h.close()


def test_cache_hits_and_invalidation(harness, store) -> None:
    m = harness.server.metrics
    ask(harness.port, K8S)
    hits, misses = m.cache_hits, m.cache_misses
    for _ in range(3):
        ask(harness.port, K8S)
    ask(harness.port, K8S.upper())  # case-insensitive key
    assert (m.cache_hits, m.cache_misses) == (hits + 4, misses)
    ask(harness.port, K8S, tcp=True)  # TCP has its own size class
    assert m.cache_misses == misses + 1
    put(store, service("other", cluster_ip="10.96.9.9"))
    wait_for(lambda: rdatas(ask(harness.port, "other.default.svc.cluster.local")))
    misses = m.cache_misses
    ask(harness.port, K8S)
    assert m.cache_misses == misses + 1  # the event dropped the cache


def test_query_id_is_patched_into_cached_bytes(harness) -> None:
    first = send_raw(harness.port, build_query(K8S, qid=0x1234))
    second = send_raw(harness.port, build_query(K8S, qid=0xBEEF))
    assert first[:2] == b"\x12\x34" and second[:2] == b"\xbe\xef"
    assert first[2:] == second[2:]
    no_rd = send_raw(harness.port, build_query(K8S, qid=7, rd=False))
    assert not no_rd[2] & 0x01 and second[2] & 0x01  # RD copied from each query


def test_question_case_is_preserved(harness) -> None:
    ask(harness.port, K8S)  # warm the cache with lowercase
    mixed = "KuBeRnEtEs.DeFaUlT.svc.Cluster.LOCAL"
    raw = send_raw(harness.port, build_query(mixed, qid=9))
    r = DNSRecord.parse(raw)
    assert str(r.q.qname) == mixed + "."
    assert str(r.rr[0].rname) == mixed + "."
    assert rdatas(r) == ["10.96.0.1"]
    assert mixed.encode().split(b".")[0] in raw


def test_tcp_connection_carries_several_queries(harness) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", harness.port), timeout=3) as s:
        for qid in (1, 2, 3):
            q = build_query(K8S, qid=qid)
            s.sendall(struct.pack("!H", len(q)) + q)
            size = struct.unpack("!H", s.recv(2))[0]
            data = b""
            while len(data) < size:
                data += s.recv(size - len(data))
            assert DNSRecord.parse(data).header.id == qid


def test_malformed_and_unsupported_messages(harness) -> None:
    import socket

    two = bytearray(build_query(K8S, qid=5))
    two[4:6] = b"\x00\x02"
    assert DNSRecord.parse(send_raw(harness.port, bytes(two))).header.rcode == 1  # FORMERR
    update = bytearray(build_query(K8S, qid=6))
    update[2] |= 5 << 3  # opcode UPDATE
    assert DNSRecord.parse(send_raw(harness.port, bytes(update))).header.rcode == 4  # NOTIMP
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # garbage: dropped
        s.settimeout(0.3)
        s.sendto(b"\x01\x02\x03", ("127.0.0.1", harness.port))
        with pytest.raises(TimeoutError):
            s.recvfrom(512)
    badvers = make_query(K8S, edns=1232)
    badvers.ar[0].ttl |= 1 << 16  # EDNS version 1
    r = DNSRecord.parse(send_raw(harness.port, badvers.pack()))
    assert r.ar[0].ttl >> 24 == 1  # extended rcode BADVERS (16)
    assert harness.server.metrics.malformed >= 2


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_and_health_endpoints(harness) -> None:
    ask(harness.port, K8S)
    ask(harness.port, K8S)
    ask(harness.port, "nope.default.svc.cluster.local")
    status, body = _get(harness.server.metrics_port, "/metrics")
    assert status == 200
    assert 'testbed_dns_queries_total{proto="udp",type="A",rcode="NXDOMAIN"} 1' in body
    assert "testbed_dns_cache_hits_total" in body
    assert 'testbed_dns_request_duration_seconds_bucket{le="+Inf"}' in body
    assert _get(harness.server.metrics_port, "/health") == (200, "ok\n")
    assert _get(harness.server.metrics_port, "/nope")[0] == 404


def test_lame_duck_keeps_answering_but_reports_not_ready(harness) -> None:
    harness.on_loop(harness.server.drain)
    assert _get(harness.server.metrics_port, "/health")[0] == 503  # leaves rotation
    assert rdatas(ask(harness.port, K8S)) == ["10.96.0.1"]  # still answers meanwhile


def test_sigterm_starts_the_lame_duck_then_exits(tmp_path) -> None:
    import subprocess
    import sys
    import time

    port, metrics = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "testbed.dns", "--store", "127.0.0.1:1",
                             "--listen", "127.0.0.1", "--port", str(port), "--metrics-port",
                             str(metrics), "--lameduck", "1.5"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _get_or_none(metrics) is not None, timeout=10)
        proc.terminate()
        time.sleep(0.5)
        assert proc.poll() is None  # still up: lame duck
        assert _get(metrics, "/health")[0] == 503
        assert ask(port, K8S).header.rcode == 2  # answering (SERVFAIL: no store here)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def _get_or_none(port: int):
    try:
        return _get(port, "/health")
    except OSError:
        return None


class _DownStore(MemoryStore):
    def list(self, prefix):
        from testbed.store import StoreUnavailable

        raise StoreUnavailable("etcd down")


def test_not_ready_until_listed() -> None:
    h = Harness(_DownStore(), upstream=True)
    try:
        assert _get(h.server.metrics_port, "/health")[0] == 503
        assert ask(h.port, K8S).header.rcode == 2  # cluster names: SERVFAIL until listed
        assert rdatas(ask(h.port, "www.example.test")) == ["192.0.2.10"]  # forwarding works
    finally:
        h.close()


class _FlakyStore(MemoryStore):
    """Remembers its watches so a test can break them."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: list[QueueWatch] = []

    def watch(self, prefix, start_revision=0):
        w = super().watch(prefix, start_revision)
        self.opened.append(w)
        return w


def test_relist_after_watch_error() -> None:
    store = _FlakyStore()
    h = Harness(store, upstream=False)
    try:
        h.wait_ready()
        relists = h.server.metrics.relists
        services = [w for w in store.opened if w.prefix == "/registry/services/"]
        services[0].finish(WatchError("stream broke"))
        wait_for(lambda: h.server.metrics.relists > relists)
        put(store, service("after", cluster_ip="10.96.3.3"))
        wait_for(lambda: rdatas(ask(h.port, "after.default.svc.cluster.local")) == ["10.96.3.3"])
    finally:
        h.close()
