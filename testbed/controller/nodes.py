"""Node and Namespace objects: derived from the cluster config and from what objects use."""

from __future__ import annotations

import copy

from testbed.cluster.objects import normalize
from testbed.controller.actions import Action, Create, Delete, Update
from testbed.controller.pods import status_action
from testbed.controller.snapshot import Snapshot
from testbed.store.keys import RESOURCES, parse_key, spec_key

CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
CONTROL_PLANE_TAINT = {"key": CONTROL_PLANE_LABEL, "effect": "NoSchedule"}
NAMESPACE_LABEL = "kubernetes.io/metadata.name"
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def desired_node(node: dict, tainted: bool) -> dict:
    """The Node object for one config node (without the fields ``normalize`` fills in)."""
    labels = {**(node.get("labels") or {}),
              "kubernetes.io/hostname": node["name"], "kubernetes.io/os": "linux"}
    spec: dict = {"podCIDR": node["podCIDR"], "podCIDRs": [node["podCIDR"]]}
    if node.get("role") == "control-plane":
        labels[CONTROL_PLANE_LABEL] = ""
        if tainted:
            spec["taints"] = [dict(CONTROL_PLANE_TAINT)]
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": node["name"], "labels": labels}, "spec": spec}


def _merge_node(existing: dict, desired: dict) -> dict:
    """``existing`` with the managed fields of ``desired``; other labels/taints are kept."""
    out = copy.deepcopy(existing)
    meta = out.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **desired["metadata"]["labels"]}
    spec = out.setdefault("spec", {})
    spec["podCIDR"] = desired["spec"]["podCIDR"]
    spec["podCIDRs"] = desired["spec"]["podCIDRs"]
    # Only the control-plane taint is ours; taints added by the user stay.
    taints = [t for t in spec.get("taints") or [] if t.get("key") != CONTROL_PLANE_LABEL]
    taints += desired["spec"].get("taints", [])
    if taints:
        spec["taints"] = taints
    else:
        spec.pop("taints", None)
    return out


def reconcile_nodes(snap: Snapshot) -> list[Action]:
    """Create/update a Node per config node; delete Node objects the config does not have."""
    nodes = snap.config.get("nodes", [])
    # Like kind: the control plane only keeps workloads off itself if there is elsewhere to go.
    tainted = any(n.get("role") == "worker" for n in nodes)
    actions: list[Action] = []
    wanted = set()
    for node in nodes:
        key = spec_key("Node", None, node["name"])
        wanted.add(key)
        desired = desired_node(node, tainted)
        current = snap.objects.get(key)
        if current is None:
            actions.append(Create(key, normalize(desired)))
            continue
        merged = _merge_node(current.value, desired)
        if merged != current.value:
            actions.append(Update(key, normalize(merged, current.value), current.mod_revision))
    for kv in snap.of("nodes"):
        if kv.key not in wanted:
            actions.append(Delete(kv.key, kv.mod_revision))
    return actions


def used_namespaces(snap: Snapshot) -> set[str]:
    """Namespaces every cluster needs plus every namespace an object lives in."""
    used = set(SYSTEM_NAMESPACES)
    for key in snap.objects:
        try:
            resource, ns, _ = parse_key(key)
        except ValueError:  # a key outside the known layout is not ours to interpret
            continue
        if ns is not None and RESOURCES[resource][1]:
            used.add(ns)
    return used


def reconcile_namespaces(snap: Snapshot) -> list[Action]:
    """Ensure every used namespace exists, is labelled with its name and is Active."""
    actions: list[Action] = []
    existing = {kv.value["metadata"]["name"]: kv for kv in snap.of("namespaces")}
    for name in sorted(used_namespaces(snap) | set(existing)):
        key = spec_key("Namespace", None, name)
        current = existing.get(name)
        if current is None:
            ns = {"apiVersion": "v1", "kind": "Namespace",
                  "metadata": {"name": name, "labels": {NAMESPACE_LABEL: name}}}
            actions.append(Create(key, normalize(ns)))
        elif (current.value["metadata"].get("labels") or {}).get(NAMESPACE_LABEL) != name:
            fixed = copy.deepcopy(current.value)
            fixed["metadata"]["labels"] = {**(fixed["metadata"].get("labels") or {}),
                                           NAMESPACE_LABEL: name}
            actions.append(Update(key, fixed, current.mod_revision))
        actions += status_action(snap, key, {"phase": "Active"})
    return actions
