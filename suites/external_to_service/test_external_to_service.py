"""External-to-service conformance: NodePort on every node and LoadBalancer IPs from the
external host, with externalTrafficPolicy Cluster (SNAT, all endpoints) and Local (client IP
kept, only nodes with local endpoints answer)."""

from __future__ import annotations

import pytest

from testbed.testing.cluster import eventually
from testbed.testing.workloads import http_port, netexec_deployment, netexec_pod, service


@pytest.fixture(scope="module")
def host(cluster):
    name = cluster.config["externalHosts"][0]["name"]
    return ("host", name), cluster.host_ip(name)


@pytest.fixture(scope="module")
def backends(cluster, module_namespace):
    """3 netexec replicas spread over the workers."""
    cluster.apply([netexec_deployment("ext", module_namespace, 3)])
    return cluster.wait_pods_ready(module_namespace, labels={"app": "ext"}, count=3)


def _svc(cluster, ns, name, policy, type_="NodePort"):
    cluster.apply([service(name, ns, {"app": "ext"}, [http_port(80)], type=type_,
                           externalTrafficPolicy=policy)])
    return cluster.wait_service(ns, name, ready=3)


@pytest.mark.parametrize("policy", ["Cluster", "Local"])
def test_nodeport_on_every_node(cluster, module_namespace, backends, host, policy):
    svc = _svc(cluster, module_namespace, f"np-{policy.lower()}", policy)
    node_port = svc["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767
    source, host_ip = host
    names = {p.name for p in backends}
    for node in cluster.nodes:
        local = {p.name for p in backends if p.node == node["name"]}

        def check(node=node, local=local):
            seen = cluster.answers(source, node["ip"], node_port, n=20, timeout=1)
            if policy == "Cluster":
                assert set(seen) == names, (node["name"], seen)
            elif local:
                assert set(seen) == local, (node["name"], seen)
            else:
                assert set(seen) == {None}, (node["name"], seen)

        eventually(check, timeout=30)
        if policy == "Local" and not local:
            continue
        ips = {r.rsplit(":", 1)[0] for r in cluster.answers(
            source, node["ip"], node_port, n=5, request="clientip")}
        if policy == "Cluster":
            assert host_ip not in ips, f"{node['name']}: source was not NATed: {ips}"
        else:
            assert ips == {host_ip}, f"{node['name']}: client IP not preserved: {ips}"


@pytest.mark.parametrize("policy", ["Cluster", "Local"])
def test_load_balancer_ip(cluster, module_namespace, backends, host, policy):
    svc = _svc(cluster, module_namespace, f"lb-{policy.lower()}", policy, "LoadBalancer")
    lb_ip = svc["status"]["loadBalancer"]["ingress"][0]["ip"]
    source, host_ip = host

    def reachable():
        seen = cluster.answers(source, lb_ip, 80, n=20, timeout=1)
        assert None not in seen, seen
        if policy == "Cluster":
            assert set(seen) == {p.name for p in backends}
        return seen

    seen = eventually(reachable, timeout=30)
    if policy == "Local":
        # the announcing node has local endpoints, and only those answer
        nodes = {p.node for p in backends if p.name in set(seen)}
        assert len(nodes) == 1, nodes
        ips = {r.rsplit(":", 1)[0] for r in cluster.answers(source, lb_ip, 80, n=5,
                                                               request="clientip")}
        assert ips == {host_ip}


def test_load_balancer_fails_over_when_its_node_goes_away(cluster, module_namespace, host):
    """The announcing node leaves the network; another node takes the IP over."""
    ns = module_namespace
    workers = cluster.workers()
    cluster.apply([netexec_pod(f"fo-{i}", ns, w, labels={"app": "fo"})
                   for i, w in enumerate(workers)])
    cluster.wait_pods_ready(ns, [f"fo-{i}" for i in range(len(workers))])
    cluster.apply([service("fo", ns, {"app": "fo"}, [http_port(80)], type="LoadBalancer")])
    lb_ip = cluster.wait_service(ns, "fo", ready=len(workers))["status"]["loadBalancer"][
        "ingress"][0]["ip"]
    source, _ = host
    eventually(lambda: _assert_reply(cluster.probe_one(source, lb_ip, 80)), timeout=30)
    announcer = cluster.lb_announcer(lb_ip)
    assert announcer is not None
    cluster.disconnect_node(announcer)
    try:
        def taken_over():
            _assert_reply(cluster.probe_one(source, lb_ip, 80, timeout=1))
            now = cluster.lb_announcer(lb_ip)
            assert now not in (None, announcer), now

        eventually(taken_over, timeout=60)
    finally:
        cluster.reconnect_node(announcer)


def _assert_reply(result: dict) -> dict:
    assert result["ok"], result
    return result
