"""Helpers for the Service and EndpointSlice tests: objects, pod statuses, store reads."""

from __future__ import annotations

from testbed.cluster.objects import normalize
from testbed.store.keys import prefix, spec_key, status_key

from .helpers import make_config


def lb_config(pool: str | None = "172.30.0.240/30") -> dict:
    """The test config with a node subnet and (unless None) a LoadBalancer pool."""
    cfg = make_config()
    cfg["networking"]["nodeSubnet"] = "172.30.0.0/24"
    if pool:
        cfg["networking"]["loadBalancerPool"] = pool
    return cfg


def service(name: str, ns: str = "default", *, type: str = "ClusterIP",
            selector: dict | None = None, ports: list[dict] | None = None,
            created: str | None = None, **spec) -> dict:
    """A normalised Service; ``ports`` defaults to one TCP port 80 -> 8080 named http."""
    body = {"type": type,
            "ports": ports if ports is not None else [
                {"name": "http", "port": 80, "targetPort": 8080}],
            **spec}
    if selector is not None:
        body["selector"] = selector
    meta: dict = {"name": name, "namespace": ns}
    if created:
        meta["creationTimestamp"] = created
    return normalize({"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": body})


def app_pod(name: str, app: str = "web", ns: str = "default", *, ports: dict | None = None,
            node: str = "worker1", deleting: bool = False, **spec) -> dict:
    """A normalised pod labelled ``app=<app>`` bound to ``node``; ``ports`` maps container
    port names to numbers."""
    container = {"name": "c", "image": "busybox"}
    if ports:
        container["ports"] = [{"name": n, "containerPort": p} for n, p in ports.items()]
    meta: dict = {"name": name, "namespace": ns, "labels": {"app": app}}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return normalize({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                      "spec": {"containers": [container], "nodeName": node, **spec}})


def running(ip: str | None, ready: bool = True, phase: str = "Running") -> dict:
    """A pod status as an agent writes it, with ``podIP`` (unless None)."""
    st: dict = {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        st["podIP"] = ip
    return st


def pod_status_key(pod: dict) -> str:
    """The status key of ``pod``."""
    return status_key("Pod", pod["metadata"]["namespace"], pod["metadata"]["name"])


def svc_spec(store, name: str, ns: str = "default") -> dict:
    """The stored spec of a Service."""
    return store.get(spec_key("Service", ns, name)).value["spec"]


def svc_status(store, name: str, ns: str = "default") -> dict | None:
    """The stored status of a Service, or None."""
    kv = store.get(status_key("Service", ns, name))
    return kv.value if kv else None


def allocated_condition(status: dict | None, kind: str = "Allocated") -> dict | None:
    """The condition ``kind`` of a Service status."""
    for cond in (status or {}).get("conditions") or []:
        if cond["type"] == kind:
            return cond
    return None


def slices(store, ns: str = "default") -> dict[str, dict]:
    """EndpointSlices by name."""
    items, _ = store.list(prefix("endpointslices", ns))
    return {kv.value["metadata"]["name"]: kv.value for kv in items}


def endpoint_names(slice_: dict) -> list[str]:
    """Pod names of a slice's endpoints."""
    return [ep["targetRef"]["name"] for ep in slice_["endpoints"]]
