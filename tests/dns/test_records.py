"""The record builder against cases written from the Kubernetes DNS spec 1.1.0."""

from __future__ import annotations

import pytest

from testbed.dns.records import NOERROR, NXDOMAIN, SCHEMA_VERSION, Record, Zone, build_zone

from .helpers import endpoint, endpoint_slice, service

D = "cluster.local."
SVC = f"svc.{D}"


def _pod(name: str, ns: str, ip: str, **spec: str) -> dict:
    return {"metadata": {"name": name, "namespace": ns}, "spec": dict(spec),
            "status": {"podIP": ip, "podIPs": [{"ip": ip}]}}


SERVICES = [
    service("kubernetes", cluster_ip="10.3.0.1",
            ports=[{"name": "https", "protocol": "TCP", "port": 443}, {"port": 8443}]),
    service("v6", cluster_ip="2001:db8::1", ports=[{"name": "dns", "protocol": "UDP",
                                                     "port": 53}]),
    service("headless", cluster_ip="None", ports=[{"name": "http", "port": 80}]),
    service("pna", cluster_ip="None", publishNotReadyAddresses=True),
    service("empty", cluster_ip="None"),
    service("sts", cluster_ip="None"),
    service("ext", cluster_ip=None, type="ExternalName", externalName="www.example.com."),
    service("alias", cluster_ip=None, type="ExternalName",
            externalName="kubernetes.default.svc.cluster.local"),
    service("pending", cluster_ip=None),
]
SLICES = [
    endpoint_slice("headless", [endpoint("10.4.0.1", hostname="my-pet"),
                                endpoint("10.4.0.2"), endpoint("10.4.0.3", ready=False),
                                endpoint("10.4.0.4", ready=None)],
                   ports=[{"name": "http", "protocol": "TCP", "port": 8080}]),
    endpoint_slice("headless", [endpoint("10.4.0.2")], name="headless-dup"),
    endpoint_slice("pna", [endpoint("10.5.0.1", ready=False)]),
    endpoint_slice("empty", [endpoint("10.6.0.1", ready=False)]),
    endpoint_slice("sts", [endpoint("10.7.0.1", pod="db-0")]),
    endpoint_slice("kubernetes", [endpoint("192.168.0.2")]),  # ClusterIP: no endpoint records
]
PODS = [_pod("db-0", "default", "10.7.0.1", hostname="db-0", subdomain="sts"),
        _pod("web", "apps", "10.8.0.9")]


@pytest.fixture(scope="module")
def zone() -> Zone:
    return build_zone(SERVICES, SLICES, PODS, namespaces=["other"], ttl=5)


def _fmt(r: Record) -> tuple[str, str]:
    data = " ".join(map(str, r.data)) if isinstance(r.data, tuple) else str(r.data)
    return r.rtype, data


