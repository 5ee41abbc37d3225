"""Wire helpers, names, the watched-objects state and the CLI parser."""

from __future__ import annotations

import pytest
from dnslib import DNSRecord

from testbed.dns.__main__ import parse_args
from testbed.dns.bench_support import build_query
from testbed.dns.forward import parse_hostport
from testbed.dns.index import POD_STATUS, PODS, ClusterIndex
from testbed.dns.names import dashed_ip, encode_wire, fqdn, ip_label, reverse_name, split_under
from testbed.dns.records import Answer, Record
from testbed.dns.wire import (
    Malformed,
    build_response,
    parse_query,
    patch,
    truncated,
    wire_to_text,
)
from testbed.store.base import Event, KeyValue

from .helpers import make_query


def test_parse_query_plain_and_edns() -> None:
    q = parse_query(build_query("Www.Example.com", qtype=28, qid=77))
    assert (q.id, q.qtype, q.qclass, q.edns) == (77, 28, 1, False)
    assert q.name == "www.example.com." and q.qname_wire == encode_wire("Www.Example.com.")
    assert q.udp_limit() == 512
    e = parse_query(make_query("a.b", edns=4096, do=True).pack())
    assert e.edns and e.do and e.udp_size == 4096 and e.udp_limit() == 1232
    assert e.udp_limit(8192) == 4096
    assert parse_query(make_query("a.b", edns=100).pack()).udp_limit() == 512


@pytest.mark.parametrize("data", [b"", b"\x00" * 11, b"\x00\x01\x80" + b"\x00" * 9])
def test_parse_query_drops_garbage(data: bytes) -> None:
    with pytest.raises(Malformed) as err:
        parse_query(data)
    assert err.value.reply is None


def test_parse_query_formerr_for_truncated_question() -> None:
    with pytest.raises(Malformed) as err:
        parse_query(build_query("example.com")[:-3])
    assert err.value.reply is not None and err.value.reply[3] & 0xF == 1


def test_patch_restores_id_flags_and_case() -> None:
    q_lower = parse_query(build_query("a.example", qid=1))
    built = build_response(q_lower, Answer(0, (Record("a.example.", "A", 5, "192.0.2.1"),)), 512)
    query = build_query("A.EXAMPLE", qid=0xABCD, rd=False)
    out = DNSRecord.parse(patch(built, query, parse_query(query)))
    assert out.header.id == 0xABCD and not out.header.rd
    assert str(out.q.qname) == "A.EXAMPLE." and str(out.rr[0].rname) == "A.EXAMPLE."


def test_build_response_truncates_over_limit() -> None:
    q = parse_query(build_query("big.example"))
    recs = tuple(Record("big.example.", "A", 5, f"10.0.0.{i}") for i in range(60))
    out = DNSRecord.parse(build_response(q, Answer(0, recs), 512))
    assert out.header.tc and not out.rr
    assert len(DNSRecord.parse(build_response(q, Answer(0, recs), 65535)).rr) == 60
    assert DNSRecord.parse(truncated(q)).header.tc


def test_odd_labels_survive() -> None:
    wire = b"\x03a.b\x07example\x00"
    assert wire_to_text(wire) == "a\\046b.example."
    data = b"\x00\x05\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + wire + b"\x00\x01\x00\x01"
    q = parse_query(data)
    out = patch(build_response(q, Answer(3), 512), data, q)
    assert out[12:12 + len(wire)] == wire


def test_names() -> None:
    assert fqdn("Foo.Bar") == "foo.bar." and fqdn("") == "." and fqdn("a.") == "a."
    assert split_under("a.b.cluster.local.", "cluster.local.") == ["a", "b"]
    assert split_under("cluster.local.", "cluster.local.") == []
    assert split_under("xcluster.local.", "cluster.local.") is None
    assert reverse_name("10.0.0.1") == "1.0.0.10.in-addr.arpa."
    assert ip_label("10.0.0.1") == "10-0-0-1" and dashed_ip("10-0-0-1") == "10.0.0.1"
    assert dashed_ip("fd00--1") == "fd00::1" and dashed_ip("1-2-3") is None
    assert dashed_ip("300-1-1-1") is None and dashed_ip("a-b-c-d") is None


def test_parse_hostport_and_cli() -> None:
    assert parse_hostport("10.0.0.2") == ("10.0.0.2", 53)
    assert parse_hostport("10.0.0.2:5353") == ("10.0.0.2", 5353)
    assert parse_hostport("[fd00::1]:54") == ("fd00::1", 54)
    assert parse_hostport("fd00::1") == ("fd00::1", 53)
    args = parse_args(["--store", "10.0.0.1:2379", "--upstream", "10.0.0.9", "--port", "5353",
                       "--ttl", "7", "--metrics-port", "9153"])
    assert (args.store, args.domain, args.port, args.ttl, args.metrics_port, args.listen) == (
        "10.0.0.1:2379", "cluster.local", 5353, 7, 9153, "0.0.0.0")


def test_index_merges_pod_status() -> None:
    objs = ClusterIndex()
    pod = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {}}
    objs.replace(PODS, [KeyValue("/registry/pods/ns/p", pod, 3, 3)])
    objs.replace(POD_STATUS, [KeyValue("/status/pods/ns/p", {"podIP": "10.1.1.1"}, 4, 4)])
    assert objs.pods()[0]["status"]["podIP"] == "10.1.1.1" and objs.revision == 4
    assert objs.zone() is None  # not every prefix listed yet
    objs.apply(POD_STATUS, Event("PUT", "/status/pods/ns/p", {"status": {"podIP": "10.1.1.2"}},
                                 9))
    assert objs.pods()[0]["status"]["podIP"] == "10.1.1.2" and objs.revision == 9
    objs.apply(PODS, Event("DELETE", "/registry/pods/ns/p", None, 10))
    assert objs.pods() == [] and not objs.ready
