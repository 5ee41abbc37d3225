"""The NetworkPolicy oracle: what ``networking.k8s.io/v1`` says about one flow.

Pure and deliberately naive: it evaluates each flow directly from the policy dicts, one
rule at a time, so it can serve as the reference the data-plane renderers are tested
against (it shares no decision code with :mod:`testbed.policy.plan`).

Semantics (Kubernetes API reference and the network-policies concept page):

* A pod is *isolated* for ingress (egress) iff some policy in its own namespace selects it
  (``spec.podSelector``; ``{}`` selects every pod of the namespace) and has that type in
  ``policyTypes``. ``policyTypes`` defaults to Ingress, plus Egress when ``egress`` is
  non-empty. A non-isolated pod allows everything in that direction.
* An isolated pod allows what at least one rule of at least one selecting policy allows
  (rules ORed, policies additive). A rule with no ``from``/``to`` matches every peer; no
  ``ports`` matches every port and protocol. Peers in a rule are ORed; a peer with both
  ``namespaceSelector`` and ``podSelector`` matches pods satisfying both; a ``podSelector``
  alone means pods of the policy's namespace; ``namespaceSelector: {}`` means all namespaces.
* A flow needs egress allowed at the source pod AND ingress allowed at the destination pod.
* Named ports are resolved on the destination pod's container ports (for ingress *and*
  egress rules), matching the rule's protocol; ``endPort`` makes an inclusive range.
* Traffic between a pod and its own node is always allowed, and a pod cannot block
  traffic to itself.
* **ipBlock choice**: an ``ipBlock`` matches any IPv4/IPv6 address in ``cidr`` and in none
  of ``except``, *including pod IPs*. Upstream leaves pod-IP matching to the implementation;
  this testbed's data plane sees real (un-NATed) pod source addresses after service DNAT,
  so the enforcement matches them and so does the oracle.
* SCTP raises :class:`~testbed.policy.model.Unsupported`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from testbed.policy.model import (
    External,
    Peer,
    Pod,
    namespace_labels,
    normalize_protocol,
    policy_key,
    policy_namespace,
    policy_types,
    validate_all,
)

_DIRS = {"Ingress": ("ingress", "from"), "Egress": ("egress", "to")}


@dataclass(frozen=True)
class Verdict:
    """Whether a flow is allowed, and why (one line per decision, for ``policy explain``)."""

    allowed: bool
    reasons: tuple[str, ...]

    def __bool__(self) -> bool:
        return self.allowed


def label_selector_matches(selector: Mapping, labels: Mapping[str, str]) -> bool:
    """``matchLabels`` AND every ``matchExpressions`` entry (In/NotIn/Exists/DoesNotExist).
    The empty selector matches everything."""
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def _ip_in_block(ip: str, block: Mapping) -> bool:
    if not ip:
        return False
    addr = ipaddress.ip_address(ip)
    net = ipaddress.ip_network(block["cidr"], strict=False)
    if addr.version != net.version or addr not in net:
        return False
    return not any(addr in ipaddress.ip_network(e, strict=False) for e in block.get("except") or [])


class Oracle:
    """Reference evaluator over one snapshot of pods, namespaces and policies.

    ``pods``: :class:`Pod` objects; ``namespaces``: name -> labels;
    ``policies``: v1 NetworkPolicy dicts (validated on construction; SCTP raises).
    """

    def __init__(self, pods: Iterable[Pod], namespaces: Mapping[str, Mapping[str, str]],
                 policies: Iterable[Mapping]) -> None:
        self.pods = list(pods)
        self.namespaces = dict(namespaces)
        self.policies = validate_all(policies)

    # -- isolation ------------------------------------------------------------------------

    def selecting(self, pod: Pod, policy_type: str) -> list[Mapping]:
        """Policies in ``pod``'s namespace that select it and have ``policy_type``."""
        return [
            p for p in self.policies
            if policy_namespace(p) == pod.namespace
            and policy_type in policy_types(p)
            and label_selector_matches(p["spec"]["podSelector"], pod.labels)
        ]

    def isolated(self, pod: Pod, policy_type: str) -> bool:
        """Is ``pod`` isolated for ``Ingress`` or ``Egress``?"""
        return bool(self.selecting(pod, policy_type))

    # -- matching -------------------------------------------------------------------------

    def _peer_matches(self, spec: Mapping, policy_ns: str, peer: Peer) -> bool:
        if "ipBlock" in spec:
            return _ip_in_block(peer.ip, spec["ipBlock"])
        if not isinstance(peer, Pod):
            return False
        ns_sel, pod_sel = spec.get("namespaceSelector"), spec.get("podSelector")
        if ns_sel is None:
            if peer.namespace != policy_ns:
                return False
        elif not label_selector_matches(ns_sel, namespace_labels(self.namespaces, peer.namespace)):
            return False
        return pod_sel is None or label_selector_matches(pod_sel, peer.labels)

    @staticmethod
    def _port_matches(ports: list, port: int, protocol: str, dst: Peer) -> bool:
        if not ports:
            return True
        for entry in ports:
            if normalize_protocol(entry.get("protocol")) != protocol:
                continue
            value = entry.get("port")
            if value is None:
                return True
            if isinstance(value, str):
                if isinstance(dst, Pod) and any(
                    cp.name == value and cp.port == port
                    and (cp.protocol or "TCP").upper() == protocol
                    for cp in dst.ports
                ):
                    return True
            elif value <= port <= entry.get("endPort", value):
                return True
        return False

    def _direction(self, pod: Pod, policy_type: str, peer: Peer, dst: Peer, port: int,
                   protocol: str) -> tuple[bool, list[str]]:
        field, peers_field = _DIRS[policy_type]
        where = f"{field} at {pod.key}"
        pols = self.selecting(pod, policy_type)
        if not pols:
            return True, [f"{where}: allowed, not isolated (no {policy_type} policy selects it)"]
        hits = []
        for pol in pols:
            ns = policy_namespace(pol)
            for i, rule in enumerate(pol["spec"].get(field) or []):
                peers = rule.get(peers_field) or []
                if peers and not any(self._peer_matches(s, ns, peer) for s in peers):
                    continue
                if self._port_matches(rule.get("ports") or [], port, protocol, dst):
                    hits.append(f"{policy_key(pol)} {field}[{i}]")
        isolating = ", ".join(policy_key(p) for p in pols)
        if hits:
            return True, [f"{where}: allowed by {', '.join(hits)} (isolated by {isolating})"]
        return False, [f"{where}: denied, isolated by {isolating} and no rule matches "
                       f"{peer.key} {protocol}/{port}"]

    # -- public ---------------------------------------------------------------------------

    def allowed(self, src: Peer, dst: Peer, port: int, protocol: str = "TCP") -> Verdict:
        """Is a new ``protocol``/``port`` connection from ``src`` to ``dst`` allowed?

        Egress is checked at ``src`` (if a pod) and ingress at ``dst`` (if a pod). Use
        ``External(ip, node=...)`` for a node's own address: a node always reaches its pods.
        """
        protocol = normalize_protocol(protocol)
        if isinstance(src, Pod) and isinstance(dst, Pod) and src == dst:
            return Verdict(True, (f"{src.key} -> itself: a pod cannot block traffic to itself",))
        reasons: list[str] = []
        ok = True
        if not isinstance(src, Pod):
            reasons.append(f"egress: source {src.key} is not a pod, no egress policy applies")
        elif isinstance(dst, External) and dst.node and dst.node == src.node:
            reasons.append(f"egress at {src.key}: allowed, traffic to its own node")
        else:
            e_ok, why = self._direction(src, "Egress", dst, dst, port, protocol)
            ok, reasons = ok and e_ok, reasons + why
        if not isinstance(dst, Pod):
            reasons.append(f"ingress: destination {dst.key} is not a pod, no ingress policy")
        elif isinstance(src, External) and src.node and src.node == dst.node:
            reasons.append(f"ingress at {dst.key}: allowed, traffic from its own node")
        else:
            i_ok, why = self._direction(dst, "Ingress", src, dst, port, protocol)
            ok, reasons = ok and i_ok, reasons + why
        return Verdict(ok, tuple(reasons))

    def matrix(self, port: int, protocol: str = "TCP") -> dict[tuple[str, str], bool]:
        """``{(src.key, dst.key): allowed}`` for every ordered pair of pods (incl. self)."""
        return {(s.key, d.key): self.allowed(s, d, port, protocol).allowed
                for s in self.pods for d in self.pods}

    def explain(self, src: Peer, dst: Peer, port: int, protocol: str = "TCP") -> str:
        """Human-readable verdict: ``ALLOWED``/``DENIED`` line plus one line per reason."""
        v = self.allowed(src, dst, port, protocol)
        head = (f"{'ALLOWED' if v.allowed else 'DENIED'}: {src.key} -> {dst.key} "
                f"{normalize_protocol(protocol)}/{port}")
        return "\n".join([head, *("  " + r for r in v.reasons)])


def allowed(pods: Iterable[Pod], namespaces: Mapping[str, Mapping[str, str]],
            policies: Iterable[Mapping], src: Peer, dst: Peer, port: int,
            protocol: str = "TCP") -> Verdict:
    """One-shot :meth:`Oracle.allowed`."""
    return Oracle(pods, namespaces, policies).allowed(src, dst, port, protocol)


def matrix(pods: Iterable[Pod], namespaces: Mapping[str, Mapping[str, str]],
           policies: Iterable[Mapping], port: int,
           protocol: str = "TCP") -> dict[tuple[str, str], bool]:
    """One-shot :meth:`Oracle.matrix`: ``{(src_key, dst_key): allowed}`` over all pod pairs."""
    return Oracle(pods, namespaces, policies).matrix(port, protocol)


def explain(pods: Iterable[Pod], namespaces: Mapping[str, Mapping[str, str]],
            policies: Iterable[Mapping], src: Peer, dst: Peer, port: int,
            protocol: str = "TCP") -> str:
    """One-shot :meth:`Oracle.explain`."""
    return Oracle(pods, namespaces, policies).explain(src, dst, port, protocol)
