"""Compile NetworkPolicies into a per-node plan: address sets and port sets per pod chain.

The plan is what both renderers (:mod:`~testbed.policy.nft`, :mod:`~testbed.policy.iptables`)
print. It is computed for the pods of ONE node: for each local pod that is isolated for
ingress (egress), the list of rules that allow traffic, where a rule is "peer address in a
set of IPv4 networks AND (protocol, port) in a set of ranges". Selectors are evaluated here,
once, into addresses, so the data plane only compares addresses and ports.

Written independently of :mod:`testbed.policy.oracle` (which evaluates flows one at a time)
so the oracle can check it. Conventions match the oracle: ipBlock matches pod IPs too; named
ports resolve on the destination pod (for egress rules that means one exact
(destination IP, protocol, port) triple per matching destination pod); IPv6 CIDRs are
ignored because the pod network is IPv4.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from testbed.policy.model import (
    Pod,
    namespace_labels,
    normalize_protocol,
    policy_key,
    policy_namespace,
    policy_types,
    validate_all,
)

ANY_PORT = (0, 65535)
PortRange = tuple[str, int, int]  # ("tcp"|"udp", first, last); (proto, 0, 65535) = any port
Target = tuple[str, str, int]  # (destination IP, "tcp"|"udp", port)


@dataclass(frozen=True)
class Rule:
    """Allows when the peer address is in ``peers`` (``None`` = any address) and the
    (protocol, destination port) is in ``ports`` (``None`` = any protocol and port)."""

    origin: str
    peers: tuple[str, ...] | None
    ports: tuple[PortRange, ...] | None


@dataclass(frozen=True)
class TargetRule:
    """Egress via named ports: allows exactly these (destination IP, protocol, port)."""

    origin: str
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class PodChain:
    """The rules of one isolated local pod in one direction (empty rules = deny all)."""

    pod: str
    ip: str
    policies: tuple[str, ...]
    rules: tuple[Rule | TargetRule, ...]


@dataclass(frozen=True)
class NodePlan:
    """Everything a renderer needs for one node."""

    node: str
    local_ips: tuple[str, ...]
    ingress: tuple[PodChain, ...]
    egress: tuple[PodChain, ...]


def _selector(sel: Mapping) -> Callable[[Mapping[str, str]], bool]:
    """Compile a label selector into a predicate over a label mapping."""
    tests: list[Callable[[Mapping[str, str]], bool]] = []
    for key, value in (sel.get("matchLabels") or {}).items():
        tests.append(lambda lb, k=key, v=value: k in lb and lb[k] == v)
    for e in sel.get("matchExpressions") or []:
        key, vals = e["key"], frozenset(e.get("values") or ())
        tests.append({
            "In": lambda lb, k=key, vs=vals: k in lb and lb[k] in vs,
            "NotIn": lambda lb, k=key, vs=vals: k not in lb or lb[k] not in vs,
            "Exists": lambda lb, k=key: k in lb,
            "DoesNotExist": lambda lb, k=key: k not in lb,
        }[e["operator"]])
    return lambda lb: all(t(lb) for t in tests)


Interval = tuple[int, int]  # inclusive IPv4 address range as integers


def _net(cidr: str) -> Interval | None:
    net = ipaddress.ip_network(cidr, strict=False)
    if net.version != 4:
        return None
    return int(net.network_address), int(net.broadcast_address)


def _block_intervals(block: Mapping) -> list[Interval]:
    """``cidr`` minus every ``except`` as address intervals (IPv6 blocks: none)."""
    whole = _net(block["cidr"])
    if whole is None:
        return []
    out = [whole]
    for exc in block.get("except") or []:
        cut = _net(exc)
        if cut is None:
            continue
        nxt: list[Interval] = []
        for lo, hi in out:
            if cut[1] < lo or cut[0] > hi:
                nxt.append((lo, hi))
                continue
            if lo < cut[0]:
                nxt.append((lo, cut[0] - 1))
            if cut[1] < hi:
                nxt.append((cut[1] + 1, hi))
        out = nxt
    return out


def merge_intervals(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    """Sort and merge overlapping/adjacent address intervals."""
    out: list[list[int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def _ip(x: int) -> str:
    return f"{x >> 24}.{(x >> 16) & 255}.{(x >> 8) & 255}.{x & 255}"


def to_cidrs(intervals: Iterable[Interval]) -> tuple[str, ...]:
    """The minimal list of CIDRs covering merged intervals, e.g. ``10.0.0.4/30``."""
    out = []
    for lo, hi in intervals:
        while lo <= hi:
            size = lo & -lo if lo else 1 << 32
            while size > hi - lo + 1:
                size >>= 1
            out.append(f"{_ip(lo)}/{33 - size.bit_length()}")
            lo += size
    return tuple(out)


def merge_ranges(ranges: Iterable[PortRange]) -> tuple[PortRange, ...]:
    """Sort and merge overlapping/adjacent ranges per protocol."""
    out: list[list] = []
    for proto, lo, hi in sorted(set(ranges)):
        if out and out[-1][0] == proto and lo <= out[-1][2] + 1:
            out[-1][2] = max(out[-1][2], hi)
        else:
            out.append([proto, lo, hi])
    return tuple((p, lo, hi) for p, lo, hi in out)


class _Compiler:
    def __init__(self, pods: Iterable[Pod], namespaces: Mapping[str, Mapping[str, str]],
                 policies: Iterable[Mapping]) -> None:
        self.pods = sorted((p for p in pods if p.ip and ":" not in p.ip), key=lambda p: p.key)
        self.namespaces = namespaces
        self.policies = sorted(validate_all(policies), key=policy_key)
        self._peer_cache: dict[tuple[str, str, int], tuple[Interval, ...] | None] = {}
        self._target_cache: dict[tuple, list[Target]] = {}
        self._rule_cache: dict[tuple, list[Rule | TargetRule]] = {}
        self._ns_labels = {ns: namespace_labels(namespaces, ns)
                           for ns in {*namespaces, *(p.namespace for p in self.pods)}}
        self._ip_int = {p.key: int(ipaddress.IPv4Address(p.ip)) for p in self.pods}
        self._subjects = [(p, policy_namespace(p), policy_types(p),
                           _selector(p["spec"]["podSelector"])) for p in self.policies]

    def selecting(self, pod: Pod, ptype: str) -> list[Mapping]:
        return [p for p, ns, types, sel in self._subjects
                if ns == pod.namespace and ptype in types and sel(pod.labels)]

    def _peer_pods(self, peer: Mapping, policy_ns: str) -> list[Pod]:
        ns_sel, pod_sel = peer.get("namespaceSelector"), peer.get("podSelector")
        ns_ok = (_selector(ns_sel) if ns_sel is not None else None)
        pod_ok = _selector(pod_sel) if pod_sel is not None else (lambda lb: True)
        return [q for q in self.pods
                if (q.namespace == policy_ns if ns_ok is None
                    else ns_ok(self._ns_labels[q.namespace]))
                and pod_ok(q.labels)]

    def peers(self, pol: Mapping, field: str, index: int) -> tuple[Interval, ...] | None:
        """Address intervals matched by a rule's peers; ``None`` = any (no peers given)."""
        key = (policy_key(pol), field, index)
        if key not in self._peer_cache:
            rule = pol["spec"][field][index]
            specs = rule.get("from" if field == "ingress" else "to") or []
            if not specs:
                self._peer_cache[key] = None
            else:
                nets: list[Interval] = []
                for spec in specs:
                    if "ipBlock" in spec:
                        nets += _block_intervals(spec["ipBlock"])
                    else:
                        nets += [(self._ip_int[q.key],) * 2 for q in
                                 self._peer_pods(spec, policy_namespace(pol))]
                self._peer_cache[key] = merge_intervals(nets)
        return self._peer_cache[key]

    def rules(self, pod: Pod, pol: Mapping, field: str) -> list[Rule | TargetRule]:
        out: list[Rule | TargetRule] = []
        for i, rule in enumerate(pol["spec"].get(field) or []):
            named = field == "ingress" and any(
                isinstance(e.get("port"), str) for e in rule.get("ports") or [])
            key = (policy_key(pol), field, i, pod.ports if named else None)
            if key not in self._rule_cache:
                self._rule_cache[key] = self._rule(pod, pol, field, i)
            out += self._rule_cache[key]
        return out

    def _rule(self, pod: Pod, pol: Mapping, field: str, i: int) -> list[Rule | TargetRule]:
        """Compile rule ``i``; ``pod`` (the destination) matters only for ingress named ports."""
        origin = f"{policy_key(pol)} {field}[{i}]"
        nets = self.peers(pol, field, i)
        if nets == ():
            return []  # peers select nothing
        peers = None if nets is None else to_cidrs(nets)
        entries = pol["spec"][field][i].get("ports") or []
        if not entries:
            return [Rule(origin, peers, None)]
        numeric: list[PortRange] = []
        targets: list[Target] = []
        for e in entries:
            proto, value = normalize_protocol(e.get("protocol")).lower(), e.get("port")
            if value is None:
                numeric.append((proto, *ANY_PORT))
            elif not isinstance(value, str):
                numeric.append((proto, value, e.get("endPort", value)))
            elif field == "ingress":
                numeric += [(proto, n, n) for n in _named(pod, value, proto)]
            else:
                targets += self._targets(pol, i, nets, value, proto)
        out: list[Rule | TargetRule] = []
        if numeric:
            out.append(Rule(origin, peers, merge_ranges(numeric)))
        if targets:
            out.append(TargetRule(origin, tuple(sorted(set(targets)))))
        return out

    def _targets(self, pol: Mapping, index: int, nets: tuple[Interval, ...] | None,
                 name: str, proto: str) -> list[Target]:
        """Destination pods in ``nets`` with container port ``name``/``proto``, as triples.
        Independent of the source pod, so cached per policy rule."""
        key = (policy_key(pol), index, name, proto)
        if key not in self._target_cache:
            starts, ends = _intervals(nets)
            out = []
            for q in self.pods:
                ports = _named(q, name, proto)
                if ports and (nets is None or _inside(self._ip_int[q.key], starts, ends)):
                    out += [(q.ip, proto, n) for n in ports]
            self._target_cache[key] = out
        return self._target_cache[key]

    def chain(self, pod: Pod, ptype: str) -> PodChain | None:
        pols = self.selecting(pod, ptype)
        if not pols:
            return None
        field = ptype.lower()
        rules: list[Rule | TargetRule] = []
        for pol in pols:
            for r in self.rules(pod, pol, field):
                dup = next((i for i, x in enumerate(rules) if _same(x, r)), None)
                if dup is None:
                    rules.append(r)
                else:
                    rules[dup] = _with_origin(rules[dup], r.origin)
        return PodChain(pod.key, pod.ip, tuple(policy_key(p) for p in pols), tuple(rules))


