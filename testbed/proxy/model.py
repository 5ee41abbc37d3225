"""The service proxy's model: Services + EndpointSlices -> one sorted tuple of service ports.

Pure: no I/O. Every backend (iptables, nftables, ipvs, ebpf) renders from this model, so the
Kubernetes semantics (which endpoints serve which traffic) are decided exactly once, here.

Endpoint selection follows kube-proxy's ``CategorizeEndpoints`` (topology hints aside):

* cluster pool: ready endpoints; if none is ready anywhere, serving+terminating ones;
* local pool: ready endpoints on this node; if none, serving+terminating ones on this node;
* ``internalTrafficPolicy: Local`` -> cluster-IP traffic uses the local pool only;
* ``externalTrafficPolicy: Local`` -> NodePort/LB/external-IP traffic uses the local pool
  only and keeps the client source IP; traffic to those addresses from pods or from the node
  itself is short-circuited to the cluster pool (as if it went out to a load balancer and
  came back), which is why the cluster pool is still computed for such services.
"""

from __future__ import annotations

import ipaddress
import socket
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from testbed.proxy.gcpause import gc_paused

DEFAULT_AFFINITY_TIMEOUT = 10800  # seconds; the API default for sessionAffinityConfig
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SUPPORTED_PROTOCOLS = ("TCP", "UDP")  # SCTP is skipped: no rules at all


class cached:  # noqa: N801 - used like functools.cached_property
    """``functools.cached_property`` without the lock Python 3.11 takes on every first
    access (7 µs each; it dominated a 10k-service render). Model objects are immutable and
    built by one thread, so a race at worst computes a value twice."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.fn(obj)  # later reads never reach here
        return value


@dataclass(frozen=True)
class NodeContext:
    """What a backend needs to know about the node it programs.

    ``cluster_cidr`` is the pod subnet (kube-proxy's ``--cluster-cidr``): traffic from outside
    it to a cluster IP is masqueraded, traffic from inside it to an external-policy-Local
    address is short-circuited. ``node_ips`` lists every node's IP (for backends that need to
    tell node traffic from pod traffic without addrtype/fib lookups).
    """

    node_name: str
    node_ip: str
    cluster_cidr: str
    interface: str = "eth0"
    node_ips: tuple[str, ...] | frozenset[str] = ()


@dataclass(frozen=True, order=True)
class Endpoint:
    """One backend address of a service port, with its EndpointSlice conditions."""

    ip: str
    port: int
    node: str | None = None
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    is_local: bool = False

    @property
    def addr(self) -> str:
        """``ip:port`` as kube-proxy spells an endpoint (also its hash input)."""
        return f"{self.ip}:{self.port}"


def _ip_key(ep: Endpoint) -> tuple[bytes, int]:
    return socket.inet_aton(ep.ip), ep.port


def categorize_endpoints(
    endpoints: tuple[Endpoint, ...], itp_local: bool, etp_local: bool, externally_accessible: bool
) -> tuple[tuple[Endpoint, ...], tuple[Endpoint, ...], bool]:
    """kube-proxy's CategorizeEndpoints: ``(cluster_pool, local_pool, has_any_endpoints)``."""
    uses_cluster = not itp_local or externally_accessible  # ETP=Local still short-circuits
    uses_local = itp_local or (etp_local and externally_accessible)
    cluster: tuple[Endpoint, ...] = ()
    has_any = False
    if uses_cluster:
        cluster = tuple(e for e in endpoints if e.ready)
        if not cluster:  # nothing ready anywhere: keep serving terminating pods in rotation
            cluster = tuple(e for e in endpoints if e.serving and e.terminating)
        has_any = bool(cluster)
    local: tuple[Endpoint, ...] = ()
    if uses_local:
        has_any = has_any or any(e.ready or (e.serving and e.terminating) for e in endpoints)
        local = tuple(e for e in endpoints if e.is_local and e.ready)
        if not local:
            local = tuple(e for e in endpoints if e.is_local and e.serving and e.terminating)
    return cluster, local, has_any


