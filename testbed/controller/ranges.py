"""The ranges the service allocator hands values out of (pure, no store access).

Like Kubernetes' split allocators, a :class:`Band` keeps a small static band at its bottom
for explicit requests (kube-dns asks for the service subnet's ``.10``): dynamic picks come
from the band above it, and only once that is full from the static band, top down. A
dynamic pick starts at a hash of the requester's name and probes upwards, so a service
whose allocation was lost (re-applied without it) gets the same value back as long as
nothing else took it meanwhile; restarts need no state at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Container, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

NODE_PORT_FIRST = 30000
NODE_PORT_LAST = 32767
DEFAULT_SERVICE_SUBNET = "10.96.0.0/16"


def band_offset(size: int, low: int, high: int, step: int) -> int:
    """Size of the static band (Kubernetes' ``calculateRangeOffset``): ``size/step``
    clamped to ``[low, high]``, and none at all for ranges smaller than ``low``."""
    if size < low:
        return 0
    return max(low, min(high, size // step))


def stable_hash(text: str) -> int:
    """A hash of ``text`` that is the same in every process (unlike ``hash``)."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


@dataclass(frozen=True)
class Band:
    """The integers ``first..last`` (inclusive); the lowest ``offset`` are the static band."""

    first: int
    last: int
    offset: int

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and self.first <= value <= self.last

    def pick(self, seed: str, taken: Container[int]) -> int | None:
        """A free value for ``seed``: hashed start in the dynamic band, probing upwards
        with wrap-around, then the static band from its top down; None when all taken."""
        for value in self._candidates(seed):
            if value not in taken:
                return value
        return None

    def _candidates(self, seed: str) -> Iterator[int]:
        low = self.first + self.offset
        if low <= self.last:
            start = low + stable_hash(seed) % (self.last - low + 1)
            yield from range(start, self.last + 1)
            yield from range(low, start)
        yield from range(min(low, self.last + 1) - 1, self.first - 1, -1)


def service_ip_band(subnet: IPv4Network) -> Band:
    """Host addresses of the service subnet as integers (network and broadcast excluded);
    static band as in Kubernetes (16..256 addresses)."""
    first = int(subnet.network_address) + 1
    last = int(subnet.broadcast_address) - 1
    size = max(last - first + 1, 0)
    return Band(first, last, band_offset(size, 16, 256, 16))


def node_port_band() -> Band:
    """The NodePort range 30000-32767 (static band 30000-30085, as in Kubernetes)."""
    size = NODE_PORT_LAST - NODE_PORT_FIRST + 1
    return Band(NODE_PORT_FIRST, NODE_PORT_LAST, band_offset(size, 16, 128, 32))


def pool_addresses(pool: IPv4Network, node_subnet: IPv4Network | None,
                   in_use: set[IPv4Address]) -> list[int]:
    """Usable LoadBalancer addresses of ``pool``, lowest first: every address of the pool
    except the node subnet's network/broadcast addresses and addresses already used by
    the gateway, nodes or external hosts."""
    reserved = {int(a) for a in in_use}
    if node_subnet is not None:
        reserved |= {int(node_subnet.network_address), int(node_subnet.broadcast_address)}
    first, last = int(pool.network_address), int(pool.broadcast_address)
    return [a for a in range(first, last + 1) if a not in reserved]


def parse_ip(value: object) -> IPv4Address | None:
    """``value`` as an IPv4 address, or None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return IPv4Address(value)
    except ValueError:
        return None


def parse_net(value: object) -> IPv4Network | None:
    """``value`` as an IPv4 network (host bits allowed), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return IPv4Network(value, strict=False)
    except ValueError:
        return None


@dataclass
class Ranges:
    """What can be allocated, from the cluster config."""

    subnet: IPv4Network
    ips: Band
    ports: Band
    pool: IPv4Network | None
    pool_ips: list[int]
    pool_set: frozenset[int] = frozenset()

    @classmethod
    def from_config(cls, config: dict) -> Ranges:
        """Ranges of ``config`` (``networking.serviceSubnet`` etc.)."""
        net = config.get("networking") or {}
        subnet = parse_net(net.get("serviceSubnet") or DEFAULT_SERVICE_SUBNET)
        if subnet is None:
            raise ValueError(f"networking.serviceSubnet {net.get('serviceSubnet')!r} is invalid")
        pool = parse_net(net.get("loadBalancerPool"))
        in_use = {ip for ip in (parse_ip(config.get("gateway")),
                                *(parse_ip(n.get("ip")) for n in config.get("nodes", [])),
                                *(parse_ip(h.get("ip")) for h in config.get("externalHosts", [])))
                  if ip is not None}
        pool_ips = pool_addresses(pool, parse_net(net.get("nodeSubnet")), in_use) if pool else []
        return cls(subnet, service_ip_band(subnet), node_port_band(), pool, pool_ips,
                   frozenset(pool_ips))

    @property
    def kubernetes_ip(self) -> int:
        """The first address of the service subnet, reserved for ``default/kubernetes``."""
        return self.ips.first

    def ip_text(self) -> str:
        """The allocatable address range, for messages."""
        return (f"{IPv4Address(self.ips.first)}-{IPv4Address(self.ips.last)} "
                f"(networking.serviceSubnet {self.subnet})")
