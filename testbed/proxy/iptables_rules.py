"""Per-service-port iptables rules in kube-proxy's chain design (pure).

Chain names, the hash behind them and the ``%0.10f`` probabilities match kube-proxy's
``pkg/proxy/iptables``, so ``iptables-save`` output reads like a real cluster's and tools or
people who know kube-proxy can debug it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache

from testbed.proxy.model import Endpoint, NodeContext, ServicePortInfo

MASQ_MARK = "0x4000"
KUBE_SERVICES = "KUBE-SERVICES"
KUBE_EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES"
KUBE_NODEPORTS = "KUBE-NODEPORTS"
KUBE_POSTROUTING = "KUBE-POSTROUTING"
KUBE_MARK_MASQ = "KUBE-MARK-MASQ"
KUBE_FORWARD = "KUBE-FORWARD"
# Prefixes of per-service chains: only these are ever deleted as stale.
SERVICE_CHAIN_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-SEP-", "KUBE-FW-")
REJECT = "REJECT --reject-with icmp-port-unreachable"


_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # RFC 4648, as Go's base32.StdEncoding
_B32_PAIRS = [a + b for a in _B32 for b in _B32]  # 10 bits -> 2 characters


@lru_cache(maxsize=1 << 17)
def _hash16(text: str) -> str:
    # 16 base32 characters are exactly the first 80 bits of the digest; encode them with
    # a table (base64.b32encode is pure Python and this runs for every chain name).
    n = int.from_bytes(hashlib.sha256(text.encode()).digest()[:10], "big")
    return "".join(_B32_PAIRS[(n >> shift) & 1023] for shift in range(70, -1, -10))


def port_proto_hash(port_key: str, proto: str) -> str:
    """kube-proxy's portProtoHash: sha256 -> base32 -> first 16 characters."""
    return _hash16(port_key + proto)


def svc_chain(p: ServicePortInfo) -> str:
    """``KUBE-SVC-<hash>``: Cluster-policy endpoint choice."""
    return "KUBE-SVC-" + port_proto_hash(p.port_key, p.proto)


def svl_chain(p: ServicePortInfo) -> str:
    """``KUBE-SVL-<hash>``: Local-policy endpoint choice (this node's endpoints only)."""
    return "KUBE-SVL-" + port_proto_hash(p.port_key, p.proto)


def ext_chain(p: ServicePortInfo) -> str:
    """``KUBE-EXT-<hash>``: NodePort/LB/external-IP traffic (masquerade or short-circuit)."""
    return "KUBE-EXT-" + port_proto_hash(p.port_key, p.proto)


def sep_chain(p: ServicePortInfo, ep: Endpoint) -> str:
    """``KUBE-SEP-<hash>``: DNAT to one endpoint (hash over port name, protocol, ip:port)."""
    return "KUBE-SEP-" + _hash16(p.port_key + p.proto + ep.addr)


def probability(n: int) -> str:
    """The statistic-match probability of picking the first of ``n`` remaining endpoints."""
    return f"{1.0 / n:0.10f}"


def comment(text: str) -> str:
    """A comment match (names are DNS labels, so no quoting problems inside)."""
    return f'-m comment --comment "{text}"'


@dataclass
class PortRules:
    """The rules one service port contributes, by destination."""

    services: list[str] = field(default_factory=list)  # nat KUBE-SERVICES
    nodeports: list[str] = field(default_factory=list)  # nat KUBE-NODEPORTS
    filter: list[str] = field(default_factory=list)  # filter KUBE-SERVICES/EXTERNAL-SERVICES
    chains: list[str] = field(default_factory=list)  # per-service nat chains (declared)
    rules: list[str] = field(default_factory=list)  # rules inside those chains


def _endpoint_choice(
    p: ServicePortInfo, chain: str, eps: tuple[Endpoint, ...], comments: bool, seps: dict
) -> list[str]:
    out = []
    c = f" {comment(p.port_key)}" if comments else ""
    if p.affinity_timeout is not None:
        # A client seen within the timeout goes back to the endpoint it had.
        for ep in eps:
            sep = seps[ep]
            out.append(
                f"-A {chain}{c} -m recent --name {sep} --rcheck --seconds {p.affinity_timeout}"
                f" --reap -j {sep}"
            )
    n = len(eps)
    for i, ep in enumerate(eps):
        line = f"-A {chain}"
        if comments:
            line += f" {comment(f'{p.port_key} -> {ep.addr}')}"
        if i < n - 1:  # 1/n, 1/(n-1), ..., last one always: a uniform choice overall
            line += f" -m statistic --mode random --probability {probability(n - i)}"
        out.append(f"{line} -j {seps[ep]}")
    return out