@dataclass(frozen=True)
class ServicePortInfo:
    """One (service, port) the proxy programs. ``endpoints`` holds every slice endpoint for
    the port (sorted by IP, port); the pools used for traffic are derived properties."""

    namespace: str
    name: str
    port_name: str
    protocol: str  # "TCP" or "UDP"
    cluster_ip: str
    port: int
    node_port: int = 0
    load_balancer_ips: tuple[str, ...] = ()
    external_ips: tuple[str, ...] = ()
    affinity_timeout: int | None = None  # seconds when sessionAffinity is ClientIP
    external_policy_local: bool = False
    internal_policy_local: bool = False
    endpoints: tuple[Endpoint, ...] = ()

    def __hash__(self) -> int:
        # Hashed by every memoised renderer; the generated hash would walk all endpoints
        # each time, so compute it once per (immutable) instance.
        return self._hash

    @cached
    def _hash(self) -> int:
        return hash(tuple(getattr(self, f) for f in self.__dataclass_fields__))

    @cached
    def service_key(self) -> str:
        """``namespace/name``: the unit of change for incremental syncs."""
        return f"{self.namespace}/{self.name}"

    @cached
    def port_key(self) -> str:
        """kube-proxy's ServicePortName string: ``ns/name:port`` (``ns/name`` if unnamed)."""
        return self.service_key + (f":{self.port_name}" if self.port_name else "")

    @property
    def internal_local(self) -> bool:
        """Alias of ``internal_policy_local`` (the name other backends use)."""
        return self.internal_policy_local

    @property
    def external_local(self) -> bool:
        """Alias of ``external_policy_local``."""
        return self.external_policy_local

    @cached
    def proto(self) -> str:
        """Lower-case protocol as used in rules and hashes (``tcp``/``udp``)."""
        return self.protocol.lower()

    @property
    def externally_accessible(self) -> bool:
        """Reachable via a NodePort, a load-balancer IP or an external IP."""
        return bool(self.node_port or self.load_balancer_ips or self.external_ips)

    @cached
    def _pools(self) -> tuple[tuple[Endpoint, ...], tuple[Endpoint, ...], bool]:
        return categorize_endpoints(
            self.endpoints,
            self.internal_policy_local,
            self.external_policy_local,
            self.externally_accessible,
        )

    @property
    def cluster_endpoints(self) -> tuple[Endpoint, ...]:
        """Endpoints for Cluster traffic policy (empty when no traffic uses that pool)."""
        return self._pools[0]

    @property
    def local_endpoints(self) -> tuple[Endpoint, ...]:
        """This node's endpoints for Local traffic policy (empty when unused)."""
        return self._pools[1]

    @property
    def has_endpoints(self) -> bool:
        """Any usable endpoint anywhere; False means connections must be refused."""
        return self._pools[2]

    @property
    def internal_endpoints(self) -> tuple[Endpoint, ...]:
        """The pool cluster-IP traffic is balanced over."""
        return self.local_endpoints if self.internal_policy_local else self.cluster_endpoints

    @property
    def external_endpoints(self) -> tuple[Endpoint, ...]:
        """The pool off-cluster NodePort/LB/external-IP traffic is balanced over."""
        return self.local_endpoints if self.external_policy_local else self.cluster_endpoints

    @property
    def has_internal_endpoints(self) -> bool:
        """Cluster-IP traffic gets DNAT (else REJECT, or DROP for ITP=Local w/o local ones)."""
        return self.has_endpoints and bool(self.internal_endpoints)

    @property
    def has_external_endpoints(self) -> bool:
        """External traffic gets DNAT (else REJECT, or DROP for ETP=Local w/o local ones)."""
        return self.has_endpoints and bool(self.external_endpoints)

    @cached
    def reachable_endpoints(self) -> tuple[Endpoint, ...]:
        """Union of the pools in use, in ``endpoints`` order: the endpoints needing DNAT."""
        used = set(self.cluster_endpoints) | set(self.local_endpoints)
        return tuple(e for e in self.endpoints if e in used)


def _sort_key(p: ServicePortInfo) -> tuple[str, str, str, str]:
    return (p.namespace, p.name, p.port_name, p.protocol)


