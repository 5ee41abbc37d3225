"""Pure planning helpers: pod CIDRs, node addresses, free subnets, service IPs."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Network

import pytest

from testbed.topology import (
    Networking,
    Node,
    Spec,
    Topology,
    TopologyError,
    address_plan,
    control_plane,
    first_service_ip,
    load_topology,
    node_pod_cidrs,
    pick_free_subnet,
    service_dns_ip,
)
from testbed.topology.model import ExternalHost

from .helpers import REPO

net = IPv4Network
addr = IPv4Address


def make(nodes: int = 3, hosts: int = 1, **networking: object) -> Topology:
    names = [Node(name="cp", role="control-plane")]
    names += [Node(name=f"w{i}") for i in range(1, nodes)]
    return Topology(
        spec=Spec(
            networking=Networking(**networking),
            nodes=names,
            external_hosts=[ExternalHost(name=f"h{i}") for i in range(hosts)],
        )
    )


@pytest.fixture
def default() -> Topology:
    return load_topology(REPO / "topologies" / "default.yaml").topology


def test_node_pod_cidrs(default: Topology) -> None:
    assert node_pod_cidrs(default) == {
        "control-plane": net("10.244.0.0/24"),
        "worker1": net("10.244.1.0/24"),
        "worker2": net("10.244.2.0/24"),
    }


def test_node_pod_cidrs_too_small() -> None:
    with pytest.raises(TopologyError):
        node_pod_cidrs(make(nodes=3, pod_subnet=net("10.1.0.0/23")))


def test_address_plan_default(default: Topology) -> None:
    plan = address_plan(default, net("172.30.0.0/24"))
    assert plan.gateway == addr("172.30.0.1")
    assert plan.nodes == {
        "control-plane": addr("172.30.0.2"),
        "worker1": addr("172.30.0.3"),
        "worker2": addr("172.30.0.4"),
    }
    assert plan.hosts == {"client": addr("172.30.0.5")}
    assert plan.docker_ip_range is None
    assert list(plan.nodes) == ["control-plane", "worker1", "worker2"]


def test_address_plan_with_pool_at_end() -> None:
    topo = make(node_subnet=net("172.30.0.0/24"), load_balancer_pool=net("172.30.0.240/28"))
    plan = address_plan(topo, net("172.30.0.0/24"))
    assert plan.docker_ip_range == net("172.30.0.0/25")
    assert not plan.docker_ip_range.overlaps(net("172.30.0.240/28"))
    assert plan.load_balancer_pool == net("172.30.0.240/28")


def test_address_plan_skips_pool() -> None:
    pool = net("172.30.0.4/30")
    topo = make(nodes=3, hosts=2, node_subnet=net("172.30.0.0/28"), load_balancer_pool=pool)
    plan = address_plan(topo, net("172.30.0.0/28"))
    assert list(plan.nodes.values()) == [addr("172.30.0.2"), addr("172.30.0.3"), addr("172.30.0.8")]
    assert list(plan.hosts.values()) == [addr("172.30.0.9"), addr("172.30.0.10")]
    assert plan.docker_ip_range == net("172.30.0.8/29")
    everything = [plan.gateway, *plan.nodes.values(), *plan.hosts.values()]
    assert not any(a in pool for a in everything)
    assert len(set(everything)) == len(everything)


def test_address_plan_too_small() -> None:
    with pytest.raises(TopologyError, match="cannot hold 5 addresses"):
        address_plan(make(nodes=3, hosts=1), net("172.30.0.0/30"))
    with pytest.raises(TopologyError):
        address_plan(make(), net("172.30.0.0/31"))


def test_address_plan_pool_outside_subnet() -> None:
    topo = make(load_balancer_pool=net("10.0.0.0/28"), node_subnet=None)
    with pytest.raises(TopologyError, match="is not inside"):
        address_plan(topo, net("172.30.0.0/24"))


def test_address_plan_large_subnet_is_fast() -> None:
    plan = address_plan(make(), net("10.0.0.0/8"))
    assert plan.nodes["cp"] == addr("10.0.0.2")


def test_service_ips(default: Topology) -> None:
    assert first_service_ip(default) == addr("10.96.0.1")
    assert service_dns_ip(default) == addr("10.96.0.10")
    custom = make(service_subnet=net("10.100.64.0/20"))
    assert service_dns_ip(custom) == addr("10.100.64.10")


def test_control_plane(default: Topology) -> None:
    assert control_plane(default).name == "control-plane"
    no_cp = Topology(spec=Spec(nodes=[Node(name="a")]))
    with pytest.raises(TopologyError, match="exactly one"):
        control_plane(no_cp)


@pytest.mark.parametrize(
    ("used", "expected"),
    [
        ([], "172.30.0.0/24"),
        ([net("172.30.0.0/24"), net("172.30.1.0/24")], "172.30.2.0/24"),
        ([net("172.30.0.0/16")], "172.31.0.0/24"),
        ([net("172.30.0.128/25")], "172.30.1.0/24"),
        ([net("172.30.0.0/15")], "10.200.0.0/24"),
        ([net("172.16.0.0/12"), net("10.200.0.0/24")], "10.200.1.0/24"),
        ([net("172.30.0.0/15"), IPv6Network("fd00::/8")], "10.200.0.0/24"),
    ],
)
def test_pick_free_subnet(used: list[IPv4Network], expected: str) -> None:
    assert pick_free_subnet(used) == net(expected)


def test_pick_free_subnet_exhausted() -> None:
    with pytest.raises(TopologyError, match="no free /24"):
        pick_free_subnet([net("172.30.0.0/15"), net("10.200.0.0/16")])
    with pytest.raises(TopologyError):
        pick_free_subnet([net("0.0.0.0/0")])


def test_pick_free_subnet_start_and_size() -> None:
    assert pick_free_subnet([], start=net("172.30.7.0/24")) == net("172.30.7.0/24")
    assert pick_free_subnet([net("172.30.7.0/24")], start=net("172.30.7.0/24")) == net(
        "172.30.8.0/24"
    )
    # A start in the fallback block skips the first block entirely.
    assert pick_free_subnet([], start=net("10.200.5.0/24")) == net("10.200.5.0/24")
    # A start outside both blocks is tried first, then the usual search.
    assert pick_free_subnet([], start=net("192.168.50.0/24")) == net("192.168.50.0/24")
    assert pick_free_subnet([net("192.168.0.0/16")], start=net("192.168.50.0/24")) == net(
        "172.30.0.0/24"
    )
    assert pick_free_subnet([net("172.30.0.0/28")], size_prefix=28) == net("172.30.0.16/28")
    with pytest.raises(TopologyError):
        pick_free_subnet([], size_prefix=8)
