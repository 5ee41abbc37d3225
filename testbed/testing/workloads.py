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


def netexec_deployment(name: str, namespace: str, replicas: int, labels: dict | None = None,
                       node_selector: dict | None = None) -> dict:
    """A Deployment of netexec pods (readiness on /healthz)."""
    template = netexec_pod(name, namespace, labels=labels or {"app": name})
    spec = template["spec"]
    if node_selector:
        spec["nodeSelector"] = node_selector
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas,
                     "selector": {"matchLabels": template["metadata"]["labels"]},
                     "template": {"metadata": {"labels": template["metadata"]["labels"]},
                                  "spec": spec}}}


def service(name: str, namespace: str, selector: dict | None, ports: list[dict],
            **spec_fields) -> dict:
    """A v1 Service; `ports` are ServicePort dicts, extra fields go into spec."""
    spec = {"ports": ports, **spec_fields}
    if selector is not None:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def http_port(port: int = 80, target="http", name: str = "http", **extra) -> dict:
    return {"name": name, "port": port, "targetPort": target, "protocol": "TCP", **extra}


def udp_port(port: int = 81, target="udp", name: str = "udp", **extra) -> dict:
    return {"name": name, "port": port, "targetPort": target, "protocol": "UDP", **extra}
