"""Pod-to-pod conformance: every pod reaches every other pod and node by its own IP, unNATed."""

from __future__ import annotations

import re
import time

import pytest

from testbed.testing.workloads import netexec_pod


@pytest.fixture(scope="module")
def pods(cluster, module_namespace):
    """a and b on worker1, c on worker2, h a hostNetwork netexec on worker2 (port 9090)."""
    w1, w2 = cluster.workers()[:2]
    ns = module_namespace
    cluster.apply([
        netexec_pod("a", ns, w1), netexec_pod("b", ns, w1), netexec_pod("c", ns, w2),
        netexec_pod("h", ns, w2, host_network=True, http_port=9090, udp_port=9091),
    ])
    ready = cluster.wait_pods_ready(ns, ["a", "b", "c", "h"], timeout=90)
    return {p.name: p for p in ready}


def test_pods_get_distinct_ips_from_their_node_cidr(cluster, pods):
    cidrs = {n["name"]: n["podCIDR"] for n in cluster.nodes}
    ips = [pods[n].ip for n in "abc"]
    assert len(set(ips)) == 3
    for name in "abc":
        prefix = cidrs[pods[name].node].rsplit(".", 1)[0] + "."
        assert pods[name].ip.startswith(prefix), (name, pods[name].ip, cidrs[pods[name].node])
    assert pods["h"].ip == cluster.node_ip(pods["h"].node)


@pytest.mark.parametrize("protocol,port", [("tcp", 8080), ("udp", 8081)])
@pytest.mark.parametrize("dst", ["b", "c"], ids=["same-node", "cross-node"])
def test_pod_to_pod(cluster, pods, dst, protocol, port):
    result = cluster.probe_one(pods["a"], pods[dst].ip, port, protocol, "hostname")
    assert result == {"ok": True, "reply": dst}


@pytest.mark.parametrize("protocol", ["http", "udp"])
def test_netexec_dial_matrix(cluster, pods, protocol):
    """Upstream's way: ask netexec in one pod to dial the others and report who answered."""
    port = 8080 if protocol == "http" else 8081
    for src in "abc":
        for dst in "abc":
            url = (f"http://127.0.0.1:8080/dial?request=hostname&protocol={protocol}"
                   f"&host={pods[dst].ip}&port={port}&tries=1")
            out = cluster.exec_pod(pods[src], ["curl", "-sS", "--max-time", "10", url]).check()
            assert f'"responses":["{dst}"]' in out.stdout.replace(" ", ""), (src, dst, out.stdout)


@pytest.mark.parametrize("dst", ["b", "c"], ids=["same-node", "cross-node"])
def test_peer_sees_source_pod_ip(cluster, pods, dst):
    result = cluster.probe_one(pods["a"], pods[dst].ip, 8080, "tcp", "clientip")
    assert result["ok"], result
    assert result["reply"].rsplit(":", 1)[0] == pods["a"].ip


def test_node_to_pod(cluster, pods):
    for node in [n["name"] for n in cluster.nodes]:
        results = cluster.probe(("node", node), [
            {"host": pods[p].ip, "port": 8080, "request": "hostname", "timeout": 2}
            for p in "abc"])
        assert [r.get("reply") for r in results] == ["a", "b", "c"], (node, results)


def test_pod_to_node(cluster, pods):
    """Pods reach a hostNetwork server on another node and on their own node's peer."""
    h = pods["h"]
    for src in "abc":
        result = cluster.probe_one(pods[src], h.ip, 9090, "tcp", "hostname")
        assert result["ok"] and result["reply"] == h.node, (src, result)


def test_hostnetwork_pod_shares_node_namespace(cluster, pods):
    h = pods["h"]
    out = cluster.exec_node(h.node, ["ss", "-ltnp"]).check().stdout
    assert re.search(r":9090\b", out), out


def test_large_http_body_crosses_nodes(cluster, pods):
    body_size = 64 * 1024
    cmd = ["sh", "-c", f"head -c {body_size} /dev/zero | tr '\\0' x | curl -sS --max-time 10 "
           f"--data-binary @- http://{pods['c'].ip}:8080/echo | wc -c"]
    out = cluster.exec_pod(pods["a"], cmd).check()
    assert int(out.stdout.strip()) == body_size


def test_large_udp_datagram_crosses_nodes(cluster, pods):
    message = "x" * (1472 - len("echo "))
    result = cluster.probe_one(pods["a"], pods["c"].ip, 8081, "udp", f"echo {message}")
    assert result == {"ok": True, "reply": message}


