"""Pod-to-service conformance: ClusterIP load balancing, affinity, scaling, refusal, hairpin,
source IPs, multi-port, named ports, headless, internalTrafficPolicy — in every proxy mode."""

from __future__ import annotations

import time

import pytest

from testbed.testing.cluster import eventually
from testbed.testing.workloads import (
    http_port,
    netexec_deployment,
    netexec_pod,
    service,
    udp_port,
)


@pytest.fixture(scope="module")
def web(cluster, module_namespace):
    """Deployment `web` (3 replicas over the workers) behind ClusterIP service `web`."""
    ns = module_namespace
    cluster.apply([
        netexec_deployment("web", ns, 3),
        service("web", ns, {"app": "web"}, [http_port(80), udp_port(80, name="udp80"),
                                            http_port(81, name="http81")]),
    ])
    svc = cluster.wait_service(ns, "web", ready=3)
    pods = cluster.wait_pods_ready(ns, labels={"app": "web"}, count=3)
    return svc["spec"]["clusterIP"], pods


@pytest.fixture(scope="module")
def clients(cluster, module_namespace):
    w1, w2 = cluster.workers()[:2]
    cluster.apply([netexec_pod("client1", module_namespace, w1),
                   netexec_pod("client2", module_namespace, w2)])
    return cluster.wait_pods_ready(module_namespace, ["client1", "client2"])


def test_cluster_ip_reaches_every_endpoint(cluster, web, clients):
    ip, pods = web
    seen = cluster.answers(clients[0], ip, 80, n=40)
    assert None not in seen, seen
    assert set(seen) == {p.name for p in pods}


@pytest.mark.parametrize("protocol,port,request_", [("tcp", 80, "hostname"),
                                                    ("udp", 80, "hostname"),
                                                    ("tcp", 81, "hostname")])
def test_multi_port_and_tcp_udp_on_one_port(cluster, web, clients, protocol, port, request_):
    ip, pods = web
    seen = cluster.answers(clients[1], ip, port, n=20, protocol=protocol, request=request_)
    assert None not in seen and set(seen) <= {p.name for p in pods}, seen


def test_source_pod_ip_is_preserved(cluster, web, clients):
    """No masquerade for pod -> ClusterIP -> pod, on the same node or across nodes."""
    ip, pods = web
    replies = cluster.answers(clients[0], ip, 80, n=20, request="clientip")
    assert None not in replies
    assert {r.rsplit(":", 1)[0] for r in replies} == {clients[0].ip}


def test_service_without_endpoints_is_refused_at_once(cluster, module_namespace, clients):
    cluster.apply([service("nobody", module_namespace, {"app": "nobody"}, [http_port(80)])])
    ip = cluster.wait_service(module_namespace, "nobody")["spec"]["clusterIP"]

    def refused():
        start = time.monotonic()
        result = cluster.probe_one(clients[0], ip, 80, timeout=3)
        assert not result["ok"] and "Refused" in result["error"], result
        assert time.monotonic() - start < 2.5

    eventually(refused, timeout=20)


def test_session_affinity_sticks_and_expires(cluster, module_namespace, web, clients):
    ns = module_namespace
    cluster.apply([service("sticky", ns, {"app": "web"}, [http_port(80)],
                           sessionAffinity="ClientIP",
                           sessionAffinityConfig={"clientIP": {"timeoutSeconds": 2}})])
    ip = cluster.wait_service(ns, "sticky", ready=3)["spec"]["clusterIP"]
    eventually(lambda: assert_ok(cluster.probe_one(clients[0], ip, 80)), timeout=20)
    assert len(set(cluster.answers(clients[0], ip, 80, n=15))) == 1
    seen = set()
    for _ in range(10):  # after each expiry the choice is random again
        time.sleep(3)
        seen.add(cluster.probe_one(clients[0], ip, 80)["reply"])
        if len(seen) > 1:
            break
    assert len(seen) > 1, "affinity never expired"


def assert_ok(result: dict) -> dict:
    assert result["ok"], result
    return result


def test_scaling_changes_who_answers(cluster, module_namespace, clients):
    ns = module_namespace
    cluster.apply([netexec_deployment("scale", ns, 1),
                   service("scale", ns, {"app": "scale"}, [http_port(80)])])
    ip = cluster.wait_service(ns, "scale", ready=1)["spec"]["clusterIP"]
    eventually(lambda: assert_ok(cluster.probe_one(clients[0], ip, 80)), timeout=20)
    cluster.scale(ns, "scale", 3)

    def three():
        assert len(set(cluster.answers(clients[0], ip, 80, n=30)) - {None}) == 3

    eventually(three, timeout=60)
    cluster.scale(ns, "scale", 1)

    def one():
        seen = cluster.answers(clients[0], ip, 80, n=20)
        assert None not in seen and len(set(seen)) == 1, seen

    eventually(one, timeout=60)


def test_hairpin_pod_reaches_itself_through_its_service(cluster, module_namespace):
    ns = module_namespace
    node = cluster.workers()[0]
    cluster.apply([netexec_pod("loner", ns, node, labels={"app": "loner"}),
                   service("loner", ns, {"app": "loner"}, [http_port(80)])])
    pod = cluster.wait_pods_ready(ns, ["loner"])[0]
    ip = cluster.wait_service(ns, "loner", ready=1)["spec"]["clusterIP"]
    result = eventually(lambda: assert_ok(cluster.probe_one(pod, ip, 80)), timeout=20)
    assert result["reply"] == "loner"