SOA = ("SOA", f"ns.dns.{D} hostmaster.{D} 1 7200 1800 86400 5")
CASES = [
    # 2.2 schema version
    (f"dns-version.{D}", "TXT", NOERROR, {("TXT", SCHEMA_VERSION)}),
    (f"dns-version.{D}", "A", NOERROR, set()),
    # 2.3.1 ClusterIP A / AAAA
    (f"kubernetes.default.{SVC}", "A", NOERROR, {("A", "10.3.0.1")}),
    (f"kubernetes.default.{SVC}", "AAAA", NOERROR, set()),  # NODATA
    (f"v6.default.{SVC}", "AAAA", NOERROR, {("AAAA", "2001:db8::1")}),
    (f"v6.default.{SVC}", "A", NOERROR, set()),
    (f"pending.default.{SVC}", "A", NOERROR, set()),  # no cluster IP yet: exists, no data
    # 2.3.2 SRV for named ports only
    (f"_https._tcp.kubernetes.default.{SVC}", "SRV", NOERROR,
     {("SRV", f"0 100 443 kubernetes.default.{SVC}")}),
    (f"_dns._udp.v6.default.{SVC}", "SRV", NOERROR, {("SRV", f"0 100 53 v6.default.{SVC}")}),
    (f"_https._udp.kubernetes.default.{SVC}", "SRV", NXDOMAIN, set()),
    (f"_8443._tcp.kubernetes.default.{SVC}", "SRV", NXDOMAIN, set()),
    (f"_tcp.kubernetes.default.{SVC}", "SRV", NOERROR, set()),  # empty non-terminal
    (f"x.kubernetes.default.{SVC}", "A", NXDOMAIN, set()),  # no endpoint names for ClusterIP
    # 2.3.3 PTR for cluster IPs (IPv4 and IPv6 nibbles)
    ("1.0.3.10.in-addr.arpa.", "PTR", NOERROR, {("PTR", f"kubernetes.default.{SVC}")}),
    ("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", "PTR",
     NOERROR, {("PTR", f"v6.default.{SVC}")}),
    # 2.4.1 headless: ready endpoints (ready unset counts as ready), deduplicated
    (f"headless.default.{SVC}", "A", NOERROR,
     {("A", "10.4.0.1"), ("A", "10.4.0.2"), ("A", "10.4.0.4")}),
    (f"headless.default.{SVC}", "AAAA", NOERROR, set()),
    (f"my-pet.headless.default.{SVC}", "A", NOERROR, {("A", "10.4.0.1")}),
    (f"10-4-0-2.headless.default.{SVC}", "A", NOERROR, {("A", "10.4.0.2")}),
    (f"10-4-0-3.headless.default.{SVC}", "A", NXDOMAIN, set()),  # not ready
    (f"10-4-0-1.headless.default.{SVC}", "A", NXDOMAIN, set()),  # has a hostname
    (f"pna.default.{SVC}", "A", NOERROR, {("A", "10.5.0.1")}),  # publishNotReadyAddresses
    (f"empty.default.{SVC}", "A", NXDOMAIN, set()),  # no ready endpoints
    (f"db-0.sts.default.{SVC}", "A", NOERROR, {("A", "10.7.0.1")}),  # pod hostname+subdomain
    # 2.4.2 headless SRV: one per ready endpoint, target its hostname
    (f"_http._tcp.headless.default.{SVC}", "SRV", NOERROR,
     {("SRV", f"0 33 8080 my-pet.headless.default.{SVC}"),
      ("SRV", f"0 33 8080 10-4-0-2.headless.default.{SVC}"),
      ("SRV", f"0 33 8080 10-4-0-4.headless.default.{SVC}")}),
    # 2.4.3 headless PTR (hostname, else the dashed IP)
    ("1.0.4.10.in-addr.arpa.", "PTR", NOERROR, {("PTR", f"my-pet.headless.default.{SVC}")}),
    ("2.0.4.10.in-addr.arpa.", "PTR", NOERROR, {("PTR", f"10-4-0-2.headless.default.{SVC}")}),
    ("1.0.7.10.in-addr.arpa.", "PTR", NOERROR, {("PTR", f"db-0.sts.default.{SVC}")}),
    ("1.0.3.10.in-addr.arpa.", "A", NOERROR, set()),
    # 2.5 ExternalName: CNAME for any type; chased inside the zone
    (f"ext.default.{SVC}", "A", NOERROR, {("CNAME", "www.example.com.")}),
    (f"ext.default.{SVC}", "CNAME", NOERROR, {("CNAME", "www.example.com.")}),
    (f"alias.default.{SVC}", "A", NOERROR,
     {("CNAME", f"kubernetes.default.{SVC}"), ("A", "10.3.0.1")}),
    (f"_http._tcp.ext.default.{SVC}", "SRV", NXDOMAIN, set()),
    # pods (CoreDNS "pods insecure")
    (f"1-2-3-4.default.pod.{D}", "A", NOERROR, {("A", "1.2.3.4")}),
    (f"1-2-3-4.anyns.pod.{D}", "A", NOERROR, {("A", "1.2.3.4")}),
    (f"1-2-3-4.default.pod.{D}", "AAAA", NOERROR, set()),
    (f"fd00--1.default.pod.{D}", "AAAA", NOERROR, {("AAAA", "fd00::1")}),
    (f"1-2-3-256.default.pod.{D}", "A", NXDOMAIN, set()),
    (f"01-2-3-4.default.pod.{D}", "A", NXDOMAIN, set()),
    (f"web.default.pod.{D}", "A", NXDOMAIN, set()),
    (f"default.pod.{D}", "A", NOERROR, set()),
    # the tree: existing intermediate names are NODATA, the rest NXDOMAIN
    (D, "SOA", NOERROR, {SOA}),
    (D, "A", NOERROR, set()),
    (SVC, "A", NOERROR, set()),
    (f"pod.{D}", "A", NOERROR, set()),
    (f"default.{SVC}", "A", NOERROR, set()),
    (f"other.{SVC}", "A", NOERROR, set()),  # Namespace object without services
    (f"ghost.{SVC}", "A", NXDOMAIN, set()),
    (f"nope.default.{SVC}", "A", NXDOMAIN, set()),
    (f"www.google.com.default.{SVC}", "A", NXDOMAIN, set()),  # search-path expansion
    (f"foo.{D}", "A", NXDOMAIN, set()),
    # case-insensitive comparisons
    ("KuberNetes.DEFAULT.svc.Cluster.Local", "A", NOERROR, {("A", "10.3.0.1")}),
]


@pytest.mark.parametrize(("name", "qtype", "rcode", "expected"), CASES,
                         ids=[f"{c[0]}/{c[1]}" for c in CASES])
def test_spec_cases(zone: Zone, name: str, qtype: str, rcode: int, expected: set) -> None:
    ans = zone.lookup(name, qtype)
    assert ans is not None
    assert ans.rcode == rcode
    assert {_fmt(r) for r in ans.answers} == expected
    assert len(ans.answers) == len(expected)  # no duplicates
    if not ans.answers:  # negative answers carry the SOA, negative TTL = TTL
        assert [r.rtype for r in ans.authority] == ["SOA"]
        soa = ans.authority[0]
        assert soa.ttl == 5 and soa.data[-1] == 5
    for r in ans.answers:
        assert r.ttl == 5