@pytest.fixture(scope="module")
def external_server(cluster):
    """netexec on the external host, started by PID and stopped by PID."""
    host = cluster.config["externalHosts"][0]["name"]
    start = ("nohup python3 -m testbed.workloads.netexec --http-port=8090 --udp-port=-1 "
             ">/tmp/netexec-ext.log 2>&1 & echo $!")
    pid = cluster.exec_host(host, ["sh", "-c", start]).check().stdout.strip()
    ip = cluster.host_ip(host)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if cluster.probe_one(("host", host), ip, 8090, request="hostname")["ok"]:
            break
        time.sleep(0.1)
    yield ip
    cluster.exec_host(host, ["kill", pid])


def test_pod_to_external_host(cluster, pods, external_server):
    """Island: egress is masqueraded to the node IP; flat: the host sees the pod IP."""
    flat = cluster.config["networking"]["podNetwork"] == "flat"
    for src in "ac":
        result = cluster.probe_one(pods[src], external_server, 8090, "tcp", "clientip")
        assert result["ok"], result
        seen = result["reply"].rsplit(":", 1)[0]
        expected = pods[src].ip if flat else cluster.node_ip(pods[src].node)
        assert seen == expected, (src, seen, expected)


def _agent_pid(cluster, node: str) -> str:
    return cluster.exec_node(node, ["cat", "/run/testbed/agent.pid"]).check().stdout.strip()


def test_pods_keep_ip_across_agent_restart(cluster, pods):
    node = pods["a"].node
    before = {n: cluster.pod(pods[n].namespace, n) for n in "ab"}
    old_pid = _agent_pid(cluster, node)
    cluster.exec_node(node, ["kill", "-9", old_pid]).check()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _agent_pid(cluster, node) == old_pid:
        time.sleep(0.2)
    assert _agent_pid(cluster, node) != old_pid, "supervisor did not restart the agent"
    time.sleep(2)  # a few reconcile rounds of the new agent
    for n in "ab":
        after = cluster.pod(pods[n].namespace, n)
        assert after.ip == before[n].ip and after.netns == before[n].netns
        pids = cluster.exec_node(node, ["ip", "netns", "pids", after.netns]).check().stdout.split()
        assert len(pids) == 1, f"pod {n} should run exactly one process, found {pids}"
        assert cluster.probe_one(pods["c"], after.ip, 8080)["reply"] == n
    netns = cluster.exec_node(node, ["ip", "netns", "list"]).check().stdout
    pod_netns = [line.split()[0] for line in netns.splitlines() if line.startswith("pod-")]
    expected = {p.netns for p in cluster.pods() if p.node == node and p.netns}
    assert len(pod_netns) == len(set(pod_netns)) and set(pod_netns) == expected


def _veths(cluster, node: str) -> set[str]:
    out = cluster.exec_node(node, ["ip", "-o", "link", "show", "type", "veth"]).check().stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def test_deleting_a_pod_frees_its_ip_and_veth(cluster, module_namespace):
    node = cluster.workers()[0]
    veths_before = _veths(cluster, node)
    cluster.apply([netexec_pod("gone", module_namespace, node)])
    pod = cluster.wait_pods_ready(module_namespace, ["gone"], timeout=60)[0]
    assert len(_veths(cluster, node)) == len(veths_before) + 1
    cluster.delete([{"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": "gone", "namespace": module_namespace}}])
    cluster.wait_gone(module_namespace, "gone")
    assert _veths(cluster, node) == veths_before
    leftovers = cluster.exec_node(node, ["find", "/var/lib/cni", "-name", pod.ip]).check()
    assert leftovers.stdout.strip() == "", f"IPAM still holds {pod.ip}: {leftovers.stdout}"
    netns = cluster.exec_node(node, ["ip", "netns", "list"]).check().stdout
    assert pod.netns not in netns


def test_statefulset_pods_have_stable_names_and_connect(cluster, module_namespace, pods):
    template = netexec_pod("ss", module_namespace)
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": "ss", "namespace": module_namespace},
           "spec": {"replicas": 2, "serviceName": "ss", "podManagementPolicy": "Parallel",
                    "selector": {"matchLabels": {"app": "ss"}},
                    "template": {"metadata": {"labels": {"app": "ss"}},
                                 "spec": template["spec"]}}}
    cluster.apply([sts])
    ready = cluster.wait_pods_ready(module_namespace, ["ss-0", "ss-1"], timeout=90)
    for p in ready:
        assert cluster.probe_one(pods["a"], p.ip, 8080)["reply"] == p.name
    cluster.delete([sts])
