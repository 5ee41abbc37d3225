"""Inputs for DNS benchmarks (``testbed bench dns``) and a small UDP flood client.

* :func:`bench_services` - N ClusterIP Service objects to load into the store.
* :func:`write_dnsperf_queries` - a dnsperf query file (``<name> <type>`` per line).
* :func:`write_dnsmasq_hosts` - the same names as a hosts file (``--addn-hosts``) for
  a dnsmasq baseline answering identical data.
* :func:`udp_flood` - a closed-loop Python UDP load generator (``window`` queries in
  flight) that reports the answered-queries-per-second rate.
"""

from __future__ import annotations

import ipaddress
import os
import random
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from testbed.dns.names import encode_wire

DEFAULT_SERVICE_CIDR = "10.96.0.0/12"


def service_ip(i: int, cidr: str = DEFAULT_SERVICE_CIDR, offset: int = 1000) -> str:
    """The cluster IP given to bench service ``i`` (``offset`` past the network address)."""
    net = ipaddress.ip_network(cidr)
    if offset + i >= net.num_addresses - 1:
        raise ValueError(f"{cidr} has no room for service {i}")
    return str(net.network_address + offset + i)


def service_name(i: int, prefix: str = "svc") -> str:
    """Name of bench service ``i``."""
    return f"{prefix}-{i}"


def service_fqdn(i: int, namespace: str = "bench", domain: str = "cluster.local",
                 prefix: str = "svc") -> str:
    """FQDN (no trailing dot) of bench service ``i``."""
    return f"{service_name(i, prefix)}.{namespace}.svc.{domain.strip('.')}"


def bench_services(n: int, namespace: str = "bench", prefix: str = "svc",
                   cidr: str = DEFAULT_SERVICE_CIDR) -> list[dict]:
    """``n`` ClusterIP Services (port ``http`` 80/TCP) with fixed cluster IPs."""
    return [{
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": service_name(i, prefix), "namespace": namespace},
        "spec": {"type": "ClusterIP", "clusterIP": service_ip(i, cidr),
                 "ports": [{"name": "http", "protocol": "TCP", "port": 80}]},
    } for i in range(n)]


def write_dnsperf_queries(path: str | os.PathLike, n: int, *, namespace: str = "bench",
                          domain: str = "cluster.local", prefix: str = "svc",
                          nxdomain_ratio: float = 0.0, seed: int = 1) -> int:
    """Write a dnsperf query file over the ``n`` services; returns the line count.

    Each service appears once as ``<fqdn> A``; ``nxdomain_ratio`` adds that share of
    lines for names that do not exist (``missing-<i>.<ns>.svc.<domain> A``). Lines are
    shuffled with ``seed`` so runs are reproducible.
    """
    lines = [f"{service_fqdn(i, namespace, domain, prefix)} A" for i in range(n)]
    missing = int(round(n * nxdomain_ratio))
    lines += [f"missing-{i}.{namespace}.svc.{domain.strip('.')} A" for i in range(missing)]
    random.Random(seed).shuffle(lines)
    Path(path).write_text("\n".join(lines) + "\n")
    return len(lines)


def write_dnsmasq_hosts(path: str | os.PathLike, n: int, *, namespace: str = "bench",
                        domain: str = "cluster.local", prefix: str = "svc",
                        cidr: str = DEFAULT_SERVICE_CIDR) -> int:
    """Write ``<ip> <fqdn>`` lines for the ``n`` services (dnsmasq ``--addn-hosts``)."""
    lines = [f"{service_ip(i, cidr)} {service_fqdn(i, namespace, domain, prefix)}"
             for i in range(n)]
    Path(path).write_text("\n".join(lines) + "\n")
    return len(lines)


def build_query(name: str, qtype: int = 1, qid: int = 0, rd: bool = True) -> bytes:
    """Wire bytes of a plain query (no EDNS)."""
    return struct.pack("!HHHHHH", qid, 0x0100 if rd else 0, 1, 0, 0, 0) + \
        encode_wire(name if name.endswith(".") else name + ".") + struct.pack("!HH", qtype, 1)


@dataclass(frozen=True)
class FloodResult:
    """Outcome of :func:`udp_flood`."""

    sent: int
    received: int
    seconds: float

    @property
    def qps(self) -> float:
        """Answered queries per second."""
        return self.received / self.seconds if self.seconds > 0 else 0.0


def udp_flood(host: str, port: int, name: str, count: int = 20_000, window: int = 64,
              qtype: int = 1, timeout: float = 2.0) -> FloodResult:
    """Send ``count`` queries for ``name`` keeping ``window`` in flight; count the replies.

    Stops early when no reply arrives for ``timeout`` seconds (lost packets).
    """
    template = build_query(name, qtype)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.connect((host, port))
    sock.settimeout(timeout)
    sent = received = 0
    start = time.perf_counter()
    try:
        while sent < min(window, count):
            sock.send(struct.pack("!H", sent & 0xFFFF) + template[2:])
            sent += 1
        while received < sent:
            try:
                sock.recv(4096)
            except (TimeoutError, ConnectionRefusedError):
                break
            received += 1
            if sent < count:
                sock.send(struct.pack("!H", sent & 0xFFFF) + template[2:])
                sent += 1
    finally:
        sock.close()
    return FloodResult(sent, received, time.perf_counter() - start)


__all__ = [
    "FloodResult",
    "bench_services",
    "build_query",
    "service_fqdn",
    "service_ip",
    "service_name",
    "udp_flood",
    "write_dnsmasq_hosts",
    "write_dnsperf_queries",
]
