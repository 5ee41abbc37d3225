"""NetworkPolicy conformance: namespaces x, y, z with pods a, b, c (the upstream e2e layout)
serving TCP/UDP 80 and 81. Each test applies policies and compares the full observed
reachability matrix with the oracle's; a mismatch prints both."""

from __future__ import annotations

import time

import pytest

from testbed.testing import reachability
from testbed.testing.workloads import NETEXEC_IMAGE, http_port, service

NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
SETTLE_TIMEOUT = 15.0


def server_pod(ns: str, name: str, node: str) -> dict:
    containers = [{
        "name": f"serve-{port}", "image": NETEXEC_IMAGE,
        "args": ["netexec", f"--http-port={port}", f"--udp-port={port}"],
        "ports": [{"name": f"serve-{port}-tcp", "containerPort": port, "protocol": "TCP"},
                  {"name": f"serve-{port}-udp", "containerPort": port, "protocol": "UDP"}],
        "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1},
    } for port in (80, 81)]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": {"pod": name}},
            "spec": {"nodeName": node, "containers": containers}}


@pytest.fixture(scope="module")
def world(cluster):
    """The 3x3 pods, spread over the workers; namespaces labelled ns=<name>."""
    workers = cluster.workers()
    objs = [{"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": ns, "labels": {"ns": ns}}} for ns in NAMESPACES]
    i = 0
    for ns in NAMESPACES:
        for pod in PODS:
            objs.append(server_pod(ns, pod, workers[i % len(workers)]))
            i += 1
    cluster.apply(objs)
    for ns in NAMESPACES:
        cluster.wait_pods_ready(ns, list(PODS), timeout=120)
    pods = [cluster.pod(ns, p) for ns in NAMESPACES for p in PODS]
    yield pods
    clear_policies(cluster)


def clear_policies(cluster) -> None:
    items, _ = cluster.store.list("/registry/networkpolicies/")
    cluster.delete([kv.value for kv in items])


@pytest.fixture
def policies(cluster, world):
    """Applies a test's policies; removes them afterwards so tests stay independent."""
    clear_policies(cluster)
    yield lambda *objs: cluster.apply(list(objs))
    clear_policies(cluster)


