"""Loading valid topologies: defaults, fixtures and the shipped topologies."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from testbed.topology import (
    CniConfig,
    LoadedTopology,
    Networking,
    Node,
    Problem,
    Spec,
    Topology,
    TopologyError,
    load_topology,
    load_topology_text,
)

from .helpers import FIXTURES, REPO


def test_minimal_gets_defaults() -> None:
    lt = load_topology(FIXTURES / "minimal.yaml")
    topo = lt.topology
    assert topo.api_version == "testbed.dev/v1alpha1"
    assert topo.kind == "Topology"
    assert topo.metadata.name == "default"
    net = topo.spec.networking
    assert net.node_subnet is None
    assert net.pod_subnet == IPv4Network("10.244.0.0/16")
    assert net.service_subnet == IPv4Network("10.96.0.0/16")
    assert (net.kube_proxy_mode, net.routing, net.pod_network) == ("iptables", "routed", "island")
    assert net.dns_domain == "cluster.local"
    assert net.mtu == 1500
    assert net.load_balancer_pool is None and net.dns_upstream is None
    assert net.cni == CniConfig(type="testbed")
    assert topo.spec.nodes == [Node(name="cp", role="control-plane")]
    assert topo.spec.external_hosts == [] and topo.spec.manifests == []
    assert lt.objects == []
    assert lt.source == (FIXTURES / "minimal.yaml").absolute()
    assert lt.cni_conflist_path is None and lt.cni_bin_dir is None


def test_full_fixture() -> None:
    lt = load_topology(FIXTURES / "full.yaml")
    net = lt.topology.spec.networking
    assert net.node_subnet == IPv4Network("172.30.5.0/24")
    assert net.kube_proxy_mode == "nftables"
    assert net.routing == "vxlan" and net.pod_network == "flat"
    assert net.mtu == 9000 and net.dns_domain == "example.test"
    assert net.load_balancer_pool == IPv4Network("172.30.5.240/28")
    assert net.dns_upstream == IPv4Address("192.0.2.53")
    assert net.cni.type == "custom" and net.cni.bin_dir == "cni/bin"
    assert lt.cni_conflist_path == (FIXTURES / "cni/10-test.conflist").absolute()
    assert lt.cni_bin_dir == (FIXTURES / "cni/bin").absolute()
    assert lt.cni_bin_dir.is_absolute()
    nodes = lt.topology.spec.nodes
    assert [n.role for n in nodes] == ["control-plane", "worker", "worker"]
    assert nodes[1].labels == {"topology.kubernetes.io/zone": "a", "tier": ""}
    assert [h.name for h in lt.topology.spec.external_hosts] == ["client", "server"]
    # File manifests expanded in place, inline kept, Lists flattened, empty docs skipped.
    names = [o["metadata"]["name"] for o in lt.objects]
    assert names == ["first", "second", "third", "inline-ns", "last"]
    # Dates stay strings, as kubectl would send them.
    assert lt.objects[0]["data"]["created"] == "2024-01-01"


def test_text_loading_resolves_against_base_dir() -> None:
    text = (FIXTURES / "full.yaml").read_text()
    lt = load_topology_text(text, "full", base_dir=FIXTURES)
    assert lt.source is None
    assert len(lt.objects) == 5


@pytest.mark.parametrize("name", ["default", "vxlan"])
def test_shipped_topologies(name: str) -> None:
    lt = load_topology(REPO / "topologies" / f"{name}.yaml")
    topo = lt.topology
    assert topo.metadata.name == name
    assert topo.spec.networking.node_subnet is None
    assert topo.spec.networking.routing == ("routed" if name == "default" else "vxlan")
    assert topo.spec.networking.kube_proxy_mode == "iptables"
    assert [(n.name, n.role) for n in topo.spec.nodes] == [
        ("control-plane", "control-plane"),
        ("worker1", "worker"),
        ("worker2", "worker"),
    ]
    assert topo.spec.nodes[2].labels == {"zone": "b"}
    assert [h.name for h in topo.spec.external_hosts] == ["client"]
    kinds = [(o["kind"], o["metadata"]["name"]) for o in lt.objects]
    assert kinds == [("Deployment", "netexec"), ("Pod", "client")]
    deployment, pod = lt.objects
    assert deployment["spec"]["replicas"] == 3
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.k8s.io/e2e-test-images/agnhost:2.47"
    assert container["args"] == ["netexec", "--http-port=8080", "--udp-port=8081"]
    assert {(p["containerPort"], p["protocol"]) for p in container["ports"]} == {
        (8080, "TCP"),
        (8081, "UDP"),
    }
    assert container["readinessProbe"]["periodSeconds"] == 1
    assert pod["metadata"]["labels"] == {"app": "client"}


def test_shipped_kind_cluster() -> None:
    lt = load_topology(REPO / "topologies" / "kind-cluster.yaml")
    assert [n.name for n in lt.topology.spec.nodes] == ["control-plane", "worker", "worker2"]


def test_models_construct_from_python() -> None:
    topo = Topology(spec=Spec(nodes=[Node(name="cp", role="control-plane")]))
    assert topo.spec.networking == Networking()
    net = Networking(pod_subnet=IPv4Network("10.1.0.0/16"), kube_proxy_mode="ipvs")
    assert net.pod_subnet == IPv4Network("10.1.0.0/16")
    with pytest.raises(Exception):  # noqa: B017 - frozen models raise pydantic's own error
        topo.metadata.name = "x"  # type: ignore[misc]


def test_loaded_topology_is_frozen() -> None:
    lt = load_topology(FIXTURES / "minimal.yaml")
    assert isinstance(lt, LoadedTopology)
    with pytest.raises(AttributeError):
        lt.objects = []  # type: ignore[misc]


def test_problem_format() -> None:
    assert str(Problem("a.yaml", 3, "spec.x", "bad")) == "a.yaml:3: spec.x: bad"
    assert str(Problem("a.yaml", None, "spec.x", "bad")) == "a.yaml: spec.x: bad"
    assert str(Problem("a.yaml", 1, "", "bad")) == "a.yaml:1: bad"
    err = TopologyError([Problem("a", 1, "f", "m"), Problem("b", 2, "g", "n")])
    assert str(err) == "a:1: f: m\nb:2: g: n"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TopologyError) as info:
        load_topology(tmp_path / "nope.yaml")
    assert "file not found" in str(info.value)


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.yaml"
    path.write_bytes(b"\xff\xfe\x00\x01garbage\x80")
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    assert "not UTF-8" in str(info.value)


def test_directory_is_not_a_topology(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="not a regular file"):
        load_topology(tmp_path)
