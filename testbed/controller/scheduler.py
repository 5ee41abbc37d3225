"""Scheduler: give every pod without ``spec.nodeName`` a node.

Filters: the node exists in the config, is not cordoned (``spec.unschedulable``),
matches the pod's ``nodeSelector``, and every NoSchedule/NoExecute taint is tolerated.
Score: fewest live (non-terminating) pods, ties broken by config order. A pod that fits
nowhere gets a ``PodScheduled=False/Unschedulable`` status saying why.

It runs last in a pass and sees the pass's planned actions: pods about to be created get
their node set before they are written (one write instead of create-then-bind), pods
about to be deleted no longer count towards a node's load.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from testbed.controller.actions import Action, Create, Delete, MarkDeleting, Update
from testbed.controller.nodes import desired_node
from testbed.controller.pods import guarded, status_action
from testbed.controller.snapshot import Snapshot, is_terminating, status_key_of
from testbed.store.base import KeyValue
from testbed.store.keys import spec_key

BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")
POD_PREFIX = "/registry/pods/"


@dataclass
class NodeInfo:
    """What the scheduler needs to know about a node."""

    name: str
    labels: dict[str, str]
    taints: list[dict]
    unschedulable: bool = False
    pods: int = field(default=0)
    placed: list[tuple[str, dict]] = field(default_factory=list)  # (namespace, labels)

    def add(self, pod: dict) -> None:
        """Count a pod on this node (for spreading and anti-affinity)."""
        self.pods += 1
        meta = pod.get("metadata", {})
        self.placed.append((meta.get("namespace", "default"), meta.get("labels") or {}))


def anti_affinity_terms(pod: dict) -> list[dict]:
    """Required pod anti-affinity terms on kubernetes.io/hostname (the ones we honour)."""
    aff = (pod.get("spec", {}).get("affinity") or {}).get("podAntiAffinity") or {}
    return [t for t in aff.get("requiredDuringSchedulingIgnoredDuringExecution") or []
            if t.get("topologyKey") == "kubernetes.io/hostname"]


def _selected(term: dict, namespace: str, labels: dict) -> bool:
    selector = term.get("labelSelector") or {}
    namespaces = term.get("namespaces") or []
    if namespaces and namespace not in namespaces:
        return False
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def violates_anti_affinity(pod: dict, node: NodeInfo) -> bool:
    ns = pod.get("metadata", {}).get("namespace", "default")
    for term in anti_affinity_terms(pod):
        scope = term.get("namespaces") or [ns]
        for placed_ns, labels in node.placed:
            if placed_ns in scope and _selected(term, placed_ns, labels):
                return True
    return False


def cluster_nodes(snap: Snapshot) -> list[NodeInfo]:
    """Config nodes in config order, with labels/taints from their Node object if present.

    The Node object wins so that labels or taints a user put on it take effect; before the
    controller has written it, the values it is about to write are used.
    """
    tainted = any(n.get("role") == "worker" for n in snap.config.get("nodes", []))
    out = []
    for node in snap.config.get("nodes", []):
        kv = snap.objects.get(spec_key("Node", None, node["name"]))
        obj = kv.value if kv else desired_node(node, tainted)
        spec = obj.get("spec", {})
        out.append(NodeInfo(node["name"], dict(obj["metadata"].get("labels") or {}),
                            list(spec.get("taints") or []), bool(spec.get("unschedulable"))))
    return out


def tolerates(tolerations: list[dict] | None, taint: dict) -> bool:
    """True if one of ``tolerations`` tolerates ``taint`` (Kubernetes matching rules)."""
    for tol in tolerations or []:
        if tol.get("effect") and tol["effect"] != taint.get("effect"):
            continue
        operator = tol.get("operator", "Equal")
        if not tol.get("key"):
            # An empty key with Exists matches every taint; with Equal it matches nothing.
            if operator == "Exists":
                return True
            continue
        if tol["key"] != taint.get("key"):
            continue
        if operator == "Exists" or tol.get("value", "") == taint.get("value", ""):
            return True
    return False


def _taint_text(taint: dict) -> str:
    value = f"={taint['value']}" if taint.get("value") else ""
    return f"{taint.get('key')}{value}:{taint.get('effect')}"


def fit(pod: dict, nodes: list[NodeInfo]) -> tuple[NodeInfo | None, str]:
    """The best node for ``pod`` and, if there is none, why (the Unschedulable message)."""
    spec = pod.get("spec", {})
    selector = spec.get("nodeSelector") or {}
    sel_text = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    reasons: dict[str, int] = {}
    fitting = []
    for node in nodes:
        if node.unschedulable:
            reason = "node(s) were unschedulable"
        elif any(node.labels.get(k) != v for k, v in selector.items()):
            reason = f"node(s) didn't match nodeSelector {sel_text}"
        elif violates_anti_affinity(pod, node):
            reason = "node(s) didn't satisfy pod anti-affinity rules"
        else:
            untolerated = [t for t in node.taints if t.get("effect") in BLOCKING_EFFECTS
                           and not tolerates(spec.get("tolerations"), t)]
            if not untolerated:
                fitting.append(node)
                continue
            reason = f"node(s) had untolerated taint {_taint_text(untolerated[0])}"
        reasons[reason] = reasons.get(reason, 0) + 1
    if fitting:
        # min() keeps the first of equals, so ties go to the earlier node in config order.
        return min(fitting, key=lambda n: n.pods), ""
    total = len(nodes)
    if not nodes:
        return None, "0/0 nodes are available: no nodes in the cluster"
    selector_misses = reasons.get(f"node(s) didn't match nodeSelector {sel_text}", 0)
    if selector and selector_misses == total:
        return None, f"0/{total} nodes match nodeSelector {sel_text}"
    parts = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
    return None, f"0/{total} nodes are available: {parts}"


def unschedulable_status(message: str) -> dict:
    """The status of a pod that fits no node."""
    return {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                                                "reason": "Unschedulable", "message": message}]}


def _was_unschedulable(status: dict | None) -> bool:
    for cond in (status or {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled":
            return cond.get("status") == "False"
    return False


def schedule(snap: Snapshot, planned: list[Action]) -> list[Action]:
    """``planned`` with pod Creates bound to nodes, plus binds for existing unbound pods."""
    nodes = cluster_nodes(snap)
    by_name = {n.name: n for n in nodes}
    going = {a.key for a in planned if isinstance(a, (Delete, MarkDeleting))}
    for kv in snap.of("pods"):
        node = by_name.get(kv.value.get("spec", {}).get("nodeName", ""))
        if node and not is_terminating(kv.value) and kv.key not in going:
            node.add(kv.value)
    for a in planned:
        if isinstance(a, Create) and a.key.startswith(POD_PREFIX):
            node = by_name.get(a.obj.get("spec", {}).get("nodeName", ""))
            if node:
                node.add(a.obj)

    out: list[Action] = []
    for a in planned:
        if isinstance(a, Create) and a.key.startswith(POD_PREFIX) \
                and not a.obj.get("spec", {}).get("nodeName"):
            out += guarded("pod", a.key, _bind_new, a, nodes) or [a]
        else:
            out.append(a)
    # Existing unbound pods, oldest first so that earlier pods get the emptier nodes.
    unbound = [kv for kv in snap.of("pods") if not kv.value.get("spec", {}).get("nodeName")
               and not is_terminating(kv.value) and kv.key not in going]
    for kv in sorted(unbound, key=lambda kv: kv.create_revision):
        out += guarded("pod", kv.key, _bind_existing, snap, kv, nodes)
    return out


def _bind_new(create: Create, nodes: list[NodeInfo]) -> list[Action]:
    """A pod about to be created: set its node, or create it with an Unschedulable status."""
    node, why = fit(create.obj, nodes)
    if node is None:
        status = Create(status_key_of(create.key), unschedulable_status(why))
        return [Create(create.key, create.obj, then=(*create.then, status))]
    node.add(create.obj)
    obj = copy.deepcopy(create.obj)
    obj["spec"]["nodeName"] = node.name
    return [Create(create.key, obj, then=create.then)]


def _bind_existing(snap: Snapshot, kv: KeyValue, nodes: list[NodeInfo]) -> list[Action]:
    """An unbound pod in the store: bind it by CAS, or record why it cannot be."""
    node, why = fit(kv.value, nodes)
    if node is None:
        return status_action(snap, kv.key, unschedulable_status(why))
    node.add(kv.value)
    obj = copy.deepcopy(kv.value)
    obj.setdefault("spec", {})["nodeName"] = node.name
    then: tuple = ()
    st = snap.status(kv.key)
    if st is not None and _was_unschedulable(st.value):
        # Clear our own Unschedulable verdict; CAS so an agent's status is never lost.
        scheduled = {"phase": "Pending",
                     "conditions": [{"type": "PodScheduled", "status": "True"}]}
        then = (Update(st.key, scheduled, st.mod_revision),)
    return [Update(kv.key, obj, kv.mod_revision, then=then)]
