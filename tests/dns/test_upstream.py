"""The authoritative test-zone server used as the cluster DNS upstream."""

from __future__ import annotations

import asyncio
import threading

import pytest

from testbed.dns.records import NOERROR, NXDOMAIN, REFUSED
from testbed.dns.upstream import UpstreamServer, expected_rrs, zone_records

from .helpers import ask, rdatas


@pytest.fixture(scope="module")
def upstream():
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    srv = UpstreamServer("example.test", "127.0.0.1", 0)
    asyncio.run_coroutine_threadsafe(srv.start(), loop).result(5)
    yield srv
    asyncio.run_coroutine_threadsafe(srv.close(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_zone_data() -> None:
    data = zone_records("example.test")
    assert data["www.example.test."] == [("A", "192.0.2.10")]
    assert data["alias.example.test."] == [("CNAME", "www.example.test.")]
    assert len(data["big.example.test."]) == 40
    assert len({v for _, v in data["big.example.test."]}) == 40
    assert data["whoami.example.test."][0][0] == "TXT"
    assert [str(rr.rdata) for rr in expected_rrs(data, "www.example.test")] == ["192.0.2.10"]


def test_lookup_without_network() -> None:
    srv = UpstreamServer("example.test")
    assert srv.lookup("WWW.example.test", "A").answers[0].data == "192.0.2.10"
    assert srv.lookup("nope.example.test", "A").rcode == NXDOMAIN
    nodata = srv.lookup("www.example.test", "AAAA")
    assert nodata.rcode == NOERROR and not nodata.answers and nodata.authority[0].rtype == "SOA"
    assert srv.lookup("example.com", "A").rcode == REFUSED
    assert srv.lookup("example.test", "SOA").answers[0].rtype == "SOA"
    assert srv.lookup("whoami.example.test", "TXT", "10.1.2.3").answers[0].data == "10.1.2.3"


def test_answers_over_udp_and_tcp(upstream) -> None:
    r = ask(upstream.port, "www.example.test")
    assert rdatas(r) == ["192.0.2.10"] and r.header.aa
    assert rdatas(ask(upstream.port, "alias.example.test")) == ["www.example.test.",
                                                                "192.0.2.10"]
    assert rdatas(ask(upstream.port, "whoami.example.test", "TXT", tcp=True)) == ['"127.0.0.1"']
    assert ask(upstream.port, "nope.example.test").header.rcode == NXDOMAIN
    assert ask(upstream.port, "www.example.org").header.rcode == REFUSED


def test_big_truncates_over_udp(upstream) -> None:
    udp = ask(upstream.port, "big.example.test")
    assert udp.header.tc and not udp.rr
    assert len(ask(upstream.port, "big.example.test", tcp=True).rr) == 40
    assert len(ask(upstream.port, "big.example.test", edns=4096).rr) == 40
