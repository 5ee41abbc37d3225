"""Service allocation: what the API server (ClusterIP, NodePorts) and a bare-metal load
balancer (LoadBalancer addresses) do for Services.

Every pass rebuilds who holds what from the store, then decides service by service:

1. *Claims*: values a service already holds. A ``spec.clusterIP``/``nodePort`` only counts
   as held if the :data:`ALLOCATED_ANNOTATION` the controller wrote together with it
   still names it (anything else in the spec is a request); a LoadBalancer address is
   held if the service's (fresh) status shows it. Conflicting claims (e.g. a copied
   annotation) go to the oldest service.
2. *Requests*, oldest service first (creationTimestamp, then store creation order, then
   key), so two services created at once asking for the same value always resolve the same
   way: requested values are checked (range, taken), missing ones picked from the ranges.

A service whose request cannot be met is left as it is (nothing of it is written to the
spec) and gets a status condition ``Allocated=False`` saying which field is wrong and why;
otherwise its allocation, a few API-server defaults and the annotation are written to the
spec by CAS. A LoadBalancer service whose address cannot be allocated still gets its
ClusterIP and NodePorts (as in Kubernetes, its address just stays pending) and a
``LoadBalancerAllocated=False`` condition.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from testbed.cluster.objects import normalize
from testbed.controller.actions import Action, Create, Update
from testbed.controller.pods import status_action
from testbed.controller.ranges import Ranges, parse_ip
from testbed.controller.snapshot import Snapshot
from testbed.store.base import KeyValue
from testbed.store.keys import spec_key

log = logging.getLogger("controller")

ALLOCATED_ANNOTATION = "testbed.io/allocated"
KUBERNETES_KEY = spec_key("Service", "default", "kubernetes")
NODE_PORT_TYPES = ("NodePort", "LoadBalancer")


class Rejected(Exception):
    """A request that cannot be met: the condition reason and its one-line message."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Claims:
    """Who holds which value (value -> service key), and which values some spec asks
    for: dynamic picks avoid those, so a request is not lost to a pick in the same pass."""

    ips: dict[int, str] = field(default_factory=dict)
    ports: dict[int, str] = field(default_factory=dict)
    lb: dict[int, str] = field(default_factory=dict)
    asked_ips: set[int] = field(default_factory=set)
    asked_ports: set = field(default_factory=set)
    asked_lb: set[int] = field(default_factory=set)


def service_type(svc: dict) -> str:
    """``spec.type`` with its default."""
    return (svc.get("spec") or {}).get("type") or "ClusterIP"


def wants_node_ports(spec: dict) -> bool:
    """NodePort services, and LoadBalancer ones unless allocateLoadBalancerNodePorts=false."""
    kind = spec.get("type") or "ClusterIP"
    return kind == "NodePort" or (kind == "LoadBalancer"
                                  and spec.get("allocateLoadBalancerNodePorts") is not False)


def order(kv: KeyValue) -> tuple:
    """Deterministic decision order: oldest first."""
    return (kv.value.get("metadata", {}).get("creationTimestamp") or "", kv.create_revision, kv.key)


def name_of(key: str) -> str:
    """``namespace/name`` of a service key."""
    return key.split("/", 3)[3]


def _record(svc: dict) -> dict:
    """The allocation the controller last wrote (from the annotation), or {}."""
    raw = (svc.get("metadata", {}).get("annotations") or {}).get(ALLOCATED_ANNOTATION)
    try:
        rec = json.loads(raw) if isinstance(raw, str) else {}
    except ValueError:
        return {}
    return rec if isinstance(rec, dict) else {}


def _requested_ip(spec: dict) -> str:
    ip = spec.get("clusterIP")
    if not ip and spec.get("clusterIPs"):
        ip = spec["clusterIPs"][0]
    return ip or ""


def fresh_status(snap: Snapshot, kv: KeyValue) -> dict:
    """The service's status unless it is older than the service (left by a deleted one)."""
    st = snap.status(kv.key)
    return st.value if st is not None and st.mod_revision > kv.create_revision else {}


