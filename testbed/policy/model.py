"""Inputs shared by the policy oracle and the renderers: pods, peers, errors, validation.

Everything here is plain data plus well-formedness checks of ``networking.k8s.io/v1``
NetworkPolicy dicts (the checks the API server would make). The *decisions* live elsewhere:
:mod:`testbed.policy.oracle` evaluates one flow at a time, :mod:`testbed.policy.plan` compiles
sets for the data plane; they are written independently so that one can check the other.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

SCTP_MESSAGE = "SCTP is not supported by this testbed's data plane"
PROTOCOLS = ("TCP", "UDP")
NAME_LABEL = "kubernetes.io/metadata.name"
OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")


class Unsupported(Exception):
    """The policy (or query) uses something this testbed's data plane cannot enforce."""


class PolicyError(ValueError):
    """A NetworkPolicy is malformed (the API server would have rejected it)."""


@dataclass(frozen=True)
class ContainerPort:
    """A container port of a pod: number, optional name (for named ports), protocol."""

    port: int
    name: str | None = None
    protocol: str = "TCP"


@dataclass(frozen=True, eq=False)
class Pod:
    """A pod as policy sees it. Identity (equality, hashing) is ``namespace/name``."""

    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ip: str = ""
    node: str = ""
    ports: tuple[ContainerPort, ...] = ()

    @property
    def key(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pod) and other.key == self.key

    def __hash__(self) -> int:
        return hash(("pod", self.key))

    @classmethod
    def from_k8s(cls, obj: Mapping) -> Pod:
        """Build from a v1 Pod dict (metadata, ``spec.nodeName``, ``status.podIP``, ports)."""
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        ports = tuple(
            ContainerPort(int(p["containerPort"]), p.get("name"), p.get("protocol", "TCP"))
            for c in spec.get("containers") or []
            for p in c.get("ports") or []
        )
        return cls(
            namespace=meta.get("namespace", "default"),
            name=meta["name"],
            labels=dict(meta.get("labels") or {}),
            ip=(obj.get("status") or {}).get("podIP") or "",
            node=spec.get("nodeName") or "",
            ports=ports,
        )


@dataclass(frozen=True)
class External:
    """A non-pod endpoint. ``node`` is set when the IP is that node's own address
    (traffic between a node and its own pods is always allowed)."""

    ip: str
    node: str | None = None

    @property
    def key(self) -> str:
        """The IP, or ``node:<name>`` for a node address."""
        return f"node:{self.node}" if self.node else self.ip


Peer = Pod | External


def namespace_labels(namespaces: Mapping[str, Mapping[str, str]], name: str) -> dict[str, str]:
    """Labels of namespace ``name``, plus ``kubernetes.io/metadata.name`` as the API server
    sets it on every namespace (also for namespaces missing from ``namespaces``)."""
    labels = dict(namespaces.get(name) or {})
    labels.setdefault(NAME_LABEL, name)
    return labels


def policy_key(policy: Mapping) -> str:
    """``namespace/name`` of a NetworkPolicy dict (namespace defaults to ``default``)."""
    meta = policy.get("metadata") or {}
    return f"{meta.get('namespace', 'default')}/{meta.get('name', '?')}"


def policy_namespace(policy: Mapping) -> str:
    """The namespace a policy lives in (and whose pods its ``podSelector`` selects)."""
    return (policy.get("metadata") or {}).get("namespace", "default")


def policy_types(policy: Mapping) -> tuple[str, ...]:
    """``spec.policyTypes`` with the API server's defaulting: Ingress always, plus Egress
    when the spec has at least one egress rule."""
    spec = policy.get("spec") or {}
    if spec.get("policyTypes"):
        return tuple(spec["policyTypes"])
    return ("Ingress", "Egress") if spec.get("egress") else ("Ingress",)


def normalize_protocol(protocol: str | None) -> str:
    """``TCP``/``UDP`` (default TCP); raises :class:`Unsupported` for SCTP."""
    proto = (protocol or "TCP").upper()
    if proto == "SCTP":
        raise Unsupported(SCTP_MESSAGE)
    if proto not in PROTOCOLS:
        raise PolicyError(f"unknown protocol {protocol!r} (TCP, UDP or SCTP)")
    return proto