class ProxyModel(tuple[ServicePortInfo, ...]):
    """The model: a tuple of :class:`ServicePortInfo`, always sorted by (namespace, name,
    port name, protocol) so renders are deterministic and diffs can merge-walk.
    ``.services`` is the same tuple, for callers that prefer a named field.

    A model made by :meth:`with_services` remembers which services it replaced in its parent,
    so :func:`changed_services` between the two costs O(changed), not O(model)."""

    def __new__(cls, ports: Iterable[ServicePortInfo] = ()) -> ProxyModel:
        return super().__new__(cls, sorted(ports, key=_sort_key))  # O(n) when sorted

    @property
    def services(self) -> tuple[ServicePortInfo, ...]:
        """All service ports (the model itself)."""
        return self

    def _span(self, key: tuple[str, str]) -> tuple[int, int]:
        lo = bisect_left(self, key, key=_service_of)
        return lo, bisect_right(self, key, lo=lo, key=_service_of)

    def ports_of(self, key: tuple[str, str]) -> tuple[ServicePortInfo, ...]:
        """The ports of service ``(namespace, name)`` (binary search)."""
        lo, hi = self._span(key)
        return tuple(self[lo:hi])

    def with_services(
        self, updates: Mapping[tuple[str, str], Iterable[ServicePortInfo]]
    ) -> ProxyModel:
        """A new model where each ``(namespace, name)`` in ``updates`` has exactly the given
        ports (none: the service is gone). Unchanged ports stay the same objects."""
        parts: list[tuple[ServicePortInfo, ...]] = []
        delta: dict[tuple[str, str], tuple[tuple, tuple]] = {}
        at = 0
        for key in sorted(updates):
            lo, hi = self._span(key)
            ports = tuple(sorted(updates[key], key=_sort_key))
            if any(_service_of(p) != key for p in ports):
                raise ValueError(f"ports given for {key} belong to another service")
            delta[key] = (tuple(self[lo:hi]), ports)
            parts += [self[at:lo], ports]
            at = hi
        parts.append(self[at:])
        new = tuple.__new__(ProxyModel, (p for part in parts for p in part))
        self.__dict__.pop("_delta", None)  # keep one generation: no chain of old models
        new.__dict__["_delta"] = (self, delta)
        return new


def _service_of(p: ServicePortInfo) -> tuple[str, str]:
    return (p.namespace, p.name)


def _known_delta(old: ProxyModel, new: ProxyModel) -> dict | None:
    """The replaced services when ``new`` was made from ``old`` by ``with_services``."""
    found = getattr(new, "__dict__", {}).get("_delta")
    return found[1] if found is not None and found[0] is old else None


def _ipv4(value: Any) -> str | None:
    try:
        return str(ipaddress.IPv4Address(str(value)))
    except (ipaddress.AddressValueError, ValueError):
        return None


def _cluster_ip(spec: Mapping[str, Any]) -> str | None:
    # clusterIPs (dual-stack) wins over clusterIP; we program only the IPv4 family.
    candidates = list(spec.get("clusterIPs") or []) or [spec.get("clusterIP")]
    for cand in candidates:
        if cand in (None, "", "None"):
            return None  # headless or not allocated yet: kube-proxy skips it
        ip = _ipv4(cand)
        if ip:
            return ip
    return None


def _slice_endpoints(
    slices: Iterable[Mapping[str, Any]], port_name: str, protocol: str, node_name: str
) -> tuple[Endpoint, ...]:
    found: dict[tuple[str, int], Endpoint] = {}
    for sl in slices:
        if sl.get("addressType", "IPv4") != "IPv4":
            continue
        numbers = [
            p.get("port")
            for p in sl.get("ports") or []
            if (p.get("name") or "") == port_name and (p.get("protocol") or "TCP") == protocol
        ]
        for number in numbers:
            if not isinstance(number, int) or not 0 < number < 65536:
                continue
            for ep in sl.get("endpoints") or []:
                ip = _ipv4((ep.get("addresses") or [None])[0])  # addresses are fungible
                if ip is None:
                    continue
                cond = ep.get("conditions") or {}
                node = ep.get("nodeName")
                new = Endpoint(
                    ip=ip,
                    port=number,
                    node=node,
                    ready=cond.get("ready") is not False,  # nil means ready (API contract)
                    serving=cond.get("serving") is not False,
                    terminating=cond.get("terminating") is True,
                    is_local=node is not None and node == node_name,
                )
                old = found.get((ip, number))
                # The same address can sit in two slices during a rollout: prefer ready.
                if old is None or (new.ready and not old.ready):
                    found[(ip, number)] = new
    return tuple(sorted(found.values(), key=_ip_key))


