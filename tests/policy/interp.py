"""A tiny interpreter of compiled plans: what the rendered data plane decides, in Python.

Used to check :func:`testbed.policy.plan.compile_node` against the oracle without root.
"""

from __future__ import annotations

import ipaddress

from testbed.policy import Pod
from testbed.policy.plan import NodePlan, Rule, TargetRule


def _rule_allows(rule: Rule | TargetRule, ip: str, proto: str, port: int) -> bool:
    if isinstance(rule, TargetRule):
        return (ip, proto, port) in rule.targets
    if rule.peers is not None and not any(
            ipaddress.ip_address(ip) in ipaddress.ip_network(n) for n in rule.peers):
        return False
    return rule.ports is None or any(p == proto and lo <= port <= hi for p, lo, hi in rule.ports)


def _chain_allows(plan: NodePlan, direction: str, pod_ip: str, peer_ip: str, proto: str,
                  port: int) -> bool:
    chains = {c.ip: c for c in getattr(plan, direction)}
    if pod_ip not in chains:
        return True  # not isolated: not in the verdict map
    if peer_ip == pod_ip:
        return True  # the chain's first rule
    return any(_rule_allows(r, peer_ip, proto, port) for r in chains[pod_ip].rules)


def plan_allows(plans: dict, pods: list[Pod], src: str, dst: str, proto: str, port: int) -> bool:
    """What the rendered data plane does: egress on the source's node, ingress on the
    destination's node (addresses only)."""
    by_ip = {p.ip: p for p in pods}
    ok = True
    if src in by_ip:
        ok = _chain_allows(plans[by_ip[src].node], "egress", src, dst, proto, port)
    if dst in by_ip:
        ok = ok and _chain_allows(plans[by_ip[dst].node], "ingress", dst, src, proto, port)
    return ok