def _claim_held(r: Ranges, claims: Claims, snap: Snapshot, kv: KeyValue) -> None:
    """Phase 1: record what ``kv`` already holds (see the module docstring)."""
    svc, key = kv.value, kv.key
    spec = svc.get("spec") or {}
    if service_type(svc) == "ExternalName":
        return
    rec = _record(svc)
    ip = parse_ip(_requested_ip(spec))
    if ip is not None:
        claims.asked_ips.add(int(ip))
    reserved = r.kubernetes_ip if key != KUBERNETES_KEY else None
    if ip is not None and str(ip) == rec.get("clusterIP") and int(ip) in r.ips \
            and int(ip) not in claims.ips and int(ip) != reserved:
        claims.ips[int(ip)] = key
    if wants_node_ports(spec):
        held = rec.get("nodePorts") or []
        for port in spec.get("ports") or []:
            np = port.get("nodePort")
            claims.asked_ports.add(np)
            if np in held and np in r.ports and claims.ports.get(np, key) == key:
                claims.ports[np] = key
    if service_type(svc) == "LoadBalancer":
        want = spec.get("loadBalancerIP")
        if (asked := parse_ip(want)) is not None:
            claims.asked_lb.add(int(asked))
        for ing in (fresh_status(snap, kv).get("loadBalancer") or {}).get("ingress") or []:
            ip = parse_ip(ing.get("ip"))
            if ip is not None and int(ip) in r.pool_set and int(ip) not in claims.lb \
                    and (not want or want == str(ip)):
                claims.lb[int(ip)] = key
                break


def _cluster_ip(r: Ranges, claims: Claims, kv: KeyValue) -> int | None:
    """The ClusterIP for ``kv`` as an integer (None = headless), or :class:`Rejected`."""
    spec, key = kv.value.get("spec") or {}, kv.key
    want = _requested_ip(spec)
    expected = (f"expected an address in {r.ip_text()}, 'None' for a headless service, "
                "or no value to have one allocated")
    if want == "None":
        if service_type(kv.value) != "ClusterIP":
            raise Rejected("ClusterIPInvalid", "spec.clusterIP: 'None' (headless) is only "
                           f"allowed for type ClusterIP; {expected}")
        return None
    if not want:
        taken = {*claims.ips, *claims.asked_ips, r.kubernetes_ip}
        ip = r.ips.pick(name_of(key), taken)
        if ip is None:
            raise Rejected("ClusterIPRangeExhausted", "spec.clusterIP: no free address left "
                           f"in {r.ip_text()}; delete a service or request 'None' (headless)")
        return ip
    ip = parse_ip(want)
    if ip is None:
        raise Rejected("ClusterIPInvalid",
                       f"spec.clusterIP: {want!r} is not an IPv4 address; {expected}")
    if int(ip) not in r.ips:
        raise Rejected("ClusterIPOutOfRange", f"spec.clusterIP: {ip} is outside the service "
                       f"range; {expected}")
    owner = KUBERNETES_KEY if int(ip) == r.kubernetes_ip else claims.ips.get(int(ip))
    if owner not in (None, key):
        raise Rejected("ClusterIPTaken", f"spec.clusterIP: {ip} is already allocated to "
                       f"service {name_of(owner)}; choose a free address in {r.subnet} or "
                       "leave it empty to have one allocated")
    return int(ip)


def _node_ports(r: Ranges, claims: Claims, kv: KeyValue) -> list[int | None]:
    """One NodePort per service port (None: the service gets none), or :class:`Rejected`."""
    spec, key = kv.value.get("spec") or {}, kv.key
    ports = spec.get("ports") or []
    if not wants_node_ports(spec):
        return [None] * len(ports)
    span = f"{r.ports.first}-{r.ports.last}"
    out: list[int | None] = []
    mine: dict[int, set[str]] = {}
    for i, port in enumerate(ports):
        np, proto = port.get("nodePort"), port.get("protocol") or "TCP"
        if np in (None, 0):
            out.append(None)
            continue
        field_ = f"spec.ports[{i}].nodePort"
        if isinstance(np, bool) or not isinstance(np, int) or np not in r.ports:
            raise Rejected("NodePortOutOfRange", f"{field_}: {np!r} is outside the NodePort "
                           f"range; expected a port in {span} or no value to have one allocated")
        owner = claims.ports.get(np)
        if owner not in (None, key):
            raise Rejected("NodePortTaken", f"{field_}: {np} is already allocated to service "
                           f"{name_of(owner)}; choose a free port in {span} or leave it out "
                           "to have one allocated")
        if proto in mine.get(np, set()):
            raise Rejected("NodePortTaken", f"{field_}: {np}/{proto} is used twice in this "
                           f"service; give each port its own nodePort in {span}")
        mine.setdefault(np, set()).add(proto)
        out.append(np)
    taken = {*claims.ports, *claims.asked_ports, *mine}
    for i, port in enumerate(ports):
        if out[i] is None:
            seed = f"{name_of(key)}/{port.get('name') or port.get('port')}/{port.get('protocol')}"
            np = r.ports.pick(seed, taken)
            if np is None:
                raise Rejected("NodePortRangeExhausted", f"spec.ports[{i}].nodePort: no free "
                               f"port left in {span}; delete a NodePort service")
            out[i] = np
            taken.add(np)
    return out


