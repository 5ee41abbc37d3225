"""Command-line overrides are validated like the file itself."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from testbed.topology import TopologyError, load_topology, load_topology_text, with_overrides

from .helpers import FIXTURES, REPO


def test_overrides_apply() -> None:
    lt = load_topology(REPO / "topologies" / "default.yaml")
    new = with_overrides(lt, name="mine", mode="nftables", node_subnet=IPv4Network("172.30.9.0/24"))
    assert new.topology.metadata.name == "mine"
    assert new.topology.spec.networking.kube_proxy_mode == "nftables"
    assert new.topology.spec.networking.node_subnet == IPv4Network("172.30.9.0/24")
    assert new.objects == lt.objects and new.source == lt.source
    # The original is untouched.
    assert lt.topology.metadata.name == "default"
    assert lt.topology.spec.networking.node_subnet is None


def test_no_overrides_is_identity() -> None:
    lt = load_topology(FIXTURES / "full.yaml")
    same = with_overrides(lt)
    assert same.topology == lt.topology
    assert same.cni_conflist_path == lt.cni_conflist_path
    assert same.cni_bin_dir == lt.cni_bin_dir


def test_bad_mode_names_flag() -> None:
    lt = load_topology(REPO / "topologies" / "default.yaml")
    with pytest.raises(TopologyError) as info:
        with_overrides(lt, mode="iptabels")
    assert str(info.value) == (
        'command line: --mode: "iptabels" is not a mode; '
        "expected one of iptables, nftables, ipvs, ebpf"
    )
    (problem,) = info.value.problems
    assert (problem.field, problem.line) == ("--mode", None)


def test_bad_name_names_flag() -> None:
    lt = load_topology(REPO / "topologies" / "default.yaml")
    with pytest.raises(TopologyError, match="command line: --name: "):
        with_overrides(lt, name="Not_OK")


def test_overlapping_node_subnet_names_flag() -> None:
    lt = load_topology(REPO / "topologies" / "default.yaml")
    with pytest.raises(TopologyError) as info:
        with_overrides(lt, node_subnet=IPv4Network("10.244.3.0/24"))
    assert str(info.value).startswith("command line: --node-subnet: 10.244.3.0/24 overlaps")


def test_node_subnet_conflicting_with_file_pool_keeps_file_line() -> None:
    text = (
        "spec:\n  networking:\n    nodeSubnet: 172.30.0.0/24\n"
        "    loadBalancerPool: 172.30.0.240/28\n"
        "  nodes:\n    - {name: cp, role: control-plane}\n"
    )
    lt = load_topology_text(text, "t.yaml")
    with pytest.raises(TopologyError) as info:
        with_overrides(lt, node_subnet=IPv4Network("172.30.1.0/24"))
    assert str(info.value) == (
        "t.yaml:4: spec.networking.loadBalancerPool: 172.30.0.240/28 must lie inside "
        "nodeSubnet 172.30.1.0/24"
    )


def test_overrides_on_kind_config_use_kind_paths() -> None:
    lt = load_topology(FIXTURES / "kind.yaml")
    new = with_overrides(lt, mode="iptables")
    assert new.topology.spec.networking.kube_proxy_mode == "iptables"
    with pytest.raises(TopologyError, match="overlaps"):
        with_overrides(lt, node_subnet=IPv4Network("10.50.0.0/24"))