def _endpoint_chain(p: ServicePortInfo, ep: Endpoint, sep: str, comments: bool) -> list[str]:
    c = f" {comment(p.port_key)}" if comments else ""
    sticky = f" -m recent --name {sep} --set" if p.affinity_timeout is not None else ""
    return [
        # Hairpin: a pod reaching itself through the service needs SNAT or the reply
        # would bypass the DNAT reversal.
        f"-A {sep}{c} -s {ep.ip}/32 -j {KUBE_MARK_MASQ}",
        f"-A {sep}{c}{sticky} -m {p.proto} -p {p.proto} -j DNAT --to-destination {ep.addr}",
    ]


@lru_cache(maxsize=1 << 16)
def port_rules(p: ServicePortInfo, ctx: NodeContext, comments: bool = True) -> PortRules:
    """All iptables lines for one service port, following kube-proxy's syncProxyRules.
    Memoised (callers must not mutate the result): incremental syncs re-read the dispatch
    lines of every unchanged port."""
    r = PortRules()
    proto, name = p.proto, p.port_key
    match = f"-m {proto} -p {proto}"
    svc, svl, ext = svc_chain(p), svl_chain(p), ext_chain(p)
    internal_chain = svl if p.internal_policy_local else svc
    external_policy_chain = svl if p.external_policy_local else svc
    if not p.has_endpoints:
        int_target = ext_target = REJECT  # refused at once, not a timeout
        int_why = ext_why = f"{name} has no endpoints"
    else:
        int_target = ext_target = "DROP"  # Local policy without local endpoints
        int_why = ext_why = f"{name} has no local endpoints"

    dport = f"--dport {p.port}"
    if p.has_internal_endpoints:
        r.services.append(
            f"-A {KUBE_SERVICES} {comment(name + ' cluster IP')} {match} -d {p.cluster_ip}/32"
            f" {dport} -j {internal_chain}"
        )
    else:
        r.filter.append(
            f"-A {KUBE_SERVICES} {comment(int_why)} {match} -d {p.cluster_ip}/32 {dport}"
            f" -j {int_target}"
        )
    for kind, ips in (("external IP", p.external_ips), ("loadbalancer IP", p.load_balancer_ips)):
        for ip in ips:
            if p.has_endpoints:
                r.services.append(
                    f"-A {KUBE_SERVICES} {comment(f'{name} {kind}')} {match} -d {ip}/32 {dport}"
                    f" -j {ext}"
                )
            if not p.has_external_endpoints:
                r.filter.append(
                    f"-A {KUBE_EXTERNAL_SERVICES} {comment(ext_why)} {match} -d {ip}/32 {dport}"
                    f" -j {ext_target}"
                )
    if p.node_port:
        if p.has_endpoints:
            r.nodeports.append(
                f"-A {KUBE_NODEPORTS} {comment(name)} {match} --dport {p.node_port} -j {ext}"
            )
        if not p.has_external_endpoints:
            r.filter.append(
                f"-A {KUBE_EXTERNAL_SERVICES} {comment(ext_why)} -m addrtype --dst-type LOCAL"
                f" {match} --dport {p.node_port} -j {ext_target}"
            )

    if p.has_internal_endpoints:
        # Off-cluster clients reaching a cluster IP (via a route to any node) must get
        # replies back through this node: masquerade them (kube-proxy --cluster-cidr).
        r.rules.append(
            f"-A {internal_chain} {comment(name + ' cluster IP')} {match} -d {p.cluster_ip}/32"
            f" {dport} ! -s {ctx.cluster_cidr} -j {KUBE_MARK_MASQ}"
        )
    if p.has_endpoints and p.externally_accessible:
        r.chains.append(ext)
        if not p.external_policy_local:
            why = f"masquerade traffic for {name} external destinations"
            r.rules.append(f"-A {ext} {comment(why)} -j {KUBE_MARK_MASQ}")
        else:
            # Pods and the node itself reach Local-policy addresses as if via the external
            # load balancer: they may use any endpoint (the cluster pool).
            why = f"pod traffic for {name} external destinations"
            r.rules.append(f"-A {ext} {comment(why)} -s {ctx.cluster_cidr} -j {svc}")
            why = f"masquerade LOCAL traffic for {name} external destinations"
            r.rules.append(
                f"-A {ext} {comment(why)} -m addrtype --src-type LOCAL -j {KUBE_MARK_MASQ}"
            )
            why = f"route LOCAL traffic for {name} external destinations"
            r.rules.append(f"-A {ext} {comment(why)} -m addrtype --src-type LOCAL -j {svc}")
        if p.has_external_endpoints:
            r.rules.append(f"-A {ext} -j {external_policy_chain}")
    seps = {ep: sep_chain(p, ep) for ep in p.reachable_endpoints}
    if p.cluster_endpoints:
        r.chains.append(svc)
        r.rules.extend(_endpoint_choice(p, svc, p.cluster_endpoints, comments, seps))
    if p.local_endpoints:
        r.chains.append(svl)
        r.rules.extend(_endpoint_choice(p, svl, p.local_endpoints, comments, seps))
    for ep, sep in seps.items():
        r.chains.append(sep)
        r.rules.extend(_endpoint_chain(p, ep, sep, comments))
    return r
