"""Kubernetes-shaped views of store objects (nodes, pods) for `get`."""

from __future__ import annotations

from testbed.cluster.objects import condition
from testbed.cluster.read import merged

__all__ = ["merged"]


def ready_text(obj: dict) -> str:
    return "Ready" if condition(obj.get("status"), "Ready") else "NotReady"


def node_ip(obj: dict) -> str:
    for addr in obj.get("status", {}).get("addresses", []) or obj.get("spec", {}).get(
        "addresses", []
    ):
        if addr.get("type") == "InternalIP":
            return addr.get("address", "")
    return ""


def node_role(obj: dict) -> str:
    labels = obj.get("metadata", {}).get("labels", {})
    roles = [k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/")]
    return ",".join(roles) or "worker"


NODE_COLUMNS = [
    ("NAME", lambda o: o["metadata"]["name"]),
    ("STATUS", ready_text),
    ("ROLES", node_role),
    ("INTERNAL-IP", node_ip),
    ("POD-CIDR", lambda o: o.get("spec", {}).get("podCIDR", "")),
]
NODE_WIDE = [
    ("LABELS", lambda o: ",".join(f"{k}={v}" for k, v in o["metadata"].get("labels", {}).items())),
]


def _pod_ready(o: dict) -> str:
    statuses = o.get("status", {}).get("containerStatuses") or []
    total = len(o.get("spec", {}).get("containers", []))
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _pod_phase(o: dict) -> str:
    if o["metadata"].get("deletionTimestamp"):
        return "Terminating"
    return o.get("status", {}).get("phase", "Pending")


POD_COLUMNS = [
    ("NAMESPACE", lambda o: o["metadata"].get("namespace", "")),
    ("NAME", lambda o: o["metadata"]["name"]),
    ("READY", _pod_ready),
    ("STATUS", _pod_phase),
    ("IP", lambda o: o.get("status", {}).get("podIP", "")),
    ("NODE", lambda o: o.get("spec", {}).get("nodeName", "")),
]
POD_WIDE = [
    ("LABELS", lambda o: ",".join(f"{k}={v}" for k, v in o["metadata"].get("labels", {}).items())),
]
GENERIC_COLUMNS = [
    ("NAMESPACE", lambda o: o["metadata"].get("namespace", "")),
    ("NAME", lambda o: o["metadata"]["name"]),
    ("KIND", lambda o: o.get("kind", "")),
]
