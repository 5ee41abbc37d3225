"""What one service port contributes to the ``ip testbed-proxy`` nftables table (pure).

Layout (chosen by measurement, see :mod:`testbed.proxy.nftables`): a service port is, in the
common case, only *map elements*:

* ``service-ips`` / ``service-nodeports``: frontend -> ``goto`` a shared chain;
* ``endpoints`` (and friends): ``frontend . slot`` -> ``endpoint ip . port``;
* shared chains are parameterised by pool size only (``pool-2`` is
  ``dnat ... numgen random mod 2 map @endpoints``), so 10,000 services need a handful of
  chains, not 30,000, and adding a service adds elements, never a chain or a map.

Ports with ClientIP session affinity get per-service chains (``svc-``/``svl-``/``ext-<hash>``)
in kube-proxy's nftables style, with one timeout set per endpoint (``aff-<hash>``) that
remembers client addresses: affinity must know which endpoint was picked, which a map lookup
cannot tell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from testbed.proxy.iptables_rules import port_proto_hash
from testbed.proxy.model import Endpoint, NodeContext, ServicePortInfo

TABLE = "testbed-proxy"
MASQ_MARK = "0x4000"
MARK_MASQ = "mark-for-masquerade"
REJECT_CHAIN = "reject-chain"
PRECREATED_POOL_SIZES = 8  # pool chains for 1..8 endpoints always exist
_IP_KEY = "ip daddr . meta l4proto . th dport"
_PORT_KEY = "meta l4proto . th dport"
_SLOT = "numgen random mod 1"  # only the type matters: a 32-bit integer
_ENDPOINT = "ip daddr . th dport"
# Named maps/sets in declaration order: name -> nft type clause.
MAPS: dict[str, str] = {
    "service-ips": "type ipv4_addr . inet_proto . inet_service : verdict",
    "service-nodeports": "type inet_proto . inet_service : verdict",
    "no-endpoint-services": "type ipv4_addr . inet_proto . inet_service : verdict",
    "no-endpoint-nodeports": "type inet_proto . inet_service : verdict",
    "cluster-ips": "type ipv4_addr . inet_proto . inet_service",
    "hairpin": "type ipv4_addr . ipv4_addr",
    # frontend . slot -> endpoint ip . port (typeof: the slot is numgen's 32-bit integer,
    # which has no named type that could go in a concatenation).
    "endpoints": f"typeof {_IP_KEY} . {_SLOT} : {_ENDPOINT}",
    "cluster-endpoints": f"typeof {_IP_KEY} . {_SLOT} : {_ENDPOINT}",
    "nodeport-endpoints": f"typeof {_PORT_KEY} . {_SLOT} : {_ENDPOINT}",
    "nodeport-cluster-endpoints": f"typeof {_PORT_KEY} . {_SLOT} : {_ENDPOINT}",
}
ELEMENT_ORDER = tuple(MAPS)

Element = tuple[str, str | None]  # (key, value or None for plain sets)


@dataclass
class PortNft:
    """Elements, shared chains, per-service chains and affinity sets of one port."""

    elements: dict[str, list[Element]] = field(default_factory=dict)
    shared: dict[str, list[str]] = field(default_factory=dict)  # name -> rules
    chains: dict[str, list[str]] = field(default_factory=dict)  # per-service (affinity)
    sets: dict[str, int] = field(default_factory=dict)  # affinity set -> timeout seconds

    def add(self, target: str, key: str, value: str | None = None) -> None:
        """Queue one element for map/set ``target``."""
        self.elements.setdefault(target, []).append((key, value))


def aff_set(p: ServicePortInfo, ep: Endpoint) -> str:
    """Per-endpoint affinity set name (kube-proxy's endpoint hash)."""
    return "aff-" + port_proto_hash(p.port_key, p.proto + ep.addr)


def _pool(name: str, by_ip: bool, n: int) -> list[str]:
    key = _IP_KEY if by_ip else _PORT_KEY
    return [f"meta l4proto {{ tcp, udp }} dnat ip to {key} . numgen random mod {n} map @{name}"]


def pool_chain(by_ip: bool, cluster: bool, n: int) -> tuple[str, list[str]]:
    """Name and rule of the shared chain that DNATs over an ``n``-slot pool."""
    mapname = ("" if by_ip else "nodeport-") + ("cluster-" if cluster else "") + "endpoints"
    name = ("" if by_ip else "np-") + "pool-" + ("cluster-" if cluster else "") + str(n)
    return name, _pool(mapname, by_ip, n)


def precreated_pools() -> dict[str, list[str]]:
    """Pool chains every full sync creates, used or not: nft 1.0.6 cannot add a rule that
    refers to one of the endpoint maps in a later transaction (it misreads the map's stored
    typeof), so an incremental sync can use these but never create a new pool chain."""
    return dict(
        pool_chain(by_ip, cluster, n)
        for by_ip in (True, False)
        for cluster in (False, True)
        for n in range(1, PRECREATED_POOL_SIZES + 1)
    )


def _shared_pool(nft: PortNft, by_ip: bool, cluster: bool, n: int) -> str:
    """Ensure the shared chain that DNATs over an ``n``-slot pool; return its name."""
    name, rules = pool_chain(by_ip, cluster, n)
    nft.shared.setdefault(name, rules)
    return name


def _shared_external(nft: PortNft, p: ServicePortInfo, by_ip: bool, ctx: NodeContext) -> str:
    """Ensure the shared chain for external traffic (Cluster: masquerade then balance;
    Local: short-circuit pods and the node to the cluster pool, others to local pool)."""
    pre = "" if by_ip else "np-"
    n_cluster = len(p.cluster_endpoints)
    if not p.external_policy_local:
        pool = _shared_pool(nft, by_ip, False, n_cluster)
        name = f"{pre}ext-cluster-{n_cluster}"
        nft.shared.setdefault(name, [f"jump {MARK_MASQ}", f"goto {pool}"])
        return name
    n_local = len(p.local_endpoints)
    cluster_pool = _shared_pool(nft, by_ip, True, n_cluster)
    rules = [
        f"ip saddr {ctx.cluster_cidr} goto {cluster_pool}",
        f"fib saddr type local jump {MARK_MASQ}",  # the node's own source is an LB-local IP
        f"fib saddr type local goto {cluster_pool}",
    ]
    if n_local:
        rules.append(f"goto {_shared_pool(nft, by_ip, False, n_local)}")
    name = f"{pre}ext-local-{n_cluster}-{n_local}"
    nft.shared.setdefault(name, rules)
    return name


def _slots(nft: PortNft, target: str, frontend: str, eps: tuple[Endpoint, ...]) -> None:
    for i, ep in enumerate(eps):
        nft.add(target, f"{frontend} . {i}", f"{ep.ip} . {ep.port}")


def _verdicts(p: ServicePortInfo) -> tuple[str, str]:
    if not p.has_endpoints:  # REJECT: the client is told at once, no timeout
        return f"goto {REJECT_CHAIN}", f"goto {REJECT_CHAIN}"
    return "drop", "drop"  # Local policy without local endpoints, like kube-proxy


def _affinity_choice(p: ServicePortInfo, eps: tuple[Endpoint, ...]) -> list[str]:
    proto = f"meta l4proto {p.proto}"
    rules = []
    for ep in eps:  # a client remembered within the timeout keeps its endpoint (refreshed)
        s = aff_set(p, ep)
        rules.append(f"{proto} ip saddr @{s} update @{s} {{ ip saddr }} dnat to {ep.addr}")
    n = len(eps)
    for i, ep in enumerate(eps):
        # 1/n, 1/(n-1), ... over the remaining endpoints: uniform, one chain, no map.
        pick = f"numgen random mod {n - i} == 0 " if i < n - 1 else ""
        s = aff_set(p, ep)
        rules.append(f"{pick}{proto} update @{s} {{ ip saddr }} dnat to {ep.addr}")
    return rules


def _affinity_chains(nft: PortNft, p: ServicePortInfo, ctx: NodeContext) -> tuple[str, str]:
    """Per-service chains for a ClientIP-affinity port; returns (internal, external) verdict
    targets (chain names)."""
    h = port_proto_hash(p.port_key, p.proto)
    svc, svl, ext = f"svc-{h}", f"svl-{h}", f"ext-{h}"
    for ep in p.reachable_endpoints:
        nft.sets[aff_set(p, ep)] = p.affinity_timeout or 0
    if p.cluster_endpoints:
        nft.chains[svc] = _affinity_choice(p, p.cluster_endpoints)
    if p.local_endpoints:
        nft.chains[svl] = _affinity_choice(p, p.local_endpoints)
    if p.has_endpoints and p.externally_accessible:
        if not p.external_policy_local:
            rules = [f"jump {MARK_MASQ}", f"goto {svc}"]
        else:
            rules = [
                f"ip saddr {ctx.cluster_cidr} goto {svc}",
                f"fib saddr type local jump {MARK_MASQ}",
                f"fib saddr type local goto {svc}",
            ]
            if p.has_external_endpoints:
                rules.append(f"goto {svl}")
        nft.chains[ext] = rules
    return (svl if p.internal_policy_local else svc), ext


@lru_cache(maxsize=1 << 16)
def port_nft(p: ServicePortInfo, ctx: NodeContext) -> PortNft:
    """Everything one service port puts into the table (memoised: do not mutate)."""
    nft = PortNft()
    no_int, no_ext = _verdicts(p)
    affinity = p.affinity_timeout is not None
    internal_chain = ext_chain = ""
    if affinity:
        internal_chain, ext_chain = _affinity_chains(nft, p, ctx)
    fe = f"{p.cluster_ip} . {p.proto} . {p.port}"
    if p.has_internal_endpoints:
        eps = p.internal_endpoints
        if not affinity:
            internal_chain = _shared_pool(nft, True, False, len(eps))
            _slots(nft, "endpoints", fe, eps)
        nft.add("service-ips", fe, f"goto {internal_chain}")
        nft.add("cluster-ips", fe)  # off-cluster sources get masqueraded
    else:
        nft.add("no-endpoint-services", fe, no_int)

    ips = dict.fromkeys(p.external_ips + p.load_balancer_ips)  # one element per address
    externals = [(True, f"{ip} . {p.proto} . {p.port}") for ip in ips]
    if p.node_port:
        externals.append((False, f"{p.proto} . {p.node_port}"))
    for by_ip, xfe in externals:
        if p.has_endpoints:
            if not affinity:
                ext_chain = _shared_external(nft, p, by_ip, ctx)
                pre = "" if by_ip else "nodeport-"
                if p.external_policy_local:
                    _slots(nft, f"{pre}cluster-endpoints", xfe, p.cluster_endpoints)
                _slots(nft, f"{pre}endpoints", xfe, p.external_endpoints)
            nft.add("service-ips" if by_ip else "service-nodeports", xfe, f"goto {ext_chain}")
        if not p.has_external_endpoints:
            nft.add("no-endpoint-services" if by_ip else "no-endpoint-nodeports", xfe, no_ext)
    return nft


@lru_cache(maxsize=1 << 16)
def shared_chains(p: ServicePortInfo, ctx: NodeContext) -> dict[str, list[str]]:
    """The shared chains ``port_nft(p).shared`` would name, without building elements
    (incremental syncs need them for every port of both models)."""
    nft = PortNft()
    if p.affinity_timeout is None and p.has_endpoints:
        if p.has_internal_endpoints:
            _shared_pool(nft, True, False, len(p.internal_endpoints))
        if p.external_ips or p.load_balancer_ips:
            _shared_external(nft, p, True, ctx)
        if p.node_port:
            _shared_external(nft, p, False, ctx)
    return nft.shared


def hairpin_ips(ports: tuple[ServicePortInfo, ...]) -> set[str]:
    """Endpoint IPs that may reach themselves through a service (need masquerade)."""
    return {ep.ip for p in ports for ep in p.reachable_endpoints}


def base_chains(ctx: NodeContext) -> dict[str, list[str]]:
    """The fixed chains: hooks, dispatch, no-endpoint checks and masquerading."""
    tuple_key = "ip daddr . meta l4proto . th dport"
    nodeport_dst = "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport"
    return {
        # reject is only valid in input/forward/output; output runs after its DNAT (-100)
        # so traffic that was short-circuited to an endpoint is not dropped.
        "filter-input": ["type filter hook input priority -110; policy accept;",
                         "ct state new jump endpoints-check"],
        "filter-forward": ["type filter hook forward priority -110; policy accept;",
                           "ct state new jump endpoints-check"],
        "filter-output": ["type filter hook output priority -90; policy accept;",
                          "ct state new jump endpoints-check"],
        "nat-prerouting": ["type nat hook prerouting priority dstnat; policy accept;",
                           "jump services"],
        "nat-output": ["type nat hook output priority -100; policy accept;", "jump services"],
        "nat-postrouting": ["type nat hook postrouting priority srcnat; policy accept;",
                            "jump masquerading"],
        "endpoints-check": [f"{tuple_key} vmap @no-endpoint-services",
                            f"{nodeport_dst} vmap @no-endpoint-nodeports"],
        REJECT_CHAIN: ["reject with icmp port-unreachable"],
        MARK_MASQ: [f"meta mark set meta mark or {MASQ_MARK}"],
        "masquerading": [
            # hairpin: after DNAT the source equals the destination endpoint
            f"ct status dnat ip saddr . ip daddr @hairpin jump {MARK_MASQ}",
            f"meta mark & {MASQ_MARK} == 0 return",
            f"meta mark set meta mark xor {MASQ_MARK}",  # clear: never masquerade twice
            "masquerade fully-random",
        ],
        "services": [
            f"ip saddr != {ctx.cluster_cidr} {tuple_key} @cluster-ips jump {MARK_MASQ}",
            f"{tuple_key} vmap @service-ips",
            f"{nodeport_dst} vmap @service-nodeports",
        ],
    }  # fmt: skip
