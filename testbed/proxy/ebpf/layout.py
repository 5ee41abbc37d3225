"""Byte layouts of the BPF maps, mirroring `bpf/lb.h` field for field.

Addresses and ports are stored in network byte order (as the socket hooks and packet headers
see them); ids, counts and timestamps in host (little-endian) order. Everything here is pure:
Python values in, `bytes` out, and back again for `dump()`.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

TAG_PLACEHOLDER = b"QQTAGQQQ"

SCOPE_SOCK = 0  # frontends translated by connect4/sendmsg4 inside the node
SCOPE_EXT = 1  # frontends translated by the tc program on the uplink

F_AFFINITY = 1
F_NO_SNAT = 2

PROTOS = {"TCP": socket.IPPROTO_TCP, "UDP": socket.IPPROTO_UDP}
PROTO_NAMES = {v: k for k, v in PROTOS.items()}


@dataclass(frozen=True)
class MapSpec:
    """One map: its short name (pin file stem) and key/value sizes."""

    name: str
    key_size: int
    value_size: int


MAPS = {m.name: m for m in (
    MapSpec("svc", 8, 16),
    MapSpec("be", 12, 8),
    MapSpec("bset", 16, 4),
    MapSpec("aff", 16, 16),
    MapSpec("rev", 16, 8),
    MapSpec("cfg", 4, 8),
)}
# Maps the renderer owns (the LRU maps aff and rev are written by the programs only).
RENDERED_MAPS = ("svc", "be", "bset", "cfg")


def _ip(addr: str) -> bytes:
    return socket.inet_aton(addr)


def _port(port: int) -> bytes:
    return struct.pack("!H", port)


def svc_key(ip: str, port: int, proto: str, scope: int) -> bytes:
    """Frontend key: (VIP, port, protocol, scope)."""
    return _ip(ip) + _port(port) + bytes((PROTOS[proto], scope))


def svc_val(svc_id: int, gen: int, count: int, flags: int, aff_timeout: int) -> bytes:
    """Frontend value: which backend slot range to use and how."""
    return struct.pack("<IIHBBI", svc_id, gen, count, flags, 0, aff_timeout)


def be_key(svc_id: int, gen: int, slot: int) -> bytes:
    """Backend slot key: slots 0..count-1 of generation `gen` of a service."""
    return struct.pack("<III", svc_id, gen, slot)


def be_val(ip: str, port: int) -> bytes:
    """Backend address."""
    return _ip(ip) + _port(port) + b"\0\0"


def bset_key(svc_id: int, gen: int, ip: str, port: int) -> bytes:
    """Membership of a backend in a generation (validates affinity entries)."""
    return struct.pack("<II", svc_id, gen) + _ip(ip) + _port(port) + b"\0\0"


BSET_VAL = struct.pack("<I", 1)
CFG_KEY = struct.pack("<I", 0)


def cfg_val(node_ip: str) -> bytes:
    """Node configuration: the IP used to SNAT externalTrafficPolicy=Cluster traffic."""
    return _ip(node_ip) + struct.pack("<I", 0)


# ---- decoding (dump) -------------------------------------------------------------------

def _addr(raw: bytes) -> str:
    return socket.inet_ntoa(raw[:4]) + ":" + str(struct.unpack("!H", raw[4:6])[0])


def decode_svc_key(k: bytes) -> dict:
    """Frontend key → dict."""
    return {"frontend": _addr(k[:6]), "proto": PROTO_NAMES.get(k[6], str(k[6])),
            "scope": "ext" if k[7] == SCOPE_EXT else "sock"}


def decode_svc_val(v: bytes) -> dict:
    """Frontend value → dict."""
    svc_id, gen, count, flags, _, timeout = struct.unpack("<IIHBBI", v)
    return {"id": svc_id, "gen": gen, "count": count, "affinity": bool(flags & F_AFFINITY),
            "snat": not flags & F_NO_SNAT, "affinityTimeout": timeout}


def decode_be(k: bytes, v: bytes) -> dict:
    """Backend slot → dict."""
    svc_id, gen, slot = struct.unpack("<III", k)
    return {"id": svc_id, "gen": gen, "slot": slot, "backend": _addr(v)}


def decode_aff(k: bytes, v: bytes) -> dict:
    """Affinity entry → dict (client is a netns cookie for sockets, an IPv4 address for tc)."""
    client, svc_id, kind = struct.unpack("<QII", k)
    ts_ns = struct.unpack("<Q", v[:8])[0]
    who = socket.inet_ntoa(struct.pack("<I", client & 0xFFFFFFFF)) if kind else f"netns:{client}"
    return {"id": svc_id, "client": who, "backend": _addr(v[8:]), "lastUsedNs": ts_ns}
