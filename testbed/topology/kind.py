"""Reading a plain kind ``Cluster`` config as a topology.

Only what the testbed can honour is accepted: options that would silently
change behaviour (mounts, port mappings, kubeadm patches, feature gates, IPv6,
``kubeProxyMode: none``) are rejected by name; options that merely do not
apply here (node image, API server address/port, disabling kind's CNI) are
ignored.
"""

from __future__ import annotations

from typing import Any

from .errors import FieldPath, Finding
from .model import API_VERSION, KIND

KIND_API_VERSION = "kind.x-k8s.io/v1alpha4"
DEFAULT_CLUSTER_NAME = "kind"

_TOP_MAPPED = {"kind", "apiVersion", "name", "networking", "nodes"}
_TOP_UNSUPPORTED = {
    "featureGates",
    "runtimeConfig",
    "kubeadmConfigPatches",
    "kubeadmConfigPatchesJSON6902",
    "containerdConfigPatches",
    "containerdConfigPatchesJSON6902",
}
_NET_MAPPED = {"podSubnet", "serviceSubnet", "kubeProxyMode"}
_NET_IGNORED = {"disableDefaultCNI", "apiServerAddress", "apiServerPort"}
_NET_UNSUPPORTED = {"dnsSearch"}
_NODE_MAPPED = {"role", "labels"}
_NODE_IGNORED = {"image"}
_NODE_UNSUPPORTED = {
    "extraMounts",
    "extraPortMappings",
    "kubeadmConfigPatches",
    "kubeadmConfigPatchesJSON6902",
}
_UNSUPPORTED_MSG = "not supported by the testbed (kind option it cannot honour); remove it"


def is_kind_config(data: dict[Any, Any]) -> bool:
    """True for a kind ``Cluster`` config rather than a ``Topology``."""
    api = data.get("apiVersion")
    return data.get("kind") == "Cluster" or (isinstance(api, str) and api.startswith("kind.x-k8s"))


def kind_path(path: FieldPath) -> FieldPath:
    """Where a path of the mapped topology came from in the kind config."""
    if path[:2] == ("metadata", "name"):
        return ("name",)
    if path[:1] == ("metadata",):
        return ()
    if path[:1] == ("spec",):
        return path[1:]
    return path


def kind_to_topology(data: dict[Any, Any]) -> tuple[dict[str, Any], list[Finding]]:
    """Map a kind config to topology data, plus findings (kind-config paths).

    The returned data still goes through the normal schema validation, whose
    findings must be mapped back with :func:`kind_path`.
    """
    findings: list[Finding] = []
    if data.get("apiVersion") != KIND_API_VERSION:
        got = data.get("apiVersion")
        what = "missing" if got is None else "not supported"
        findings.append((("apiVersion",), f"{what}; expected {KIND_API_VERSION}"))
    if data.get("kind") != "Cluster":
        findings.append((("kind",), "expected Cluster for a kind config"))
    findings += _unknown_fields(data, (), _TOP_MAPPED, set(), _TOP_UNSUPPORTED)

    networking: Any = {}
    raw_net = data.get("networking")
    if isinstance(raw_net, dict):
        findings += _unknown_fields(
            raw_net, ("networking",), _NET_MAPPED | {"ipFamily"}, _NET_IGNORED, _NET_UNSUPPORTED
        )
        networking = {k: v for k, v in raw_net.items() if k in _NET_MAPPED}
        family = raw_net.get("ipFamily", "ipv4")
        if family != "ipv4":
            msg = "only ipv4 is supported; the testbed network is IPv4-only"
            findings.append((("networking", "ipFamily"), msg))
        if raw_net.get("kubeProxyMode") == "none":
            msg = (
                '"none" is not supported (the testbed always runs a service proxy); '
                "expected one of iptables, nftables, ipvs"
            )
            findings.append((("networking", "kubeProxyMode"), msg))
            networking.pop("kubeProxyMode")
    elif raw_net is not None:
        networking = raw_net  # let the schema report the wrong type

    nodes: Any = data.get("nodes")
    if nodes is None:
        nodes = [{}]  # kind's default: a single control-plane node
    if isinstance(nodes, list):
        mapped, node_findings = _nodes(nodes)
        findings += node_findings
        nodes = mapped

    name = data.get("name")
    topology = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": DEFAULT_CLUSTER_NAME if name is None else name},
        "spec": {"networking": networking, "nodes": nodes},
    }
    return topology, findings


def _nodes(nodes: list[Any]) -> tuple[list[Any], list[Finding]]:
    findings: list[Finding] = []
    counts: dict[str, int] = {}
    mapped: list[Any] = []
    for index, node in enumerate(nodes):
        if not isinstance(node, dict):
            mapped.append(node)
            continue
        path: FieldPath = ("nodes", index)
        findings += _unknown_fields(node, path, _NODE_MAPPED, _NODE_IGNORED, _NODE_UNSUPPORTED)
        out = {k: v for k, v in node.items() if k in _NODE_MAPPED}
        role = out.setdefault("role", "control-plane")  # kind's default, unlike ours
        # kind's container naming: control-plane, control-plane2, worker, worker2, ...
        # (a malformed role is reported by the schema; "node" keeps its name valid).
        base = role if isinstance(role, str) and role in ("control-plane", "worker") else "node"
        counts[base] = counts.get(base, 0) + 1
        out["name"] = base if counts[base] == 1 else f"{base}{counts[base]}"
        mapped.append(out)
    return mapped, findings


def _unknown_fields(
    data: dict[Any, Any],
    path: FieldPath,
    mapped: set[str],
    ignored: set[str],
    unsupported: set[str],
) -> list[Finding]:
    findings: list[Finding] = []
    for key, value in data.items():
        if key in mapped or key in ignored:
            continue
        if key in unsupported:
            # An empty value asks for nothing, so there is nothing to refuse.
            if value not in (None, "", [], {}):
                findings.append(((*path, key), _UNSUPPORTED_MSG))
            continue
        findings.append(((*path, key), "unknown field"))
    return findings