def allocated(svc: dict, ip: int | None, node_ports: list[int | None]) -> dict:
    """``svc`` with its allocation, the annotation recording it and API-server defaults."""
    out = copy.deepcopy(svc)
    spec = out.setdefault("spec", {})
    text = str(IPv4Address(ip)) if ip is not None else "None"
    spec["clusterIP"], spec["clusterIPs"] = text, [text]
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] in NODE_PORT_TYPES:
        spec.setdefault("externalTrafficPolicy", "Cluster")
    for port, np in zip(spec.get("ports") or [], node_ports, strict=True):
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
        if np is None:
            port.pop("nodePort", None)
        else:
            port["nodePort"] = np
    record = {"clusterIP": text, "nodePorts": sorted({p for p in node_ports if p is not None})}
    meta = out.setdefault("metadata", {})
    meta["annotations"] = {**(meta.get("annotations") or {}),
                           ALLOCATED_ANNOTATION: json.dumps(record, separators=(",", ":"))}
    return out


def _cond(kind: str, ok: bool, reason: str, message: str) -> dict:
    return {"type": kind, "status": "True" if ok else "False", "reason": reason,
            "message": message}


def _load_balancer(r: Ranges, claims: Claims, kv: KeyValue) -> tuple[int | None, dict]:
    """The LoadBalancer address of ``kv`` (claimed here if new) and its condition."""
    key, spec = kv.key, kv.value.get("spec") or {}
    held = [ip for ip, owner in claims.lb.items() if owner == key]
    want = spec.get("loadBalancerIP")
    kind = "LoadBalancerAllocated"
    if held:
        ip = held[0]
    elif want:
        parsed = parse_ip(want)
        if parsed is None or int(parsed) not in r.pool_set:
            pool = f"networking.loadBalancerPool {r.pool}" if r.pool else \
                "networking.loadBalancerPool (none is configured)"
            return None, _cond(kind, False, "LoadBalancerIPNotInPool", f"spec.loadBalancerIP: "
                               f"{want!r} is not a usable address of {pool}; expected an "
                               "address of the pool or no value")
        ip = int(parsed)
        if ip in claims.lb:
            return None, _cond(kind, False, "LoadBalancerIPTaken", f"spec.loadBalancerIP: "
                               f"{want} is already used by service {name_of(claims.lb[ip])}; "
                               "choose a free address of the pool or no value")
    else:
        free = next((a for a in r.pool_ips if a not in claims.lb and a not in claims.asked_lb),
                    None)
        if free is None:
            why = (f"no free address left in networking.loadBalancerPool {r.pool}; delete "
                   "a LoadBalancer service or enlarge the pool") if r.pool else \
                ("no networking.loadBalancerPool is configured; set one in the topology to "
                 "get LoadBalancer addresses")
            return None, _cond(kind, False, "PoolExhausted", f"status.loadBalancer: {why}")
        ip = free
    claims.lb[ip] = key
    return ip, _cond(kind, True, "Allocated", f"ingress IP {IPv4Address(ip)} from "
                     f"networking.loadBalancerPool {r.pool}")


def _summary(ip: int | None, node_ports: list[int | None]) -> str:
    text = f"clusterIP {IPv4Address(ip)}" if ip is not None else "headless (clusterIP None)"
    ports = [str(p) for p in node_ports if p is not None]
    return text + (f", nodePorts {', '.join(ports)}" if ports else "")