def _service_ports(
    svc: Mapping[str, Any], slices: list[Mapping[str, Any]], node_name: str
) -> list[ServicePortInfo]:
    meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
    svc_type = spec.get("type") or "ClusterIP"
    cluster_ip = _cluster_ip(spec)
    if svc_type == "ExternalName" or cluster_ip is None:
        return []
    lb_ips: tuple[str, ...] = ()
    if svc_type == "LoadBalancer":
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        lb_ips = tuple(sorted({ip for i in ingress if (ip := _ipv4(i.get("ip")))}))
    ext_ips = tuple(sorted({ip for e in spec.get("externalIPs") or [] if (ip := _ipv4(e))}))
    timeout = None
    if spec.get("sessionAffinity") == "ClientIP":
        cfg = ((spec.get("sessionAffinityConfig") or {}).get("clientIP")) or {}
        timeout = int(cfg.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)
    itp_local = spec.get("internalTrafficPolicy") == "Local"
    out = []
    for sp in spec.get("ports") or []:
        protocol = sp.get("protocol") or "TCP"
        port = sp.get("port")
        if protocol not in SUPPORTED_PROTOCOLS or not isinstance(port, int):
            continue
        node_port = (sp.get("nodePort") or 0) if svc_type in ("NodePort", "LoadBalancer") else 0
        port_name = sp.get("name") or ""
        info = ServicePortInfo(
            namespace=meta.get("namespace") or "default",
            name=meta["name"],
            port_name=port_name,
            protocol=protocol,
            cluster_ip=cluster_ip,
            port=port,
            node_port=int(node_port),
            load_balancer_ips=lb_ips,
            external_ips=ext_ips,
            affinity_timeout=timeout,
            internal_policy_local=itp_local,
            endpoints=_slice_endpoints(slices, port_name, protocol, node_name),
        )
        # kube-proxy: ETP=Local only means something for externally reachable ports.
        etp_local = spec.get("externalTrafficPolicy") == "Local" and info.externally_accessible
        out.append(replace(info, external_policy_local=True) if etp_local else info)
    return out


def build_model(
    services: Iterable[Mapping[str, Any]],
    slices: Iterable[Mapping[str, Any]],
    node_name: str,
) -> ProxyModel:
    """Build the proxy model for ``node_name`` from Service and EndpointSlice dicts.

    Headless, ExternalName and SCTP ports produce nothing; ports are matched to slice ports
    by (name, protocol), so a named targetPort works through the numbers the slices carry.
    The result is sorted by (namespace, name, port name, protocol) so renders are stable.
    """
    with gc_paused():  # many small objects: a GC pass mid-build costs more than the build
        return _build(services, slices, node_name)


def _build(
    services: Iterable[Mapping[str, Any]], slices: Iterable[Mapping[str, Any]], node_name: str
) -> ProxyModel:
    by_service: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for sl in slices:
        meta = sl.get("metadata") or {}
        svc_name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if svc_name:
            by_service[(meta.get("namespace") or "default", svc_name)].append(sl)
    ports: list[ServicePortInfo] = []
    for svc in services:
        meta = svc.get("metadata") or {}
        if not meta.get("name"):
            continue
        key = (meta.get("namespace") or "default", meta["name"])
        ports.extend(_service_ports(svc, by_service.get(key, []), node_name))
    return ProxyModel(ports)


def changed_services(old: ProxyModel, new: ProxyModel) -> set[tuple[str, str]]:
    """``(namespace, name)`` of services whose ports differ; merge-walks the sorted models
    port by port (an unchanged port costs an identity or hash check). O(changed) when
    ``new`` came from ``old`` through :meth:`ProxyModel.with_services`."""
    delta = _known_delta(old, new)
    if delta is not None:
        return {key for key, (was, now) in delta.items() if was != now}
    gone, changed = _walk_ports(old, new)
    return {_service_of(p) for p in (*gone, *changed)}


def diff(old: ProxyModel, new: ProxyModel) -> frozenset[str]:
    """Service keys (``namespace/name``) whose ports or endpoints differ between models."""
    return frozenset(f"{ns}/{name}" for ns, name in changed_services(old, new))


def changed_ports(old: ProxyModel, new: ProxyModel) -> tuple[list, list]:
    """(ports only in ``old``, ports new or different in ``new``), matched by (namespace,
    name, port name, protocol); O(changed) for a model made by ``with_services``."""
    delta = _known_delta(old, new)
    if delta is None:
        return _walk_ports(old, new)
    gone, changed = [], []
    for was, now in delta.values():
        if was != now:
            more_gone, more_changed = _walk_ports(was, now)
            gone += more_gone
            changed += more_changed
    return gone, changed


def _walk_ports(old, new) -> tuple[list, list]:
    gone, changed = [], []
    i = j = 0
    while i < len(old) and j < len(new):
        a, b = old[i], new[j]
        if a is b or (hash(a) == hash(b) and a == b):
            i += 1
            j += 1
            continue
        ka, kb = _sort_key(a), _sort_key(b)
        if ka == kb:
            changed.append(b)
            i += 1
            j += 1
        elif ka < kb:
            gone.append(a)
            i += 1
        else:
            changed.append(b)
            j += 1
    gone.extend(old[i:])
    changed.extend(new[j:])
    return gone, changed
