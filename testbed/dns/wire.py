"""DNS wire helpers: a fast query parser, response building, truncation and patching.

The hot path of the server never builds a message: it parses the query header and
question by hand (:func:`parse_query`), looks up ready response bytes and rewrites
the ID, RD/CD flags and the question name's case in them (:func:`patch`). Building
(:func:`build_response`, with dnslib) happens only on a cache miss. Responses are
always built with the lowercase question name, and answers whose owner is the
question compress to a pointer at it, so patching the question also restores the
client's spelling in those owner names.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from dnslib import (
    AAAA,
    CNAME,
    EDNS0,
    PTR,
    QTYPE,
    RR,
    SOA,
    SRV,
    TXT,
    A,
    DNSHeader,
    DNSLabel,
    DNSQuestion,
    DNSRecord,
)

from testbed.dns.records import Answer, Record

MIN_UDP_SIZE = 512
DEFAULT_MAX_UDP_SIZE = 1232
TCP_LIMIT = 65535
OPT = 41
CLASS_IN, CLASS_ANY = 1, 255
BADVERS = 16
_HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")


class Malformed(ValueError):
    """The message cannot be answered; ``reply`` is a FORMERR to send back, or None to drop."""

    def __init__(self, reason: str, reply: bytes | None = None) -> None:
        super().__init__(reason)
        self.reply = reply


@dataclass(slots=True)
class Query:
    """The parts of a query the server needs, parsed without dnslib."""

    id: int
    flags: int
    qname_wire: bytes  # as sent (case preserved), uncompressed
    qtype: int
    qclass: int
    edns: bool = False
    udp_size: int = 0
    do: bool = False
    edns_version: int = 0

    @property
    def opcode(self) -> int:
        """The header opcode (0 = QUERY)."""
        return (self.flags >> 11) & 0xF

    @property
    def name(self) -> str:
        """The question name, lowercase, with a trailing dot (odd bytes escaped)."""
        return wire_to_text(self.qname_wire).lower()

    @property
    def labels(self) -> tuple[bytes, ...]:
        """The question name's labels, lowercase (as raw bytes)."""
        out, wire, off = [], self.qname_wire, 0
        while off < len(wire) and wire[off]:
            out.append(wire[off + 1: off + 1 + wire[off]].lower())
            off += wire[off] + 1
        return tuple(out)

    @property
    def qtype_name(self) -> str:
        """The qtype's mnemonic (``"A"``), or ``TYPE<n>`` for unknown types."""
        return QTYPE.forward.get(self.qtype) or f"TYPE{self.qtype}"

    def udp_limit(self, server_max: int = DEFAULT_MAX_UDP_SIZE) -> int:
        """Largest UDP response for this client: 512 without EDNS, else its size capped."""
        if not self.edns:
            return MIN_UDP_SIZE
        return max(MIN_UDP_SIZE, min(self.udp_size, server_max))


def skip_name(data: bytes, off: int) -> int:
    """Offset just past the (possibly compressed) name at ``off``."""
    while True:
        n = data[off]
        if n & 0xC0 == 0xC0:
            return off + 2
        if n == 0:
            return off + 1
        off += n + 1


def error_reply(data: bytes, rcode: int) -> bytes | None:
    """A header-only reply with ``rcode`` for a message whose question can't be used."""
    if len(data) < 12:
        return None
    qid, flags = struct.unpack_from("!HH", data)
    return _HEADER.pack(qid, 0x8000 | (flags & 0x7900) | (rcode & 0xF), 0, 0, 0, 0)


def parse_query(data: bytes) -> Query:
    """Parse a query's header, question and OPT record; raises :class:`Malformed`."""
    if len(data) < 12:
        raise Malformed("short message")
    qid, flags, qd, an, ns, ar = _HEADER.unpack_from(data)
    if flags & 0x8000:
        raise Malformed("not a query")
    if qd != 1:
        raise Malformed(f"{qd} questions", error_reply(data, 1))
    try:
        off = 12
        while data[off]:
            if data[off] & 0xC0:
                raise Malformed("compressed question", error_reply(data, 1))
            off += data[off] + 1
        end = off + 1
        if end - 12 > 255 or end + 4 > len(data):
            raise Malformed("bad question", error_reply(data, 1))
        qtype, qclass = struct.unpack_from("!HH", data, end)
        q = Query(qid, flags, data[12:end], qtype, qclass)
        off = end + 4
        for i in range(an + ns + ar):
            off = skip_name(data, off)
            rtype, rclass, ttl, rdlen = _RR_FIXED.unpack_from(data, off)
            if rtype == OPT and i >= an + ns:
                q.edns, q.udp_size = True, rclass
                q.edns_version, q.do = (ttl >> 16) & 0xFF, bool(ttl & 0x8000)
            off += 10 + rdlen
    except (IndexError, struct.error) as exc:
        raise Malformed("truncated message", error_reply(data, 1)) from exc
    return q


