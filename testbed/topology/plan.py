"""Pure address planning derived from a topology: no Docker, no network access."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from .errors import Problem, TopologyError
from .model import Node, Topology

# Where pick_free_subnet looks, in order. 172.30/15 sits outside Docker's own
# default pools (172.17-172.29 and 192.168/16); 10.200/16 is the fallback.
FREE_SUBNET_BLOCKS = (IPv4Network("172.30.0.0/15"), IPv4Network("10.200.0.0/16"))
DEFAULT_START = IPv4Network("172.30.0.0/24")
# Kubernetes convention: the cluster DNS service sits at .10 of the service range.
DNS_SERVICE_OFFSET = 10


@dataclass(frozen=True)
class AddressPlan:
    """Static addresses on the node network.

    ``gateway`` is the first host address (what Docker uses for the bridge),
    then each node in list order, then each external host; addresses inside
    the load-balancer pool are skipped. ``docker_ip_range`` is the largest
    block of the subnet outside the pool, to hand to Docker as ``--ip-range``
    so its own allocations never land in the pool (``None`` without a pool).
    """

    subnet: IPv4Network
    gateway: IPv4Address
    nodes: dict[str, IPv4Address]
    hosts: dict[str, IPv4Address]
    docker_ip_range: IPv4Network | None
    load_balancer_pool: IPv4Network | None


def _fail(field: str, message: str) -> TopologyError:
    return TopologyError([Problem("<topology>", None, field, message)])


def control_plane(topology: Topology) -> Node:
    """The single control-plane node (raises TopologyError unless there is exactly one)."""
    found = [n for n in topology.spec.nodes if n.role == "control-plane"]
    if len(found) != 1:
        raise _fail("spec.nodes", "exactly one node must have role control-plane")
    return found[0]


def node_pod_cidrs(topology: Topology) -> dict[str, IPv4Network]:
    """Node name -> its /24 of the pod subnet; the i-th node gets the i-th /24."""
    pod_subnet = topology.spec.networking.pod_subnet
    nodes = topology.spec.nodes
    if pod_subnet.prefixlen > 24 or 2 ** (24 - pod_subnet.prefixlen) < len(nodes):
        raise _fail("spec.networking.podSubnet", f"{pod_subnet} cannot hold one /24 per node")
    blocks = pod_subnet.subnets(new_prefix=24)
    return {node.name: next(blocks) for node in nodes}


def first_service_ip(topology: Topology) -> IPv4Address:
    """Address of the ``kubernetes`` service: the first address of the service subnet."""
    return topology.spec.networking.service_subnet.network_address + 1


def service_dns_ip(topology: Topology) -> IPv4Address:
    """Address of the cluster DNS service (kube-dns convention: network + 10)."""
    return topology.spec.networking.service_subnet.network_address + DNS_SERVICE_OFFSET


def usable_addresses(subnet: IPv4Network, pool: IPv4Network | None) -> int:
    """Host addresses of ``subnet`` (no network/broadcast) that lie outside ``pool``."""
    if subnet.prefixlen >= 31:
        return 0  # no room for a gateway and hosts on a point-to-point network
    usable = subnet.num_addresses - 2
    if pool is not None and pool.subnet_of(subnet):
        inside = pool.num_addresses
        inside -= subnet.network_address in pool
        inside -= subnet.broadcast_address in pool
        usable -= inside
    return usable


def _host_addresses(subnet: IPv4Network, pool: IPv4Network | None) -> Iterator[IPv4Address]:
    # Walk arithmetically: subnet.hosts() would materialise huge ranges.
    address = subnet.network_address + 1
    while address < subnet.broadcast_address:
        if pool is not None and address in pool:
            address = pool.broadcast_address + 1
            continue
        yield address
        address += 1


def address_plan(topology: Topology, node_subnet: IPv4Network) -> AddressPlan:
    """Assign the gateway, node and external-host addresses inside ``node_subnet``.

    Raises TopologyError when the subnet is too small or the pool is misplaced.
    """
    pool = topology.spec.networking.load_balancer_pool
    if pool is not None and not pool.subnet_of(node_subnet):
        raise _fail("spec.networking.loadBalancerPool", f"{pool} is not inside {node_subnet}")
    names = [n.name for n in topology.spec.nodes]
    hosts = [h.name for h in topology.spec.external_hosts]
    if node_subnet.prefixlen >= 31:
        raise _fail("spec.networking.nodeSubnet", f"{node_subnet} has no room for hosts")
    gateway = node_subnet.network_address + 1
    if pool is not None and gateway in pool:
        raise _fail("spec.networking.loadBalancerPool", f"{pool} contains the gateway {gateway}")
    free = (a for a in _host_addresses(node_subnet, pool) if a != gateway)
    assigned = [a for a, _ in zip(free, names + hosts, strict=False)]
    if len(assigned) < len(names) + len(hosts):
        need = 1 + len(names) + len(hosts)
        raise _fail("spec.networking.nodeSubnet", f"{node_subnet} cannot hold {need} addresses")
    return AddressPlan(
        subnet=node_subnet,
        gateway=gateway,
        nodes=dict(zip(names, assigned, strict=False)),
        hosts=dict(zip(hosts, assigned[len(names) :], strict=False)),
        docker_ip_range=_docker_ip_range(node_subnet, pool),
        load_balancer_pool=pool,
    )


def _docker_ip_range(subnet: IPv4Network, pool: IPv4Network | None) -> IPv4Network | None:
    if pool is None:
        return None
    if pool == subnet:
        return None  # validation forbids this; nothing would be left for Docker
    blocks = sorted(subnet.address_exclude(pool), key=lambda b: (b.prefixlen, b.network_address))
    return blocks[0]


def pick_free_subnet(
    used: list[IPv4Network],
    start: IPv4Network = DEFAULT_START,
    size_prefix: int = 24,
) -> IPv4Network:
    """First subnet of ``/size_prefix`` that overlaps none of ``used``.

    Searches from ``start`` upward through 172.30.0.0-172.31.255.255, then
    10.200.0.0/16. If ``start`` lies outside both blocks it is tried first.
    Networks of other IP versions in ``used`` are ignored. Raises
    TopologyError when everything is taken.
    """
    if not 16 <= size_prefix <= 29:
        raise _fail("nodeSubnet", f"cannot pick a /{size_prefix}; expected a prefix of 16..29")
    taken = [u for u in used if u.version == 4]
    for candidate in _candidates(start, size_prefix):
        if not any(candidate.overlaps(u) for u in taken):
            return candidate
    blocks = ", ".join(str(b) for b in FREE_SUBNET_BLOCKS)
    raise _fail("nodeSubnet", f"no free /{size_prefix} left in {blocks}; set nodeSubnet explicitly")


def _candidates(start: IPv4Network, size_prefix: int) -> Iterator[IPv4Network]:
    origin = IPv4Network((start.network_address, size_prefix), strict=False)
    in_block = [b for b in FREE_SUBNET_BLOCKS if origin.subnet_of(b)]
    seen_start = not in_block
    if not in_block:
        yield origin
    for block in FREE_SUBNET_BLOCKS:
        if size_prefix < block.prefixlen:
            continue
        for candidate in block.subnets(new_prefix=size_prefix):
            if not seen_start:
                if candidate != origin:
                    continue
                seen_start = True
            yield candidate