def test_named_target_port_resolves_per_pod(cluster, module_namespace, clients):
    ns = module_namespace
    w1, w2 = cluster.workers()[:2]
    cluster.apply([
        netexec_pod("np-a", ns, w1, labels={"app": "np"}),
        netexec_pod("np-b", ns, w2, labels={"app": "np"}, http_port=9000, udp_port=9001),
        service("np", ns, {"app": "np"}, [http_port(80, target="http")]),
    ])
    ip = cluster.wait_service(ns, "np", ready=2)["spec"]["clusterIP"]

    def both():
        assert set(cluster.answers(clients[0], ip, 80, n=20)) == {"np-a", "np-b"}

    eventually(both, timeout=30)


def test_headless_service_gets_no_cluster_ip(cluster, module_namespace, web, clients):
    ns = module_namespace
    cluster.apply([service("web-headless", ns, {"app": "web"}, [http_port(80)],
                           clusterIP="None")])

    def sliced():
        assert len(cluster.ready_endpoints(ns, "web-headless")) == 3

    eventually(sliced, timeout=20)
    assert cluster.service(ns, "web-headless")["spec"]["clusterIP"] == "None"
    _, pods = web
    for pod in pods:  # reached directly by pod IP, as headless clients do
        assert cluster.probe_one(clients[0], pod.ip, 8080)["reply"] == pod.name


def test_internal_traffic_policy_local(cluster, module_namespace, web, clients):
    ns = module_namespace
    cluster.apply([service("local", ns, {"app": "web"}, [http_port(80)],
                           internalTrafficPolicy="Local")])
    ip = cluster.wait_service(ns, "local", ready=3)["spec"]["clusterIP"]
    _, pods = web
    for client in clients:
        local = {p.name for p in pods if p.node == client.node}

        def only_local(client=client, local=local):
            seen = cluster.answers(client, ip, 80, n=15, timeout=1)
            if local:
                assert set(seen) == local, (client.node, seen, local)
            else:
                assert set(seen) == {None}, (client.node, seen)

        eventually(only_local, timeout=30)


def test_proxy_restores_its_rules_after_they_are_deleted(cluster, web, clients):
    """Upstream: "should recreate its iptables rules if they are deleted"."""
    ip, _ = web
    node = clients[0].node
    cluster.exec_node(node, ["python3", "-m", "testbed.agent.proxyd", "--flush"]).check()
    eventually(lambda: assert_ok(cluster.probe_one(clients[0], ip, 80)), timeout=30)
    seen = cluster.answers(clients[0], ip, 80, n=10)
    assert None not in seen


def test_endpoint_swap_loses_no_request(cluster, module_namespace, clients):
    """The service's selector moves from one ready set of pods to another while a client
    loops new connections: every request is answered (programming is atomic)."""
    ns = module_namespace
    cluster.apply([netexec_deployment("blue", ns, 2, labels={"app": "blue", "swap": "yes"}),
                   netexec_deployment("green", ns, 2, labels={"app": "green", "swap": "yes"}),
                   service("swap", ns, {"app": "blue"}, [http_port(80)])])
    cluster.wait_pods_ready(ns, labels={"swap": "yes"}, count=4)
    ip = cluster.wait_service(ns, "swap", ready=2)["spec"]["clusterIP"]
    eventually(lambda: assert_ok(cluster.probe_one(clients[0], ip, 80)), timeout=20)
    loop = ("import json,socket,sys,time\n"
            "ok=fail=0; end=time.time()+float(sys.argv[2])\n"
            "while time.time()<end:\n"
            "  try:\n"
            "    s=socket.create_connection((sys.argv[1],80),timeout=2)\n"
            "    s.sendall(b'GET /hostname HTTP/1.0\\r\\n\\r\\n'); d=s.recv(4096); s.close()\n"
            "    ok+=1 if d.startswith(b'HTTP/1') else 0; fail+=0 if d else 1\n"
            "  except OSError: fail+=1\n"
            "print(json.dumps({'ok':ok,'fail':fail}))\n")
    import json
    import threading

    result = {}
    runner = threading.Thread(target=lambda: result.update(json.loads(cluster.exec_pod(
        clients[0], ["python3", "-c", loop, ip, "6"]).check().stdout)))
    runner.start()
    time.sleep(1.5)
    for selector in ({"app": "green"}, {"app": "blue"}, {"app": "green"}):
        cluster.apply([service("swap", ns, selector, [http_port(80)])])
        time.sleep(1.2)
    runner.join()
    assert result["ok"] > 50 and result["fail"] == 0, result
    assert set(cluster.answers(clients[0], ip, 80, n=10)) <= {
        p.name for p in cluster.pods(ns, {"app": "green"})}


def test_service_dnat_lives_where_the_mode_says(cluster, web):
    """iptables/nftables modes program service DNAT in netfilter; ebpf mode has none there."""
    import ipaddress
    import re

    ip, _ = web
    pods = ipaddress.ip_network(cluster.config["networking"]["podSubnet"])
    to_pod = re.compile(r"(?:--to-destination|dnat to|dnat ip to)\s+([\d.]+)")
    for node in [n["name"] for n in cluster.nodes]:
        rules = cluster.exec_node(node, ["sh", "-c", "iptables-save -t nat; nft list ruleset"])
        dnat = [line for line in rules.check().stdout.splitlines()
                if (m := to_pod.search(line)) and ipaddress.ip_address(m.group(1)) in pods]
        mentions_vip = ip in rules.stdout
        if cluster.mode == "ebpf":
            assert not dnat and not mentions_vip, (node, dnat[:5])
        else:
            assert dnat and mentions_vip, node
