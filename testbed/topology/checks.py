"""Checks that relate several fields of an already well-shaped topology.

Each finding is ``(path, message)`` with the path in file terms (camelCase
keys, list indexes) so the loader can attach the right line to it.
"""

from __future__ import annotations

from ipaddress import IPv4Network

from .errors import Finding
from .model import Topology
from .plan import usable_addresses

_NET = ("spec", "networking")
# Smallest service range: room for the API service (.1) and cluster DNS (.10).
MAX_SERVICE_PREFIX = 28


def check_topology(topology: Topology) -> list[Finding]:
    """Every cross-field problem in ``topology``; empty when it is consistent."""
    return [
        *_control_plane(topology),
        *_unique_names(topology),
        *_subnets(topology),
        *_cni(topology),
    ]


def _control_plane(topology: Topology) -> list[Finding]:
    indexes = [i for i, n in enumerate(topology.spec.nodes) if n.role == "control-plane"]
    if not indexes:
        return [(("spec", "nodes"), "exactly one node must have role control-plane")]
    first = topology.spec.nodes[indexes[0]].name
    msg = f'exactly one node must have role control-plane, and "{first}" already has it'
    return [(("spec", "nodes", i, "role"), msg) for i in indexes[1:]]


def _unique_names(topology: Topology) -> list[Finding]:
    findings: list[Finding] = []
    seen: set[str] = set()
    entries = [("nodes", i, n.name) for i, n in enumerate(topology.spec.nodes)]
    entries += [("externalHosts", i, h.name) for i, h in enumerate(topology.spec.external_hosts)]
    for section, index, name in entries:
        if name in seen:
            msg = f'duplicate name "{name}" (node and external host names must be unique)'
            findings.append((("spec", section, index, "name"), msg))
        seen.add(name)
    return findings


def _subnets(topology: Topology) -> list[Finding]:
    net = topology.spec.networking
    findings: list[Finding] = []
    ranges: list[tuple[str, IPv4Network | None]] = [
        ("nodeSubnet", net.node_subnet),
        ("podSubnet", net.pod_subnet),
        ("serviceSubnet", net.service_subnet),
    ]
    for i, (name_a, a) in enumerate(ranges):
        for name_b, b in ranges[i + 1 :]:
            if a is not None and b is not None and a.overlaps(b):
                # Reported on the first of the pair: nodeSubnet is the one most
                # often chosen by hand (or by --node-subnet).
                msg = f"{a} overlaps {name_b} {b}; node, pod and service subnets must be disjoint"
                findings.append(((*_NET, name_a), msg))

    nodes = len(topology.spec.nodes)
    pod = net.pod_subnet
    if pod.prefixlen > 24:
        msg = f"{pod} is too small; expected a prefix of /24 or shorter (each node gets a /24)"
        findings.append(((*_NET, "podSubnet"), msg))
    elif 2 ** (24 - pod.prefixlen) < nodes:
        room = 2 ** (24 - pod.prefixlen)
        msg = f"{pod} holds only {room} node /24s but there are {nodes} nodes"
        findings.append(((*_NET, "podSubnet"), msg))

    service = net.service_subnet
    if service.prefixlen > MAX_SERVICE_PREFIX:
        msg = f"{service} is too small; expected a prefix of /{MAX_SERVICE_PREFIX} or shorter"
        findings.append(((*_NET, "serviceSubnet"), msg))

    findings += _node_subnet(topology)
    return findings


def _node_subnet(topology: Topology) -> list[Finding]:
    net = topology.spec.networking
    subnet, pool = net.node_subnet, net.load_balancer_pool
    if subnet is None:
        if pool is not None:
            msg = "needs an explicit nodeSubnet to lie inside (the pool is on the node network)"
            return [((*_NET, "loadBalancerPool"), msg)]
        return []
    findings: list[Finding] = []
    if pool is not None:
        if not pool.subnet_of(subnet):
            msg = f"{pool} must lie inside nodeSubnet {subnet}"
            return [((*_NET, "loadBalancerPool"), msg)]
        gateway = subnet.network_address + 1
        if gateway in pool:
            msg = f"{pool} contains the gateway address {gateway} (the first address of {subnet})"
            findings.append(((*_NET, "loadBalancerPool"), msg))
    nodes, hosts = len(topology.spec.nodes), len(topology.spec.external_hosts)
    need = 1 + nodes + hosts
    have = usable_addresses(subnet, pool)
    if have < need:
        outside = " outside loadBalancerPool" if pool is not None else ""
        msg = (
            f"{subnet} is too small: it has {have} usable addresses{outside} but needs {need} "
            f"(gateway + {nodes} nodes + {hosts} external hosts)"
        )
        findings.append(((*_NET, "nodeSubnet"), msg))
    return findings


def _cni(topology: Topology) -> list[Finding]:
    cni = topology.spec.networking.cni
    where = (*_NET, "cni")
    findings: list[Finding] = []
    for attr, key in (("conflist", "conflist"), ("bin_dir", "binDir")):
        value = getattr(cni, attr)
        if cni.type == "custom" and not value:
            findings.append(((*where, key), "required when type is custom"))
        elif cni.type != "custom" and value is not None:
            findings.append(((*where, key), "only allowed when type is custom"))
    return findings