def decide(r: Ranges, claims: Claims, snap: Snapshot, kv: KeyValue) -> list[Action]:
    """Phase 2 for one service: the spec update (if any) and its status."""
    svc = kv.value
    if service_type(svc) == "ExternalName":
        return external_name(snap, kv)
    lb_ip: int | None = None
    conditions: list[dict]
    new = svc
    try:
        ip = _cluster_ip(r, claims, kv)
        node_ports = _node_ports(r, claims, kv)
    except Rejected as exc:
        held = [a for a, owner in claims.lb.items() if owner == kv.key]
        lb_ip = held[0] if held else None
        conditions = [_cond("Allocated", False, exc.reason, exc.message)]
    else:
        new = allocated(svc, ip, node_ports)
        if ip is not None:
            claims.ips[ip] = kv.key
        claims.ports.update({np: kv.key for np in node_ports if np is not None})
        conditions = [_cond("Allocated", True, "Allocated", _summary(ip, node_ports))]
        if service_type(svc) == "LoadBalancer":
            lb_ip, lb_cond = _load_balancer(r, claims, kv)
            conditions.append(lb_cond)
    ingress = [{"ip": str(IPv4Address(lb_ip)), "ipMode": "VIP"}] if lb_ip is not None else []
    status = {"loadBalancer": {"ingress": ingress} if ingress else {}, "conditions": conditions}
    return _with_status(snap, kv, new, status)


def _with_status(snap: Snapshot, kv: KeyValue, new: dict, status: dict) -> list[Action]:
    """The spec update (if ``new`` differs) with the status write as its follow-up, so a
    status never reports an allocation whose spec write lost a race; else just the status."""
    status_actions = status_action(snap, kv.key, status)
    if new == kv.value:
        return status_actions
    return [Update(kv.key, new, kv.mod_revision, then=tuple(status_actions))]


def external_name(snap: Snapshot, kv: KeyValue) -> list[Action]:
    """ExternalName services hold nothing: strip what an earlier type was given."""
    new = copy.deepcopy(kv.value)
    spec = new.setdefault("spec", {})
    spec.pop("clusterIP", None)
    spec.pop("clusterIPs", None)
    for port in spec.get("ports") or []:
        port.pop("nodePort", None)
    (new["metadata"].get("annotations") or {}).pop(ALLOCATED_ANNOTATION, None)
    return _with_status(snap, kv, new, {"loadBalancer": {}})


def kubernetes_service(r: Ranges) -> dict:
    """``default/kubernetes``: the first service address, port 443, no selector/endpoints."""
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "kubernetes", "namespace": "default",
                        "labels": {"component": "apiserver", "provider": "kubernetes"}},
           "spec": {"type": "ClusterIP",
                    "ports": [{"name": "https", "protocol": "TCP", "port": 443,
                               "targetPort": 6443}]}}
    return normalize(allocated(svc, r.kubernetes_ip, [None]))


def reconcile_services(snap: Snapshot) -> list[Action]:
    """Allocation actions for every Service, plus ``default/kubernetes`` if it is missing."""
    try:
        r = Ranges.from_config(snap.config)
    except ValueError as exc:
        log.warning("not allocating services: %s", exc)
        return []
    services = sorted(snap.of("services"), key=order)
    claims = Claims()
    for kv in services:
        _guard(kv, _claim_held, r, claims, snap, kv)
    actions: list[Action] = []
    if KUBERNETES_KEY not in snap.objects:
        # Decided like any other service (so its status is written right after it).
        obj = kubernetes_service(r)
        status = decide(r, claims, snap, KeyValue(KUBERNETES_KEY, obj, 0, 0))
        actions.append(Create(KUBERNETES_KEY, obj, then=tuple(status)))
    for kv in services:
        actions += _guard(kv, decide, r, claims, snap, kv) or []
    return actions


def _guard(kv: KeyValue, fn, *args):
    """``fn(*args)``; a malformed service is logged and skipped instead of stopping all."""
    try:
        return fn(*args)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        log.warning("skipping service %s: malformed object (%r)", kv.key, exc)
        return None
