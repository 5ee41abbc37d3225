"""Small clusters and policy builders shared by the policy tests (upstream e2e style:
namespaces x, y, z with pods a, b, c each)."""

from __future__ import annotations

from collections.abc import Iterable

from testbed.policy import ContainerPort, Pod

NAMESPACES = {"x": {"ns": "x"}, "y": {"ns": "y"}, "z": {"ns": "z"}}
PORTS = (
    ContainerPort(80, "serve-80-tcp", "TCP"),
    ContainerPort(81, "serve-81-tcp", "TCP"),
    ContainerPort(80, "serve-80-udp", "UDP"),
)


def e2e_pods() -> list[Pod]:
    """x/a..z/c; a and b pods on node n1, c pods on n2; b pods also carry tier=web."""
    pods = []
    for i, ns in enumerate("xyz"):
        for j, name in enumerate("abc"):
            labels = {"pod": name, **({"tier": "web"} if name == "b" else {})}
            pods.append(Pod(ns, name, labels, f"10.10.{i + 1}.{j + 2}",
                            "n2" if name == "c" else "n1", PORTS))
    return pods


def pol(ns: str, name: str, selector: dict | None = None, *, types: list | None = None,
        ingress: list | None = None, egress: list | None = None) -> dict:
    """A v1 NetworkPolicy dict; ``ingress``/``egress`` None = field absent."""
    spec: dict = {"podSelector": selector if selector is not None else {}}
    if types is not None:
        spec["policyTypes"] = types
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"namespace": ns, "name": name}, "spec": spec}


def labels(**kv: str) -> dict:
    """``{"matchLabels": kv}``."""
    return {"matchLabels": dict(kv)}


def pods_peer(**kv: str) -> dict:
    return {"podSelector": labels(**kv)}


def ns_peer(**kv: str) -> dict:
    return {"namespaceSelector": labels(**kv)}


def keys(pods: Iterable[Pod]) -> list[str]:
    return [p.key for p in pods]


def expect(pods: Iterable[Pod], denied: Iterable[tuple[str, str]]) -> dict:
    """The full matrix: everything allowed except ``denied`` pairs."""
    ks = keys(pods)
    bad = set(denied)
    return {(s, d): (s, d) not in bad for s in ks for d in ks}


def deny_to(pods: Iterable[Pod], dst: str, allowed_from: Iterable[str] = ()) -> set:
    """Pairs into ``dst`` that are denied (all but itself and ``allowed_from``)."""
    ok = set(allowed_from) | {dst}
    return {(s, dst) for s in keys(pods) if s not in ok}


def deny_from(pods: Iterable[Pod], src: str, allowed_to: Iterable[str] = ()) -> set:
    """Pairs out of ``src`` that are denied (all but itself and ``allowed_to``)."""
    ok = set(allowed_to) | {src}
    return {(src, d) for d in keys(pods) if d not in ok}
