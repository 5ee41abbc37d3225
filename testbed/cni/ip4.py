"""Tiny IPv4 helpers on plain ints (``ipaddress`` costs ~7 ms of import per plugin exec)."""

from __future__ import annotations

MAX = 0xFFFFFFFF


def parse_ip(text: str) -> int:
    """Parse dotted-quad IPv4 (no leading zeros, like :mod:`ipaddress`); raise ValueError."""
    if not isinstance(text, str):
        raise ValueError(f"not an IPv4 address: {text!r}")
    parts = text.split(".")
    if len(parts) != 4:
        raise ValueError(f"not an IPv4 address: {text!r}")
    value = 0
    for part in parts:
        if not part or len(part) > 3 or not part.isascii() or not part.isdigit():
            raise ValueError(f"not an IPv4 address: {text!r}")
        if len(part) > 1 and part[0] == "0":
            raise ValueError(f"leading zero in IPv4 address: {text!r}")
        octet = int(part)
        if octet > 255:
            raise ValueError(f"octet out of range in IPv4 address: {text!r}")
        value = (value << 8) | octet
    return value


def format_ip(value: int) -> str:
    """Format an int as dotted-quad."""
    return f"{value >> 24 & 255}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"


def mask(prefix: int) -> int:
    """Netmask int for a prefix length."""
    return (MAX << (32 - prefix)) & MAX


def parse_cidr(text: str, strict: bool = True) -> tuple[int, int]:
    """Parse ``a.b.c.d/len`` into ``(address, prefix)``.

    With ``strict`` the address must be the network address (no host bits set).
    """
    if not isinstance(text, str) or text.count("/") != 1:
        raise ValueError(f"not an IPv4 CIDR: {text!r}")
    addr_s, plen_s = text.split("/")
    if not plen_s.isascii() or not plen_s.isdigit() or int(plen_s) > 32:
        raise ValueError(f"bad prefix length in {text!r}")
    addr, prefix = parse_ip(addr_s), int(plen_s)
    if strict and addr & ~mask(prefix) & MAX:
        raise ValueError(f"{text!r} has host bits set")
    return addr, prefix


def format_cidr(addr: int, prefix: int) -> str:
    """Format ``(address, prefix)`` as CIDR text."""
    return f"{format_ip(addr)}/{prefix}"


def broadcast(network: int, prefix: int) -> int:
    """Last address of the network."""
    return network | (~mask(prefix) & MAX)


def in_network(addr: int, network: int, prefix: int) -> bool:
    """Whether ``addr`` lies inside ``network/prefix``."""
    return addr & mask(prefix) == network


def mac_for_ip(addr: int) -> str:
    """Deterministic locally-administered MAC ``0a:58:<ip bytes>`` (as ovn/kube use)."""
    return "0a:58:" + ":".join(f"{addr >> s & 255:02x}" for s in (24, 16, 8, 0))