def netpol(name: str, ns: str, spec: dict) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def check(cluster, world, port: int = 80, protocol: str = "TCP") -> None:
    """Observed == oracle for every pair (retried while the nodes converge)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        want = reachability.expected(cluster.store, list(NAMESPACES), port, protocol)
        got = reachability.observed(cluster, world, port, protocol)
        bad = reachability.mismatches(want, got)
        if not bad:
            print(f"\n{protocol}/{port} matrix\n" + reachability.render(want, got))
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{len(bad)} mismatches for {protocol}/{port}:\n"
                        + reachability.render(want, got))
        time.sleep(0.5)


def test_no_policies_everything_reachable(cluster, world, policies):
    check(cluster, world)
    want = reachability.expected(cluster.store, list(NAMESPACES), 80, "TCP")
    assert all(want.values())


def test_default_deny_ingress(cluster, world, policies):
    policies(netpol("deny", "x", {"podSelector": {}, "policyTypes": ["Ingress"]}))
    check(cluster, world)
    want = reachability.expected(cluster.store, list(NAMESPACES), 80, "TCP")
    assert not want[("y/a", "x/a")] and want[("x/a", "y/a")]  # the oracle itself is not vacuous


def test_default_deny_egress(cluster, world, policies):
    policies(netpol("deny", "x", {"podSelector": {}, "policyTypes": ["Egress"]}))
    check(cluster, world)


def test_default_deny_all(cluster, world, policies):
    policies(netpol("deny", "y", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}))
    check(cluster, world, 81, "UDP")


def test_allow_within_namespace(cluster, world, policies):
    policies(netpol("same-ns", "x", {"podSelector": {},
                                     "ingress": [{"from": [{"podSelector": {}}]}]}))
    check(cluster, world)


def test_pod_selector_match_labels_and_expressions(cluster, world, policies):
    policies(
        netpol("to-a", "x", {"podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [
            {"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]}),
        netpol("to-b", "x", {"podSelector": {"matchExpressions": [
            {"key": "pod", "operator": "In", "values": ["b"]}]},
            "ingress": [{"from": [{"podSelector": {"matchExpressions": [
                {"key": "pod", "operator": "NotIn", "values": ["a", "b"]}]}}]}]}),
    )
    check(cluster, world)


def test_namespace_selector(cluster, world, policies):
    policies(netpol("from-y", "x", {"podSelector": {}, "ingress": [
        {"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]}))
    check(cluster, world)


def test_namespace_and_pod_selector_anded_vs_ored(cluster, world, policies):
    policies(
        netpol("anded", "x", {"podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [
            {"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}},
                       "podSelector": {"matchLabels": {"pod": "b"}}}]}]}),
        netpol("ored", "x", {"podSelector": {"matchLabels": {"pod": "b"}}, "ingress": [
            {"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}},
                      {"podSelector": {"matchLabels": {"pod": "b"}}}]}]}),
    )
    check(cluster, world)
    want = reachability.expected(cluster.store, list(NAMESPACES), 80, "TCP")
    assert want[("y/b", "x/a")] and not want[("y/a", "x/a")] and not want[("x/b", "x/a")]
    assert want[("y/a", "x/b")] and want[("x/b", "x/b")] and not want[("z/a", "x/b")]


def test_named_ports(cluster, world, policies):
    policies(netpol("named", "x", {"podSelector": {}, "ingress": [
        {"ports": [{"port": "serve-81-tcp", "protocol": "TCP"}]}]}))
    check(cluster, world, 80)
    check(cluster, world, 81)


def test_end_port_range(cluster, world, policies):
    policies(netpol("range", "x", {"podSelector": {}, "ingress": [
        {"ports": [{"port": 81, "endPort": 90, "protocol": "TCP"}]}]}))
    check(cluster, world, 80)
    check(cluster, world, 81)


def test_ip_block_with_except_from_pods(cluster, world, policies):
    """ipBlock matches pod source IPs too in this testbed (see testbed.policy)."""
    pod_subnet = cluster.config["networking"]["podSubnet"]
    excluded = cluster.pod("y", "a").ip
    policies(netpol("cidr", "x", {"podSelector": {}, "ingress": [
        {"from": [{"ipBlock": {"cidr": pod_subnet, "except": [f"{excluded}/32"]}}]}]}))
    check(cluster, world)


def test_ip_block_from_the_external_host(cluster, world, policies):
    if cluster.config["networking"]["podNetwork"] != "flat":
        pytest.skip("needs podNetwork: flat (island mode gives the external host no route "
                    "to pod IPs, so its own IP never reaches a pod)")
    host = cluster.config["externalHosts"][0]["name"]
    host_ip = cluster.host_ip(host)
    policies(netpol("ext", "x", {"podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [
        {"from": [{"ipBlock": {"cidr": f"{host_ip}/32"}}]}]}),
             netpol("ext-b", "x", {"podSelector": {"matchLabels": {"pod": "b"}}, "ingress": [
                 {"from": [{"ipBlock": {"cidr": cluster.config["networking"]["nodeSubnet"],
                                        "except": [f"{host_ip}/32"]}}]}]}))
    targets = {p: cluster.pod("x", p) for p in PODS}

    def seen():
        return {p: cluster.probe_one(("host", host), t.ip, 80, timeout=0.8)["ok"]
                for p, t in targets.items()}

    deadline = time.monotonic() + SETTLE_TIMEOUT
    while seen() != {"a": True, "b": False, "c": True} and time.monotonic() < deadline:
        time.sleep(0.5)
    assert seen() == {"a": True, "b": False, "c": True}


def test_egress_allowing_only_dns(cluster, world, policies):
    policies(netpol("dns-only", "x", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [
        {"to": [{"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": "kube-system"}}}],
         "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]}))
    check(cluster, world)
    xa = cluster.pod("x", "a")
    out = cluster.exec_pod(xa, ["dig", "+short", "+time=2", "+tries=2",
                                "kube-dns.kube-system.svc.cluster.local"])
    assert out.stdout.strip() == cluster.service("kube-system", "kube-dns")["spec"]["clusterIP"]


def test_stacked_policies_are_a_union(cluster, world, policies):
    policies(
        netpol("from-x", "y", {"podSelector": {}, "ingress": [
            {"from": [{"namespaceSelector": {"matchLabels": {"ns": "x"}}}]}]}),
        netpol("from-z-a", "y", {"podSelector": {}, "ingress": [
            {"from": [{"namespaceSelector": {"matchLabels": {"ns": "z"}},
                       "podSelector": {"matchLabels": {"pod": "a"}}}]}]}),
    )
    check(cluster, world)


def test_policy_update_and_delete(cluster, world, policies):
    first = netpol("p", "x", {"podSelector": {}, "ingress": [
        {"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]})
    policies(first)
    check(cluster, world)
    policies(netpol("p", "x", {"podSelector": {}, "ingress": [
        {"from": [{"namespaceSelector": {"matchLabels": {"ns": "z"}}}]}]}))
    check(cluster, world)
    cluster.delete([first])
    check(cluster, world)


def test_policy_selecting_no_pods_changes_nothing(cluster, world, policies):
    policies(netpol("nobody", "x", {"podSelector": {"matchLabels": {"pod": "nobody"}},
                                    "policyTypes": ["Ingress", "Egress"]}))
    check(cluster, world)
    want = reachability.expected(cluster.store, list(NAMESPACES), 80, "TCP")
    assert all(want.values())


def test_service_with_a_denied_backend(cluster, world, policies):
    cluster.apply([service("svc-a", "x", {"pod": "a"}, [http_port(80, target=80)])])
    ip = cluster.wait_service("x", "svc-a", ready=1)["spec"]["clusterIP"]
    policies(netpol("deny-a", "x", {"podSelector": {"matchLabels": {"pod": "a"}},
                                    "policyTypes": ["Ingress"]}))
    check(cluster, world)
    src = cluster.pod("y", "b")
    assert not cluster.probe_one(src, ip, 80, timeout=1)["ok"]  # policy applies after DNAT
    cluster.delete([service("svc-a", "x", {"pod": "a"}, [])])
