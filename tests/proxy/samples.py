"""Kubernetes-shaped Service / EndpointSlice dicts for the proxy tests."""

from __future__ import annotations

from typing import Any

from testbed.proxy.model import NodeContext

NODE = "node-a"
CTX = NodeContext(
    node_name=NODE,
    node_ip="172.30.0.2",
    cluster_cidr="10.244.0.0/16",
    node_ips=("172.30.0.2", "172.30.0.3"),
)


def service(
    name: str,
    cluster_ip: str | None,
    ports: list[dict[str, Any]],
    ns: str = "default",
    **spec: Any,
) -> dict[str, Any]:
    """A v1 Service; ``spec`` keys are merged (``status`` is lifted to the top level)."""
    status = spec.pop("status", None)
    body: dict[str, Any] = {"ports": ports, **spec}
    if cluster_ip is not None:
        body["clusterIP"] = cluster_ip
    svc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": body,
    }
    if status:
        svc["status"] = status
    return svc


def port(number: int, name: str = "", protocol: str = "TCP", **extra: Any) -> dict[str, Any]:
    """A ServicePort."""
    return {"name": name, "protocol": protocol, "port": number, **extra}


def ep(
    ip: str,
    node: str = NODE,
    ready: bool | None = True,
    serving: bool | None = None,
    terminating: bool | None = None,
) -> dict[str, Any]:
    """An EndpointSlice endpoint (``None`` conditions are left out, as the API allows)."""
    cond = {
        k: v
        for k, v in (("ready", ready), ("serving", serving), ("terminating", terminating))
        if v is not None
    }
    return {"addresses": [ip], "conditions": cond, "nodeName": node}


def eps_slice(
    svc: str,
    endpoints: list[dict[str, Any]],
    ports: list[tuple[str, int, str]],
    ns: str = "default",
    suffix: str = "abc",
) -> dict[str, Any]:
    """An EndpointSlice for Service ``svc``; ``ports`` are (name, number, protocol)."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{svc}-{suffix}",
            "namespace": ns,
            "labels": {"kubernetes.io/service-name": svc},
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports],
    }


def kitchen_sink() -> tuple[list[dict], list[dict]]:
    """One of everything the renderers handle (used by the golden files)."""
    svcs = [
        service("web", "10.96.0.10", [port(80, "http", targetPort="http", nodePort=30080)],
                type="NodePort"),
        service("dns", "10.96.0.53", [port(53, "dns", "UDP"), port(53, "dns-tcp", "TCP")],
                ns="kube-system"),
        service("empty", "10.96.0.99", [port(80)]),
        service("lb", "10.96.0.20", [port(443, "https", nodePort=30443)], type="LoadBalancer",
                externalTrafficPolicy="Local", externalIPs=["192.0.2.20"],
                status={"loadBalancer": {"ingress": [{"ip": "198.51.100.20"}]}}),
        service("lb-nolocal", "10.96.0.21", [port(80, nodePort=30021)], type="LoadBalancer",
                externalTrafficPolicy="Local",
                status={"loadBalancer": {"ingress": [{"ip": "198.51.100.21"}]}}),
        service("sticky", "10.96.0.30", [port(80, nodePort=30030)], type="NodePort",
                sessionAffinity="ClientIP",
                sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}}),
        service("itp", "10.96.0.40", [port(80)], internalTrafficPolicy="Local"),
        service("headless", "None", [port(80)]),
        service("ext", None, [], type="ExternalName", externalName="example.org"),
        service("sctp", "10.96.0.50", [port(9999, "s", "SCTP")]),
    ]  # fmt: skip
    slices = [
        eps_slice("web", [ep("10.244.1.5"), ep("10.244.2.5", "node-b")], [("http", 8080, "TCP")]),
        eps_slice("dns", [ep("10.244.1.7"), ep("10.244.2.7", "node-b")],
                  [("dns", 5353, "UDP"), ("dns-tcp", 5353, "TCP")], ns="kube-system"),
        eps_slice("lb", [ep("10.244.1.8"), ep("10.244.2.8", "node-b")], [("https", 8443, "TCP")]),
        eps_slice("lb-nolocal", [ep("10.244.2.9", "node-b")], [("", 80, "TCP")]),
        eps_slice("sticky", [ep("10.244.1.10"), ep("10.244.2.10", "node-b")], [("", 80, "TCP")]),
        eps_slice("itp", [ep("10.244.1.11"), ep("10.244.2.11", "node-b")], [("", 80, "TCP")]),
        eps_slice("headless", [ep("10.244.1.12")], [("", 80, "TCP")]),
    ]  # fmt: skip
    return svcs, slices