def wire_to_text(wire: bytes) -> str:
    """Text form of an uncompressed wire name (``.`` and odd bytes escaped as ``\\DDD``)."""
    labels, off = [], 0
    while off < len(wire) and wire[off]:
        raw = wire[off + 1: off + 1 + wire[off]]
        labels.append("".join(chr(b) if 0x21 <= b <= 0x7E and b not in (0x2E, 0x5C)
                              else f"\\{b:03d}" for b in raw))
        off += wire[off] + 1
    return ".".join(labels) + "."


def patch(cached: bytes, query: bytes, q: Query) -> bytes:
    """``cached`` re-addressed to ``query``: its ID, RD/CD bits and question spelling."""
    n = len(q.qname_wire)
    flags = bytes(((cached[2] & 0xFE) | (query[2] & 0x01), (cached[3] & 0xEF) | (query[3] & 0x10)))
    return query[:2] + flags + cached[4:12] + q.qname_wire + cached[12 + n:]


def _rdata(r: Record) -> object:
    d = r.data
    if r.rtype == "A":
        return A(d)
    if r.rtype == "AAAA":
        return AAAA(d)
    if r.rtype == "CNAME":
        return CNAME(d)
    if r.rtype == "PTR":
        return PTR(d)
    if r.rtype == "TXT":
        return TXT(d)
    if r.rtype == "SRV":
        prio, weight, port, target = d  # type: ignore[misc]
        return SRV(prio, weight, port, target)
    if r.rtype == "SOA":
        mname, rname, *times = d  # type: ignore[misc]
        return SOA(mname, rname, tuple(times))
    raise ValueError(f"unsupported record type {r.rtype}")


def to_rr(r: Record) -> RR:
    """A dnslib RR for a :class:`Record`."""
    return RR(r.name, getattr(QTYPE, r.rtype), ttl=r.ttl, rdata=_rdata(r))


def _message(q: Query, rcode: int, aa: bool, ra: bool, server_max: int) -> DNSRecord:
    header = DNSHeader(id=q.id, qr=1, aa=int(aa), ra=int(ra), rd=(q.flags >> 8) & 1,
                       rcode=rcode & 0xF)
    msg = DNSRecord(header, q=DNSQuestion(DNSLabel(q.labels), q.qtype, q.qclass))
    if q.edns:
        msg.add_ar(EDNS0(udp_len=server_max, flags="do" if q.do else "",
                         ext_rcode=rcode >> 4))
    return msg


def build_response(
    q: Query,
    answer: Answer,
    limit: int,
    *,
    extra_answers: Iterable[RR] = (),
    aa: bool = True,
    ra: bool = True,
    server_max: int = DEFAULT_MAX_UDP_SIZE,
) -> bytes:
    """Encode ``answer`` for ``q``; over ``limit`` bytes, a TC reply with the question only."""
    msg = _message(q, answer.rcode, aa, ra, server_max)
    opt = msg.ar[:]
    msg.ar = []
    for r in answer.answers:
        msg.add_answer(to_rr(r))
    for rr in extra_answers:
        msg.add_answer(rr)
    for r in answer.authority:
        msg.add_auth(to_rr(r))
    for r in answer.additional:
        msg.add_ar(to_rr(r))
    msg.ar.extend(opt)
    wire = msg.pack()
    if len(wire) <= limit:
        return wire
    return truncated(q, answer.rcode, aa, ra, server_max)


def truncated(q: Query, rcode: int = 0, aa: bool = True, ra: bool = True,
              server_max: int = DEFAULT_MAX_UDP_SIZE) -> bytes:
    """A reply with the TC bit set and no records (the client retries over TCP)."""
    msg = _message(q, rcode, aa, ra, server_max)
    msg.header.tc = 1
    return msg.pack()


def rcode_reply(q: Query, rcode: int, server_max: int = DEFAULT_MAX_UDP_SIZE) -> bytes:
    """A reply carrying only ``rcode`` (SERVFAIL, REFUSED, NOTIMP, BADVERS...)."""
    return _message(q, rcode, False, True, server_max).pack()


def fit(response: bytes, q: Query, limit: int, server_max: int = DEFAULT_MAX_UDP_SIZE) -> bytes:
    """``response`` (e.g. relayed from upstream) if within ``limit``, else a TC reply."""
    if len(response) <= limit:
        return response
    flags = struct.unpack_from("!H", response, 2)[0]
    return truncated(q, flags & 0xF, bool(flags & 0x0400), bool(flags & 0x0080), server_max)


def response_rcode(response: bytes) -> int:
    """The (4-bit) rcode of a response."""
    return response[3] & 0xF if len(response) >= 4 else 2


__all__ = [
    "BADVERS",
    "CLASS_ANY",
    "CLASS_IN",
    "DEFAULT_MAX_UDP_SIZE",
    "MIN_UDP_SIZE",
    "TCP_LIMIT",
    "Malformed",
    "Query",
    "build_response",
    "error_reply",
    "fit",
    "parse_query",
    "patch",
    "rcode_reply",
    "response_rcode",
    "skip_name",
    "to_rr",
    "truncated",
    "wire_to_text",
]