def test_answer_owner_is_normalized_question(zone: Zone) -> None:
    ans = zone.lookup("Kubernetes.Default.svc.cluster.local", "A")
    assert ans.answers[0].name == f"kubernetes.default.{SVC}"


def test_srv_additional_records(zone: Zone) -> None:
    ans = zone.lookup(f"_https._tcp.kubernetes.default.{SVC}", "SRV")
    assert {_fmt(r) for r in ans.additional} == {("A", "10.3.0.1")}
    ans = zone.lookup(f"_http._tcp.headless.default.{SVC}", "SRV")
    assert {(r.name, r.data) for r in ans.additional} == {
        (f"my-pet.headless.default.{SVC}", "10.4.0.1"),
        (f"10-4-0-2.headless.default.{SVC}", "10.4.0.2"),
        (f"10-4-0-4.headless.default.{SVC}", "10.4.0.4"),
    }


def test_any_returns_every_record(zone: Zone) -> None:
    ans = zone.lookup(f"dns-version.{D}", "ANY")
    assert [_fmt(r) for r in ans.answers] == [("TXT", SCHEMA_VERSION)]


@pytest.mark.parametrize("name", ["www.example.com", "3.0.4.10.in-addr.arpa",
                                  "9.9.9.9.in-addr.arpa.", "0.4.10.in-addr.arpa",
                                  "cluster.local.example.com"])
def test_not_ours(zone: Zone, name: str) -> None:
    assert zone.lookup(name, "A") is None
    assert zone.lookup(name, "PTR") is None


def test_reverse_nodata_uses_reverse_soa(zone: Zone) -> None:
    ans = zone.lookup("1.0.3.10.in-addr.arpa", "TXT")
    assert ans.rcode == NOERROR and ans.authority[0].name == "in-addr.arpa."


def test_ttl_and_domain_are_configurable() -> None:
    z = build_zone([service("a", cluster_ip="10.0.0.1")], domain="corp.internal", ttl=30,
                   serial=42)
    ans = z.lookup("a.default.svc.corp.internal", "A")
    assert [(r.ttl, r.data) for r in ans.answers] == [(30, "10.0.0.1")]
    neg = z.lookup("b.default.svc.corp.internal", "A")
    assert neg.rcode == NXDOMAIN
    assert neg.authority[0].data == ("ns.dns.corp.internal.", "hostmaster.corp.internal.",
                                     42, 7200, 1800, 86400, 30)
    assert z.lookup("a.default.svc.cluster.local", "A") is None


def test_tolerate_unready_annotation() -> None:
    svc = service("t", cluster_ip="None")
    svc["metadata"]["annotations"] = {
        "service.alpha.kubernetes.io/tolerate-unready-endpoints": "true"}
    z = build_zone([svc], [endpoint_slice("t", [endpoint("10.9.0.1", ready=False)])])
    assert [r.data for r in z.lookup(f"t.default.{SVC}", "A").answers] == ["10.9.0.1"]


def test_pods_verified_and_disabled() -> None:
    z = build_zone([], [], PODS, pod_mode="verified")
    assert z.lookup(f"10-8-0-9.apps.pod.{D}", "A").answers[0].data == "10.8.0.9"
    assert z.lookup(f"10-8-0-9.default.pod.{D}", "A").rcode == NXDOMAIN
    assert z.lookup(f"1-2-3-4.apps.pod.{D}", "A").rcode == NXDOMAIN
    assert z.lookup(f"apps.pod.{D}", "A").rcode == NOERROR
    assert z.lookup(f"ghost.pod.{D}", "A").rcode == NXDOMAIN
    off = build_zone([], [], PODS, pod_mode="disabled")
    assert off.lookup(f"10-8-0-9.apps.pod.{D}", "A").rcode == NXDOMAIN


def test_ipv6_headless_and_fqdn_slices_ignored() -> None:
    z = build_zone([service("h6", cluster_ip="None")],
                   [endpoint_slice("h6", [endpoint("fd00::5", hostname="a")],
                                   address_type="IPv6"),
                    endpoint_slice("h6", [endpoint("example.com")], name="f",
                                   address_type="FQDN")])
    assert [r.data for r in z.lookup(f"h6.default.{SVC}", "AAAA").answers] == ["fd00::5"]
    assert z.lookup(f"a.h6.default.{SVC}", "AAAA").answers[0].data == "fd00::5"
    assert z.lookup("5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa",
                    "PTR").answers[0].data == f"a.h6.default.{SVC}"


def test_malformed_objects_are_skipped() -> None:
    z = build_zone([{"metadata": {}}, service("ok", cluster_ip="bogus"),
                    service("e", cluster_ip=None, type="ExternalName")],
                   [{"metadata": {"labels": {}}}])
    assert z.lookup(f"ok.default.{SVC}", "A").answers == ()
    assert z.lookup(f"e.default.{SVC}", "A").rcode == NXDOMAIN


def test_bad_pod_mode() -> None:
    with pytest.raises(ValueError):
        build_zone([], pod_mode="sometimes")
