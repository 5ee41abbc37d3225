"""A TTL-bounded cache of forwarded replies: the role of ``cache 30`` in Kubernetes' default
Corefile, for names outside the cluster domain.

Replies are kept as the bytes the upstream sent (re-addressed per client by
:func:`testbed.dns.wire.patch`) for the smallest TTL in them, capped at ``max_ttl``; a
negative answer (NXDOMAIN, or NOERROR without answers) lives for its SOA's negative TTL
(RFC 2308: the smaller of the SOA record's TTL and its MINIMUM field), with the same cap.
A hit has every TTL lowered by the whole seconds the entry has aged, as a caching resolver
must. Truncated replies and errors other than NXDOMAIN are not cached. Pure: the clock is
injected; no I/O.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from testbed.dns.wire import OPT, skip_name

DEFAULT_MAX_TTL = 30  # seconds, like CoreDNS's `cache 30` in the default kube-dns Corefile
SOA = 6
_COUNTS = struct.Struct("!HHHH")
_RR_FIXED = struct.Struct("!HHIH")
_TTL = struct.Struct("!I")


@dataclass
class _Entry:
    reply: bytes
    stored: float
    lifetime: int
    ttl_offsets: tuple[int, ...]
    ttls: tuple[int, ...]
    aged: int = 0
    current: bytes = field(default=b"")


def ttl_fields(reply: bytes) -> tuple[list[tuple[int, int]], int | None]:
    """``([(offset of TTL field, TTL)], negative TTL)`` for every record in the answer,
    authority and additional sections except OPT; the negative TTL is the first authority
    SOA's min(TTL, MINIMUM), None without one. Raises ValueError on a malformed message."""
    try:
        qd, an, ns, ar = _COUNTS.unpack_from(reply, 4)
        off = 12
        for _ in range(qd):
            off = skip_name(reply, off) + 4
        fields, negative = [], None
        for i in range(an + ns + ar):
            off = skip_name(reply, off)
            rtype, _rclass, ttl, rdlen = _RR_FIXED.unpack_from(reply, off)
            if rtype != OPT:
                fields.append((off + 4, ttl))
            if rtype == SOA and an <= i < an + ns and negative is None:
                rdata = off + 10
                minimum_at = skip_name(reply, skip_name(reply, rdata)) + 16
                (minimum,) = _TTL.unpack_from(reply, minimum_at)
                negative = min(ttl, minimum)
            off += 10 + rdlen
        if off > len(reply):
            raise ValueError("records run past the end of the message")
    except (IndexError, struct.error) as exc:
        raise ValueError(f"malformed reply: {exc}") from exc
    return fields, negative


def cache_lifetime(reply: bytes, max_ttl: int = DEFAULT_MAX_TTL
                   ) -> tuple[int, list[tuple[int, int]]] | None:
    """How long ``reply`` may be cached and its TTL fields; None when it must not be."""
    if len(reply) < 12 or reply[2] & 0x02:  # truncated: the client retries over TCP
        return None
    rcode, answers = reply[3] & 0xF, struct.unpack_from("!H", reply, 6)[0]
    if rcode not in (0, 3):  # SERVFAIL, REFUSED...: ask again next time
        return None
    try:
        fields, negative = ttl_fields(reply)
    except ValueError:
        return None
    if rcode == 0 and answers:
        ttl = min(t for _, t in fields[:answers])
    else:
        ttl = negative if negative is not None else 0
    ttl = min(ttl, max_ttl)
    return (ttl, fields) if ttl > 0 else None


class ForwardCache:
    """Forwarded replies by the same key as the cluster answers (name, type, class, EDNS,
    DO, size limit), served with aged TTLs until the lifetime ends."""

    def __init__(self, max_ttl: int = DEFAULT_MAX_TTL, size: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_ttl, self.size, self.clock = max_ttl, size, clock
        self._entries: dict[tuple, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, key: tuple, reply: bytes) -> bool:
        """Cache ``reply`` if it may be; True when it was."""
        found = cache_lifetime(reply, self.max_ttl)
        if found is None:
            return False
        lifetime, fields = found
        if len(self._entries) >= self.size:
            self._entries.clear()  # cheap bound, as the cluster-answer cache does
        capped = [min(t, self.max_ttl) for _, t in fields]
        entry = _Entry(reply, self.clock(), lifetime, tuple(o for o, _ in fields),
                       tuple(capped))
        entry.current = self._aged(entry, 0)
        self._entries[key] = entry
        return True

    def get(self, key: tuple) -> bytes | None:
        """The cached reply with TTLs lowered by its age, or None (absent or expired)."""
        found = self.lookup(key)
        return None if found is None else found[0]

    def lookup(self, key: tuple) -> tuple[bytes, float] | None:
        """:meth:`get`, plus the clock time until which those exact bytes stay right (the
        next whole second of age, when the TTLs drop again, or the end of the lifetime)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        age = int(self.clock() - entry.stored)
        if age >= entry.lifetime:
            del self._entries[key]
            return None
        if age != entry.aged:
            entry.current, entry.aged = self._aged(entry, age), age
        return entry.current, entry.stored + age + 1

    @staticmethod
    def _aged(entry: _Entry, age: int) -> bytes:
        out = bytearray(entry.reply)
        for offset, ttl in zip(entry.ttl_offsets, entry.ttls, strict=True):
            _TTL.pack_into(out, offset, max(0, ttl - age))
        return bytes(out)

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()


__all__ = ["DEFAULT_MAX_TTL", "ForwardCache", "cache_lifetime", "ttl_fields"]
