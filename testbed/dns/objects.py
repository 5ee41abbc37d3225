"""What the DNS needs from Kubernetes objects: Services with their ready endpoints (pure).

:func:`compile_service` reduces one Service plus its EndpointSlices to a
:class:`ServiceInfo`. An endpoint is *ready* unless ``conditions.ready`` is false
(unset counts as ready, as in Kubernetes); with ``publishNotReadyAddresses`` (or the
``tolerate-unready-endpoints`` annotation) every endpoint counts. An endpoint's
hostname is its ``hostname``, else the ``spec.hostname`` of the pod it refers to when
that pod's ``spec.subdomain`` is the service (what the endpoints controller does),
else its dashed IP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from testbed.dns.names import canonical_ip, fqdn, ip_label

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
TOLERATE_UNREADY = "service.alpha.kubernetes.io/tolerate-unready-endpoints"

Port = tuple[str, str, int]  # (name, protocol, number), name and protocol lowercase
Ref = tuple[str, str]  # (namespace, name), lowercase


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    """One ready endpoint address of a headless service."""

    ip: str
    label: str  # hostname, or the dashed IP
    ports: tuple[Port, ...]


@dataclass(slots=True)
class ServiceInfo:
    """The DNS-relevant part of a Service."""

    namespace: str
    name: str
    kind: str  # "ClusterIP", "Headless" or "ExternalName"
    ips: tuple[str, ...] = ()
    external: str = ""
    ports: tuple[Port, ...] = ()
    endpoints: list[EndpointInfo] = field(default_factory=list)


def ref(obj: dict) -> Ref:
    """(namespace, name) of an object, lowercase; namespace defaults to ``default``."""
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or "default").lower(), str(meta.get("name") or "").lower()


def slice_owner(endpoint_slice: dict) -> Ref | None:
    """The (namespace, service) an EndpointSlice belongs to, from its service-name label."""
    meta = endpoint_slice.get("metadata") or {}
    owner = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return (ref(endpoint_slice)[0], str(owner).lower()) if owner else None


def pod_subdomain(pod: dict) -> Ref | None:
    """(namespace, subdomain) of a pod with ``spec.hostname`` and ``spec.subdomain``."""
    spec = pod.get("spec") or {}
    if spec.get("hostname") and spec.get("subdomain"):
        return ref(pod)[0], str(spec["subdomain"]).lower()
    return None


def valid_ips(values: Iterable[object]) -> tuple[str, ...]:
    """The well-formed IPs among ``values``, canonical and deduplicated, in order."""
    return tuple(dict.fromkeys(ip for ip in map(canonical_ip, values) if ip is not None))


def pod_ips(pod: dict) -> tuple[str, ...]:
    """IPs of a pod from ``status.podIP`` / ``status.podIPs``."""
    status = pod.get("status") or {}
    return valid_ips([status.get("podIP"), *(p.get("ip") for p in status.get("podIPs") or ())])


def _ports(raw: Iterable[dict] | None) -> tuple[Port, ...]:
    out = []
    for p in raw or ():
        name, port = str(p.get("name") or "").lower(), p.get("port")
        if name and isinstance(port, int):
            out.append((name, str(p.get("protocol") or "TCP").lower(), port))
    return tuple(out)


def _publish_all(svc: dict) -> bool:
    annotations = (svc.get("metadata") or {}).get("annotations") or {}
    return bool((svc.get("spec") or {}).get("publishNotReadyAddresses")) or (
        str(annotations.get(TOLERATE_UNREADY, "")).lower() == "true")


def _hostname(ep: dict, svc: Ref, pods: Callable[[Ref], dict | None]) -> str:
    if ep.get("hostname"):
        return str(ep["hostname"]).lower()
    target = ep.get("targetRef") or {}
    if target.get("kind", "Pod") == "Pod" and target.get("name"):
        pod = pods((svc[0], str(target["name"]).lower()))
        if pod is not None and pod_subdomain(pod) == svc:
            return str(pod["spec"]["hostname"]).lower()
    return ""


def compile_service(
    svc: dict,
    slices: Iterable[dict] = (),
    pods: Callable[[Ref], dict | None] = lambda _ref: None,
) -> ServiceInfo | None:
    """The :class:`ServiceInfo` of ``svc`` (None if unusable); ``slices`` are its slices.

    ``pods`` looks a pod up by (namespace, name) for endpoint hostnames.
    """
    ns, name = ref(svc)
    spec = svc.get("spec") or {}
    if not name:
        return None
    info = ServiceInfo(ns, name, "ClusterIP", ports=_ports(spec.get("ports")))
    if spec.get("type") == "ExternalName":
        info.kind, info.external = "ExternalName", fqdn(str(spec.get("externalName") or ""))
        return info if info.external != "." else None
    if spec.get("clusterIP") != "None":
        info.ips = valid_ips([spec.get("clusterIP"), *(spec.get("clusterIPs") or ())])
        return info
    info.kind = "Headless"
    publish_all, seen = _publish_all(svc), set()
    for sl in sorted(slices, key=lambda x: ref(x)[1]):  # stable order whatever the input
        if slice_owner(sl) != (ns, name) or sl.get("addressType") == "FQDN":
            continue
        ports = _ports(sl.get("ports"))
        for ep in sl.get("endpoints") or ():
            if not publish_all and (ep.get("conditions") or {}).get("ready") is False:
                continue
            host = _hostname(ep, (ns, name), pods)
            for ip in valid_ips(ep.get("addresses") or ()):
                e = EndpointInfo(ip, host or ip_label(ip), ports)
                if (e.ip, e.label) not in seen:
                    seen.add((e.ip, e.label))
                    info.endpoints.append(e)
    return info


__all__ = [
    "SERVICE_NAME_LABEL",
    "TOLERATE_UNREADY",
    "EndpointInfo",
    "ServiceInfo",
    "compile_service",
    "pod_ips",
    "pod_subdomain",
    "ref",
    "slice_owner",
    "valid_ips",
]
