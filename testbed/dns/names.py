"""Domain-name helpers shared by the records builder and the server (pure)."""

from __future__ import annotations

import ipaddress
import socket


def fqdn(name: str) -> str:
    """Lowercase ``name`` with exactly one trailing dot (``""`` and ``"."`` give ``"."``)."""
    name = name.strip().lower().rstrip(".")
    return f"{name}." if name else "."


def split_under(name: str, domain: str) -> list[str] | None:
    """Labels of ``name`` left of ``domain`` (both FQDNs), or None if not under it.

    ``split_under("a.b.cluster.local.", "cluster.local.") == ["a", "b"]``; the
    domain itself gives ``[]``.
    """
    if name == domain:
        return []
    if domain == ".":
        return name[:-1].split(".")
    if not name.endswith("." + domain):
        return None
    return name[: -len(domain) - 1].split(".")


def canonical_ip(value: object) -> str | None:
    """The canonical text of an IPv4/IPv6 address (``2001:DB8::0:1`` -> ``2001:db8::1``), or
    None if ``value`` is not a plain address (leading zeros, prefixes and padding rejected)."""
    if not isinstance(value, str):
        return None
    family = socket.AF_INET6 if ":" in value else socket.AF_INET
    try:
        return socket.inet_ntop(family, socket.inet_pton(family, value))
    except (OSError, ValueError):
        return None


def reverse_name(ip: str) -> str:
    """The PTR owner of an IP: ``d.c.b.a.in-addr.arpa.`` or the ``ip6.arpa.`` nibbles."""
    if ":" not in ip:
        return ".".join(reversed(ip.split("."))) + ".in-addr.arpa."
    return ipaddress.ip_address(ip).reverse_pointer + "."


def ip_label(ip: str) -> str:
    """The dashed label of an IP (``10.0.0.1`` -> ``10-0-0-1``, ``fd00::1`` -> ``fd00--1``)."""
    return ip.replace(".", "-").replace(":", "-")


def dashed_ip(label: str) -> str | None:
    """Inverse of :func:`ip_label` for a well-formed address, else None."""
    parts = label.split("-")
    try:
        if len(parts) == 4 and all(p.isdigit() for p in parts):
            return str(ipaddress.IPv4Address(".".join(parts)))
        if len(parts) >= 3:
            return str(ipaddress.IPv6Address(label.replace("-", ":")))
    except ValueError:
        return None
    return None


def encode_wire(name: str) -> bytes:
    """Uncompressed wire form of an FQDN (``"a.b."`` -> ``b"\\x01a\\x01b\\x00"``)."""
    labels = [s for s in name.rstrip(".").split(".") if s] if name != "." else []
    return b"".join(bytes([len(x)]) + x.encode("ascii") for x in labels) + b"\x00"


__all__ = ["canonical_ip", "dashed_ip", "encode_wire", "fqdn", "ip_label", "reverse_name",
           "split_under"]
