"""Reading plain kind Cluster configs."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from testbed.topology import TopologyError, load_topology, load_topology_text

from .helpers import FIXTURES, problems_of

KIND_HEAD = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"


def test_kind_fixture_is_mapped() -> None:
    lt = load_topology(FIXTURES / "kind.yaml")
    topo = lt.topology
    assert topo.kind == "Topology"
    assert topo.metadata.name == "mycluster"
    net = topo.spec.networking
    assert net.pod_subnet == IPv4Network("10.50.0.0/16")
    assert net.service_subnet == IPv4Network("10.51.0.0/16")
    assert net.kube_proxy_mode == "ipvs"
    nodes = topo.spec.nodes
    assert [(n.name, n.role) for n in nodes] == [
        ("control-plane", "control-plane"),
        ("worker", "worker"),
        ("worker2", "worker"),
        ("worker3", "worker"),
    ]
    assert nodes[2].labels == {"zone": "b"}
    assert topo.spec.external_hosts == [] and lt.objects == []


def test_kind_defaults() -> None:
    topo = load_topology_text(KIND_HEAD).topology
    assert topo.metadata.name == "kind"
    # kind's default is a single node, and a node's default role is control-plane.
    assert [(n.name, n.role) for n in topo.spec.nodes] == [("control-plane", "control-plane")]
    assert topo.spec.networking.pod_subnet == IPv4Network("10.244.0.0/16")
    assert topo.spec.networking.kube_proxy_mode == "iptables"


def test_kind_empty_unsupported_fields_are_harmless() -> None:
    text = KIND_HEAD + "featureGates: {}\nnodes:\n  - role: control-plane\n    extraMounts: []\n"
    assert len(load_topology_text(text).topology.spec.nodes) == 1


def test_kind_bad_fixture() -> None:
    with pytest.raises(TopologyError) as info:
        load_topology(FIXTURES / "kind_bad.yaml")
    shown = str(FIXTURES / "kind_bad.yaml")
    lines = [str(p).removeprefix(shown) for p in info.value.problems]
    assert lines == [
        ":3: featureGates: not supported by the testbed (kind option it cannot honour); remove it",
        ":6: networking.ipFamily: only ipv4 is supported; the testbed network is IPv4-only",
        ':7: networking.kubeProxyMode: "none" is not supported (the testbed always runs a '
        "service proxy); expected one of iptables, nftables, ipvs",
        ":10: nodes[0].extraPortMappings: not supported by the testbed (kind option it cannot "
        "honour); remove it",
        ':13: nodes[1].role: exactly one node must have role control-plane, and "control-plane" '
        "already has it",
        ":15: nodes[2].kubeadmConfigPatches: not supported by the testbed (kind option it cannot "
        "honour); remove it",
    ]


@pytest.mark.parametrize(
    ("body", "line", "field", "message"),
    [
        ("kubeadmConfigPatches: [x]\n", 3, "kubeadmConfigPatches", "not supported"),
        ("runtimeConfig: {a: b}\n", 3, "runtimeConfig", "not supported"),
        ("containerdConfigPatches: [x]\n", 3, "containerdConfigPatches", "not supported"),
        ("bogus: 1\n", 3, "bogus", "unknown field"),
        ("networking:\n  dnsSearch: [a]\n", 4, "networking.dnsSearch", "not supported"),
        ("networking:\n  bogus: 1\n", 4, "networking.bogus", "unknown field"),
        ("networking:\n  ipFamily: ipv6\n", 4, "networking.ipFamily", "only ipv4"),
        ("networking:\n  kubeProxyMode: iptabels\n", 4, "networking.kubeProxyMode", "not a mode"),
        ("networking:\n  podSubnet: nope\n", 4, "networking.podSubnet", "is not a CIDR"),
        ("networking: 5\n", 3, "networking", "expected a mapping"),
        ("name: Bad_Name\n", 3, "name", "is not a valid name"),
        ("nodes:\n  - role: worker\n", 3, "nodes", "exactly one node must have role"),
        ("nodes:\n  - role: master\n", 4, "nodes[0].role", '"master" is not a role'),
        ("nodes:\n  - {role: control-plane, bogus: 1}\n", 4, "nodes[0].bogus", "unknown field"),
        ("nodes:\n  - {labels: {zone: 1}}\n", 4, "nodes[0].labels.zone", "expected a string"),
        ("nodes: 3\n", 3, "nodes", "expected a list"),
        ("nodes:\n  - 3\n", 4, "nodes[0]", "expected a mapping"),
        (
            "nodes:\n  - role: control-plane\n    extraMounts:\n      - hostPath: /x\n",
            5,
            "nodes[0].extraMounts",
            "not supported",
        ),
    ],
)
def test_kind_rejected(body: str, line: int, field: str, message: str) -> None:
    problems = problems_of(KIND_HEAD + body)
    where = f"t.yaml:{line}: {field}: "
    assert any(p.startswith(where) and message in p for p in problems), problems


def test_kind_wrong_api_version() -> None:
    problems = problems_of("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha3\n")
    assert problems == ["t.yaml:2: apiVersion: not supported; expected kind.x-k8s.io/v1alpha4"]


def test_kind_api_version_without_kind() -> None:
    problems = problems_of("apiVersion: kind.x-k8s.io/v1alpha4\n")
    assert problems == ["t.yaml:1: kind: expected Cluster for a kind config"]
