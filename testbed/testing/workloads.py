"""Workload objects suites create (mode-agnostic)."""

from __future__ import annotations

NETEXEC_IMAGE = "registry.k8s.io/e2e-test-images/agnhost:2.47"


def netexec_pod(name: str, namespace: str, node: str | None = None, labels: dict | None = None,
                host_network: bool = False, http_port: int = 8080, udp_port: int = 8081) -> dict:
    """An agnhost netexec pod, as upstream e2e tests create them."""
    spec: dict = {
        "containers": [{
            "name": "netexec", "image": NETEXEC_IMAGE,
            "args": ["netexec", f"--http-port={http_port}", f"--udp-port={udp_port}"],
            "ports": [{"name": "http", "containerPort": http_port, "protocol": "TCP"},
                      {"name": "udp", "containerPort": udp_port, "protocol": "UDP"}],
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": http_port},
                               "periodSeconds": 1},
        }],
    }
    if node:
        spec["nodeName"] = node
    if host_network:
        spec["hostNetwork"] = True
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": labels or {"app": name}},
            "spec": spec}
