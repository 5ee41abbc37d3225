"""EndpointSlice controller: the pods behind each Service with a selector.

Every pod of the service's namespace that matches the selector, has an IP (from the
status its node agent writes) and has not finished becomes an endpoint; terminating pods
stay (``terminating: true``, ``serving`` still from Ready) until their key is gone. The
ports of an endpoint are the service ports with their targetPort resolved for that pod
(a named targetPort is looked up in the pod's container ports), so pods resolving names
differently end up in different slices, one group per distinct port list. As in
Kubernetes, a port the pod cannot resolve is left out for that pod; a pod resolving none
of the service's ports is left out altogether.

Slices are named ``<service>-<hash of the port list>-<n>`` and hold at most
:data:`MAX_ENDPOINTS` endpoints. To keep churn low, an endpoint stays in the slice it is
already in; new endpoints fill existing slices before new ones are made, and a slice is
only written when its content changes. Only slices labelled as managed by this controller
are touched: those of services without a selector (user-managed) are left alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict

from testbed.cluster.objects import condition, normalize
from testbed.controller.actions import Action, Create, Delete, Update
from testbed.controller.snapshot import Snapshot, is_terminating
from testbed.store.base import KeyValue
from testbed.store.keys import spec_key

log = logging.getLogger("controller")

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "testbed-controller"
MAX_ENDPOINTS = 100
FINISHED_PHASES = ("Succeeded", "Failed")


def selects(selector: dict, labels: dict) -> bool:
    """Equality-based selector match (a Service selector is a plain label map)."""
    return all(labels.get(k) == v for k, v in selector.items())


def resolve_target_port(pod: dict, port: dict) -> int | None:
    """The pod's port number for service ``port``: a numeric targetPort as-is (default:
    ``port``), a named one from the pod's containers' ``ports[].name`` with the same
    protocol; None if the pod has no such port."""
    target = port.get("targetPort")
    if target in (None, "", 0):
        target = port.get("port")
    if isinstance(target, bool):
        return None
    if isinstance(target, int):
        return target
    if not isinstance(target, str):
        return None
    if target.isdigit():
        return int(target)
    proto = port.get("protocol") or "TCP"
    for container in (pod.get("spec") or {}).get("containers") or []:
        for cport in container.get("ports") or []:
            if cport.get("name") == target and (cport.get("protocol") or "TCP") == proto:
                number = cport.get("containerPort")
                return number if isinstance(number, int) else None
    return None


def endpoint_ports(svc: dict, pod: dict) -> tuple | None:
    """The pod's resolved port list as a hashable tuple of (name, protocol, port,
    appProtocol); None when the service has ports and the pod resolves none of them."""
    ports = (svc.get("spec") or {}).get("ports") or []
    out = []
    for port in ports:
        number = resolve_target_port(pod, port)
        if number is not None:
            out.append((port.get("name") or "", port.get("protocol") or "TCP", number,
                        port.get("appProtocol")))
    if ports and not out:
        return None
    return tuple(out)


def _port_dicts(ports: tuple) -> list[dict]:
    out = []
    for name, proto, number, app in ports:
        entry = {"name": name, "protocol": proto, "port": number}
        if app:
            entry["appProtocol"] = app
        out.append(entry)
    return out


def ports_hash(ports: tuple) -> str:
    """Short stable hash of a port list (part of the slice name)."""
    raw = json.dumps(_port_dicts(ports), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:8]


def endpoint(svc: dict, pod: KeyValue, status: dict) -> dict:
    """One slice endpoint for ``pod`` (which has an IP in ``status``)."""
    meta, spec = pod.value["metadata"], pod.value.get("spec") or {}
    serving = condition(status, "Ready")
    terminating = is_terminating(pod.value)
    publish = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
    ep: dict = {"addresses": [status["podIP"]],
                "conditions": {"ready": publish or (serving and not terminating),
                               "serving": serving, "terminating": terminating}}
    if spec.get("nodeName"):
        ep["nodeName"] = spec["nodeName"]
    if spec.get("hostname") and spec.get("subdomain") == svc["metadata"]["name"]:
        ep["hostname"] = spec["hostname"]
    ep["targetRef"] = {"kind": "Pod", "name": meta["name"], "namespace": meta["namespace"],
                       "uid": meta.get("uid")}
    return ep


def endpoint_groups(snap: Snapshot, svc: dict, pods: list[KeyValue]) -> dict[tuple, dict]:
    """Endpoints of ``svc`` grouped by resolved port list: ports -> {pod uid: endpoint}."""
    selector = (svc.get("spec") or {}).get("selector") or {}
    groups: dict[tuple, dict] = defaultdict(dict)
    for pod in pods:
        if not selects(selector, pod.value["metadata"].get("labels") or {}):
            continue
        status = snap.pod_status(pod) or {}
        if not status.get("podIP") or status.get("phase") in FINISHED_PHASES:
            continue
        ports = endpoint_ports(svc, pod.value)
        if ports is None:
            continue
        uid = pod.value["metadata"].get("uid") or pod.key
        groups[ports][uid] = endpoint(svc, pod, status)
    return groups


def _uid(ep: dict) -> str | None:
    return (ep.get("targetRef") or {}).get("uid")


def _index(name: str, base: str) -> int | None:
    head, sep, tail = name.rpartition("-")
    return int(tail) if head == base and sep and tail.isdigit() else None


def place(base: str, endpoints: dict[str, dict], existing: dict[str, dict]) -> dict[str, list]:
    """Slice name -> endpoints for one port group, keeping endpoints where they are.

    ``existing`` maps current slice names to their stored objects. Endpoints already in a
    slice stay there (up to the limit); the rest, by pod name, fill slices with room in
    index order, then new slices with the lowest free indexes. Empty slices are dropped.
    """
    current = sorted((i, n) for n in existing if (i := _index(n, base)) is not None)
    slices: dict[str, list] = {}
    placed: set[str] = set()
    for _, name in current:
        kept = []
        for ep in existing[name].get("endpoints") or []:
            uid = _uid(ep)
            if uid in endpoints and uid not in placed and len(kept) < MAX_ENDPOINTS:
                kept.append(endpoints[uid])
                placed.add(uid)
        slices[name] = kept
    rest = sorted((ep for uid, ep in endpoints.items() if uid not in placed),
                  key=lambda ep: (ep["targetRef"]["name"], _uid(ep) or ""))
    used = {i for i, _ in current}
    index = 0
    while rest:
        for name in list(slices):
            room = MAX_ENDPOINTS - len(slices[name])
            if room > 0 and rest:
                slices[name] += rest[:room]
                rest = rest[room:]
        if rest:
            while index in used:
                index += 1
            used.add(index)
            slices[f"{base}-{index}"] = []
    return {name: sorted(eps, key=lambda ep: (ep["targetRef"]["name"], _uid(ep) or ""))
            for name, eps in slices.items() if eps}


def slice_object(svc: dict, name: str, ports: tuple, endpoints: list) -> dict:
    """An EndpointSlice of ``svc`` (without the fields ``normalize`` fills in)."""
    meta = svc["metadata"]
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": meta["namespace"],
                         "labels": {SERVICE_NAME_LABEL: meta["name"], MANAGED_BY_LABEL: MANAGED_BY},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Service",
                                              "name": meta["name"], "uid": meta.get("uid"),
                                              "controller": True, "blockOwnerDeletion": True}]},
            "addressType": "IPv4", "endpoints": endpoints, "ports": _port_dicts(ports)}


def managed(kv: KeyValue) -> bool:
    """True for slices this controller manages."""
    labels = kv.value.get("metadata", {}).get("labels") or {}
    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY


def desired_slices(snap: Snapshot, svc: dict, pods: list[KeyValue],
                   existing: list[KeyValue]) -> dict[str, dict]:
    """Store key -> desired slice object for one service (empty: no slices wanted)."""
    spec = svc.get("spec") or {}
    if not spec.get("selector") or (spec.get("type") or "ClusterIP") == "ExternalName":
        return {}
    ns, svc_name = svc["metadata"]["namespace"], svc["metadata"]["name"]
    by_name = {kv.value["metadata"]["name"]: kv.value for kv in existing}
    out: dict[str, dict] = {}
    for ports, endpoints in sorted(endpoint_groups(snap, svc, pods).items(),
                                   key=lambda item: ports_hash(item[0])):
        base = f"{svc_name}-{ports_hash(ports)}"
        for name, eps in place(base, endpoints, by_name).items():
            out[spec_key("EndpointSlice", ns, name)] = slice_object(svc, name, ports, eps)
    return out


def reconcile_endpointslices(snap: Snapshot) -> list[Action]:
    """Create/update/delete managed EndpointSlices so they match every service's pods."""
    pods_by_ns: dict[str, list[KeyValue]] = defaultdict(list)
    for kv in snap.of("pods"):
        pods_by_ns[kv.value["metadata"].get("namespace", "default")].append(kv)
    slices_by_svc: dict[tuple, list[KeyValue]] = defaultdict(list)
    ours = [kv for kv in snap.of("endpointslices") if managed(kv)]
    for kv in ours:
        meta = kv.value["metadata"]
        slices_by_svc[(meta.get("namespace"), meta["labels"].get(SERVICE_NAME_LABEL))].append(kv)

    wanted: dict[str, dict] = {}
    keep: set[str] = set()
    for svc_kv in snap.of("services"):
        meta = svc_kv.value.get("metadata") or {}
        existing = slices_by_svc.get((meta.get("namespace"), meta.get("name")), [])
        try:
            wanted.update(desired_slices(snap, svc_kv.value, pods_by_ns[meta["namespace"]],
                                         existing))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            log.warning("skipping endpointslices of %s: malformed object (%r)", svc_kv.key, exc)
            keep.update(kv.key for kv in existing)

    actions: list[Action] = []
    for key, obj in sorted(wanted.items()):
        current = snap.objects.get(key)
        if current is None:
            actions.append(Create(key, normalize(obj)))
        elif not managed(current):
            log.warning("not overwriting %s: it is not managed by %s", key, MANAGED_BY)
        elif (new := normalize(obj, current.value)) != current.value:
            actions.append(Update(key, new, current.mod_revision))
    for kv in ours:
        if kv.key not in wanted and kv.key not in keep:
            actions.append(Delete(kv.key, kv.mod_revision))
    return actions
