"""`testbed bench policy`: programming cost of 1,000 policies over 500 pods (inside a node),
and pod -> pod latency with and without 1,000 policies guarding the server (same run)."""

from __future__ import annotations

import time

from testbed.bench.dataplane import parse_ab
from testbed.testing.cluster import Cluster
from testbed.testing.workloads import netexec_pod

NS = "bench-pol"


def guarding_policies(count: int) -> list[dict]:
    """`count` policies selecting the server: each admits one unrelated /32, the last admits
    the client's namespace, so every new connection walks the server's whole rule set."""
    out = []
    for i in range(count):
        peer = ({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NS}}}
                if i == count - 1 else {"ipBlock": {"cidr": f"192.0.2.{i % 250}/32"}})
        out.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                    "metadata": {"name": f"guard-{i}", "namespace": NS},
                    "spec": {"podSelector": {"matchLabels": {"app": "pol-server"}},
                             "ingress": [{"from": [peer],
                                          "ports": [{"port": 8080, "protocol": "TCP"}]}]}})
    return out


def probe_latency(cluster: Cluster, count: int = 1000, requests: int = 3000) -> dict:
    w1, w2 = cluster.workers()[:2]
    cluster.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
                   netexec_pod("pol-server", NS, w2, labels={"app": "pol-server"}),
                   netexec_pod("pol-client", NS, w1)])
    server, client = cluster.wait_pods_ready(NS, ["pol-server", "pol-client"])
    url = f"http://{server.ip}:8080/hostname"

    def ab() -> dict:
        out = cluster.exec_pod(client, ["ab", "-q", "-n", str(requests), "-c", "8", url])
        return parse_ab(out.check().stdout)

    result = {"without_policies": ab()}
    policies = guarding_policies(count)
    start = time.monotonic()
    cluster.apply(policies)
    time.sleep(3)  # policyd re-renders within a sync; give the node time to load the rules
    result["apply_wait_seconds"] = round(time.monotonic() - start, 2)
    result[f"with_{count}_policies"] = ab()
    cluster.delete(policies)
    return result
