"""Waiting until a testbed is ready: every node Ready, every workload's pods Ready."""

from __future__ import annotations

import time

from testbed.cluster.objects import condition, ref
from testbed.cluster.read import statuses
from testbed.store.keys import prefix


class NotReady(Exception):
    """The cluster did not become ready in time; the message lists what and why."""


def _by_ref(items) -> dict[str, dict]:
    return {ref(kv.value): kv.value for kv in items}


def snapshot(store) -> dict[str, dict[str, dict]]:
    """Everything readiness depends on, read from the store."""
    out = {}
    for resource in ("nodes", "pods", "deployments", "statefulsets"):
        out[resource] = _by_ref(store.list(prefix(resource))[0])
        out[resource + "/status"] = statuses(store, resource)
    return out


def readiness_problems(snap: dict[str, dict[str, dict]], node_names: list[str]) -> list[str]:
    """One line per thing that is not ready yet (pure); empty when the cluster is ready."""
    problems = []
    node_status = snap["nodes/status"]
    for name in node_names:
        if not condition(node_status.get(name), "Ready"):
            why = next((c.get("message") for c in (node_status.get(name) or {}).get(
                "conditions", []) if c.get("type") == "Ready" and c.get("message")), None)
            problems.append(f"node {name}: " + (f"NotReady: {why}" if why else
                                                "agent has not reported Ready"))
    pods = snap["pods"]
    pod_status = snap["pods/status"]
    for kind, resource in (("Deployment", "deployments"), ("StatefulSet", "statefulsets")):
        for wref, obj in snap[resource].items():
            want = int(obj.get("spec", {}).get("replicas", 1))
            uid = obj["metadata"].get("uid")
            owned = [p for p in pods.values()
                     if any(o.get("uid") == uid for o in p["metadata"].get("ownerReferences", []))]
            if len(owned) < want:
                problems.append(f"{kind.lower()} {wref}: {len(owned)}/{want} pods created")
    for pref, pod in sorted(pods.items()):
        if pod["metadata"].get("deletionTimestamp"):
            continue
        status = pod_status.get(pref)
        if not pod.get("spec", {}).get("nodeName"):
            problems.append(f"pod {pref}: not scheduled")
        elif status is None:
            problems.append(f"pod {pref}: no status from node {pod['spec']['nodeName']} yet")
        elif not condition(status, "Ready"):
            why = status.get("message") or status.get("reason") or "readiness probe not passing"
            problems.append(f"pod {pref}: {status.get('phase', 'Pending')}, not Ready ({why})")
    return problems


def wait_ready(store, config: dict, timeout: float = 300.0, interval: float = 0.25) -> None:
    """Poll the store until the cluster is ready or raise NotReady listing what is not."""
    node_names = [n["name"] for n in config["nodes"]]
    deadline = time.monotonic() + timeout
    problems: list[str] = []
    while time.monotonic() < deadline:
        problems = readiness_problems(snapshot(store), node_names)
        if not problems:
            return
        time.sleep(interval)
    shown = "\n  ".join(problems[:30])
    raise NotReady(f"cluster not ready after {timeout:.0f}s:\n  {shown}")
