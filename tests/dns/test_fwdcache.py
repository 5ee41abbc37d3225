"""The forward cache (pure): what may be cached, for how long, and TTLs aged on hits."""

from __future__ import annotations

from dnslib import EDNS0, QTYPE, RR, SOA, A, DNSHeader, DNSQuestion, DNSRecord

from testbed.dns.fwdcache import ForwardCache, cache_lifetime, ttl_fields


def reply(rcode=0, answers=(("www.example.test", 300), ("www.example.test", 120)),
          soa_ttl=None, soa_minimum=60, tc=False, edns=False) -> bytes:
    msg = DNSRecord(DNSHeader(id=7, qr=1, ra=1, rcode=rcode, tc=int(tc)),
                    q=DNSQuestion("www.example.test", QTYPE.A))
    for k, (name, ttl) in enumerate(answers):
        msg.add_answer(RR(name, QTYPE.A, rdata=A(f"192.0.2.{k + 1}"), ttl=ttl))
    if soa_ttl is not None:
        msg.add_auth(RR("example.test", QTYPE.SOA, ttl=soa_ttl, rdata=SOA(
            "ns1.example.test", "hostmaster.example.test", (1, 2, 3, 4, soa_minimum))))
    if edns:
        msg.add_ar(EDNS0(udp_len=1232, flags="do"))
    return msg.pack()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ttl_fields_skip_opt_and_find_the_negative_ttl():
    fields, negative = ttl_fields(reply(edns=True, soa_ttl=900, soa_minimum=45))
    assert [t for _, t in fields] == [300, 120, 900] and negative == 45
    assert ttl_fields(reply(soa_ttl=20, soa_minimum=45))[1] == 20  # min(TTL, MINIMUM)


def test_lifetime_is_the_smallest_answer_ttl_capped():
    assert cache_lifetime(reply(), max_ttl=600)[0] == 120
    assert cache_lifetime(reply(), max_ttl=30)[0] == 30
    nxdomain = reply(rcode=3, answers=(), soa_ttl=300, soa_minimum=10)
    assert cache_lifetime(nxdomain, max_ttl=30)[0] == 10
    nodata = reply(answers=(), soa_ttl=300, soa_minimum=40)
    assert cache_lifetime(nodata, max_ttl=30)[0] == 30


def test_errors_truncation_and_zero_ttls_are_not_cached():
    assert cache_lifetime(reply(rcode=2, answers=())) is None  # SERVFAIL
    assert cache_lifetime(reply(rcode=5, answers=())) is None  # REFUSED
    assert cache_lifetime(reply(tc=True)) is None
    assert cache_lifetime(reply(answers=(("www.example.test", 0),))) is None
    assert cache_lifetime(reply(rcode=3, answers=())) is None  # negative without SOA
    assert cache_lifetime(b"\x00\x07\x81\x80\x00\x01\x00\x05") is None  # malformed


def test_hits_have_aged_ttls_and_entries_expire():
    clock = Clock()
    cache = ForwardCache(max_ttl=30, clock=clock)
    assert cache.put("k", reply())
    assert [rr.ttl for rr in DNSRecord.parse(cache.get("k")).rr] == [30, 30]  # capped
    clock.now += 12.7
    aged = DNSRecord.parse(cache.get("k"))
    assert [rr.ttl for rr in aged.rr] == [18, 18]
    assert [str(rr.rdata) for rr in aged.rr] == ["192.0.2.1", "192.0.2.2"]
    clock.now += 17.5  # 30.2 s after it was stored
    assert cache.get("k") is None and len(cache) == 0


def test_uncacheable_put_is_refused_and_size_is_bounded():
    cache = ForwardCache(size=2, clock=Clock())
    assert not cache.put("bad", reply(rcode=2, answers=()))
    for key in "abc":
        assert cache.put(key, reply())
    assert len(cache) <= 2 and cache.get("c") is not None