def _intervals(nets: tuple[Interval, ...] | None) -> tuple[list[int], list[int]]:
    """Sorted, disjoint intervals as parallel start/end lists (for bisect)."""
    nets = nets or ()
    return [lo for lo, _ in nets], [hi for _, hi in nets]


def _inside(addr: int, starts: list[int], ends: list[int]) -> bool:
    i = bisect.bisect_right(starts, addr) - 1
    return i >= 0 and addr <= ends[i]


def _named(pod: Pod, name: str, proto: str) -> list[int]:
    return sorted({cp.port for cp in pod.ports
                   if cp.name == name and (cp.protocol or "TCP").lower() == proto})


def _same(a: Rule | TargetRule, b: Rule | TargetRule) -> bool:
    if isinstance(a, Rule) and isinstance(b, Rule):
        return (a.peers, a.ports) == (b.peers, b.ports)
    return isinstance(a, TargetRule) and isinstance(b, TargetRule) and a.targets == b.targets


def _with_origin(rule: Rule | TargetRule, origin: str) -> Rule | TargetRule:
    joined = f"{rule.origin}, {origin}"
    if isinstance(rule, Rule):
        return Rule(joined, rule.peers, rule.ports)
    return TargetRule(joined, rule.targets)


def compile_node(pods: Iterable[Pod], namespaces: Mapping[str, Mapping[str, str]],
                 policies: Iterable[Mapping], node: str) -> NodePlan:
    """The plan for the pods scheduled on ``node``.

    ``pods`` are ALL pods of the cluster (remote pods are needed as peers); pods without an
    IPv4 address are ignored. ``namespaces`` maps name -> labels; ``policies`` are v1 NetworkPolicy
    dicts (validated; SCTP raises :class:`~testbed.policy.model.Unsupported`).
    """
    c = _Compiler(pods, namespaces, policies)
    local = [p for p in c.pods if p.node == node]
    ingress = tuple(ch for p in local if (ch := c.chain(p, "Ingress")) is not None)
    egress = tuple(ch for p in local if (ch := c.chain(p, "Egress")) is not None)
    return NodePlan(node, tuple(p.ip for p in local), ingress, egress)