def _check_selector(sel: object, where: str) -> None:
    if not isinstance(sel, Mapping):
        raise PolicyError(f"{where}: a label selector must be a mapping")
    for expr in sel.get("matchExpressions") or []:
        op, values = expr.get("operator"), expr.get("values") or []
        if op not in OPERATORS:
            raise PolicyError(f"{where}: unknown operator {op!r} (one of {', '.join(OPERATORS)})")
        if op in ("In", "NotIn") and not values:
            raise PolicyError(f"{where}: operator {op} needs non-empty values")
        if op in ("Exists", "DoesNotExist") and values:
            raise PolicyError(f"{where}: operator {op} takes no values")
        if not expr.get("key"):
            raise PolicyError(f"{where}: a match expression needs a key")


def _check_peer(peer: Mapping, where: str) -> None:
    block = peer.get("ipBlock")
    if block is not None:
        if "podSelector" in peer or "namespaceSelector" in peer:
            raise PolicyError(f"{where}: ipBlock cannot be combined with selectors")
        try:
            net = ipaddress.ip_network(block["cidr"], strict=False)
            for exc in block.get("except") or []:
                sub = ipaddress.ip_network(exc, strict=False)
                if sub.version != net.version or not sub.subnet_of(net):
                    raise PolicyError(f"{where}: except {exc} is not inside {block['cidr']}")
        except (KeyError, ValueError, TypeError) as e:
            if isinstance(e, PolicyError):
                raise
            raise PolicyError(f"{where}: bad ipBlock {dict(block)!r}: {e}") from e
        return
    if "podSelector" not in peer and "namespaceSelector" not in peer:
        raise PolicyError(f"{where}: a peer needs podSelector, namespaceSelector or ipBlock")
    for k in ("podSelector", "namespaceSelector"):
        if peer.get(k) is not None:
            _check_selector(peer[k], f"{where}.{k}")


def _check_port(port: Mapping, where: str) -> None:
    normalize_protocol(port.get("protocol"))
    value, end = port.get("port"), port.get("endPort")
    if isinstance(value, str):
        if not _PORT_NAME.match(value) or not re.search("[a-z]", value):
            raise PolicyError(f"{where}: {value!r} is not a valid port name (IANA_SVC_NAME)")
        if end is not None:
            raise PolicyError(f"{where}: endPort cannot be used with a named port")
    elif value is not None:
        if not isinstance(value, int) or not 1 <= value <= 65535:
            raise PolicyError(f"{where}: port {value!r} is not in 1..65535")
        if end is not None and (not isinstance(end, int) or not value <= end <= 65535):
            raise PolicyError(f"{where}: endPort {end!r} must be in {value}..65535")
    elif end is not None:
        raise PolicyError(f"{where}: endPort needs port")


def validate(policy: Mapping) -> Mapping:
    """Check one NetworkPolicy dict like the API server would; returns it unchanged.

    Raises :class:`PolicyError` for malformed input and :class:`Unsupported` when it uses
    SCTP (which this testbed's data plane cannot enforce).
    """
    key = policy_key(policy)
    spec = policy.get("spec")
    if not isinstance(spec, Mapping):
        raise PolicyError(f"{key}: spec is missing")
    if "podSelector" not in spec:
        raise PolicyError(f"{key}: spec.podSelector is required (use {{}} for all pods)")
    _check_selector(spec["podSelector"], f"{key}: spec.podSelector")
    for t in spec.get("policyTypes") or []:
        if t not in ("Ingress", "Egress"):
            raise PolicyError(f"{key}: unknown policyType {t!r}")
    for direction, peers_field in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            where = f"{key}: {direction}[{i}]"
            for j, peer in enumerate(rule.get(peers_field) or []):
                _check_peer(peer, f"{where}.{peers_field}[{j}]")
            for j, port in enumerate(rule.get("ports") or []):
                try:
                    _check_port(port, f"{where}.ports[{j}]")
                except Unsupported as e:
                    raise Unsupported(f"{key}: {direction}[{i}].ports[{j}]: {e}") from None
    return policy


def validate_all(policies: Iterable[Mapping]) -> list[Mapping]:
    """:func:`validate` every policy; returns them as a list."""
    return [validate(p) for p in policies]
