"""Data-plane cost of a proxy mode: requests/s and p99 of pod -> ClusterIP -> pod against
pod -> pod IP, both with `ab` (a new connection per request: keep-alive off) in one run."""

from __future__ import annotations

import re

from testbed.testing.cluster import Cluster, eventually
from testbed.testing.workloads import http_port, netexec_deployment, netexec_pod, service

NS = "bench-dp"


def parse_ab(out: str) -> dict:
    """Requests/s, failures and latency percentiles (ms) from ab's report (pure)."""
    rps = re.search(r"Requests per second:\s+([\d.]+)", out)
    failed = re.search(r"Failed requests:\s+(\d+)", out)
    pct = dict(re.findall(r"^\s+(\d+)%\s+(\d+)", out, re.M))
    return {"requests_per_second": float(rps.group(1)) if rps else 0.0,
            "failed": int(failed.group(1)) if failed else -1,
            "p50_ms": int(pct.get("50", -1)), "p99_ms": int(pct.get("99", -1))}


def measure(cluster: Cluster, requests: int = 4000, concurrency: int = 8) -> dict:
    """Deploy one backend and a client on different nodes; ab both paths."""
    w1, w2 = cluster.workers()[:2]
    cluster.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
                   netexec_deployment("dp", NS, 1, node_selector={"kubernetes.io/hostname": w2}),
                   service("dp", NS, {"app": "dp"}, [http_port(80)]),
                   netexec_pod("dp-client", NS, w1)])
    backend = cluster.wait_pods_ready(NS, labels={"app": "dp"}, count=1)[0]
    client = cluster.wait_pods_ready(NS, ["dp-client"])[0]
    vip = cluster.wait_service(NS, "dp", ready=1)["spec"]["clusterIP"]

    def programmed() -> None:
        assert cluster.probe_one(client, vip, 80)["ok"], "service not programmed yet"

    eventually(programmed, timeout=30)
    out = {}
    for label, url in (("pod_ip", f"http://{backend.ip}:8080/hostname"),
                       ("cluster_ip", f"http://{vip}:80/hostname")):
        ab = cluster.exec_pod(client, ["ab", "-q", "-n", str(requests), "-c", str(concurrency),
                                       url]).check()
        out[label] = parse_ab(ab.stdout)
    out["cluster_ip_rps_ratio"] = round(out["cluster_ip"]["requests_per_second"]
                                        / max(1.0, out["pod_ip"]["requests_per_second"]), 3)
    return out
