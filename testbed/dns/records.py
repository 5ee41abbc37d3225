"""Cluster DNS records per the Kubernetes DNS-Based Service Discovery spec 1.1.0 (pure).

:func:`build_zone` turns Services, EndpointSlices and Pods (Kubernetes-shaped dicts)
into a :class:`Zone`; :meth:`Zone.lookup` answers ``(name, qtype)`` with an
:class:`Answer` (rcode, answer/authority/additional records), or None when the name
is not ours (outside the cluster domain, or a reverse name of no cluster IP), in
which case the server forwards it. Records:

* ``dns-version.<zone> TXT "1.1.0"``
* ClusterIP service: ``<svc>.<ns>.svc.<zone>`` A/AAAA, ``_<port>._<proto>.<svc>...`` SRV
  to the service name, PTR for each cluster IP.
* Headless service: one A/AAAA per *ready* endpoint (every endpoint if
  ``publishNotReadyAddresses``), ``<hostname>.<svc>...`` A/AAAA per endpoint (the
  hostname is the endpoint's ``hostname``, the pod's ``hostname`` when its
  ``subdomain`` is the service, else the dashed IP ``a-b-c-d``), SRV per endpoint
  and named port, PTR per endpoint IP; NXDOMAIN when there is no ready endpoint.
* ExternalName service: CNAME (chased inside the zone; the server chases outside).
* ``a-b-c-d.<ns>.pod.<zone>`` A (IPv6: dashes for colons): any well-formed IP in
  ``insecure`` mode (CoreDNS ``pods insecure``), only IPs of pods in that
  namespace in ``verified`` mode.

Names that exist only as part of the tree (``svc.<zone>``, ``<ns>.svc.<zone>``,
``_tcp.<svc>...``) and existing names without the asked type answer NOERROR with no
records (NODATA); names that do not exist answer NXDOMAIN. Negative answers carry the
zone's SOA (``ns.dns.<zone>. hostmaster.<zone>.``) whose minimum is the TTL.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from testbed.dns.names import dashed_ip, fqdn, reverse_name, split_under
from testbed.dns.objects import ServiceInfo, compile_service, pod_ips, ref, slice_owner

SCHEMA_VERSION = "1.1.0"
DEFAULT_TTL = 5
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
#: Namespaces that always exist in a Kubernetes cluster (for NXDOMAIN vs NODATA).
IMPLICIT_NAMESPACES = frozenset({"default", "kube-system"})
POD_MODES = ("insecure", "verified", "disabled")
_MAX_CHAIN = 8


@dataclass(frozen=True, slots=True)
class Record:
    """One resource record.

    ``name`` is a lowercase FQDN with the trailing dot; ``data`` is a string for
    A/AAAA/CNAME/PTR/TXT, ``(priority, weight, port, target)`` for SRV and
    ``(mname, rname, serial, refresh, retry, expire, minimum)`` for SOA.
    """

    name: str
    rtype: str
    ttl: int
    data: str | tuple


@dataclass(frozen=True, slots=True)
class Answer:
    """A zone's reply: rcode and the answer, authority and additional sections."""

    rcode: int
    answers: tuple[Record, ...] = ()
    authority: tuple[Record, ...] = ()
    additional: tuple[Record, ...] = ()


def _addr_type(ip: str) -> str:
    return "AAAA" if ":" in ip else "A"


def build_zone(
    services: Iterable[dict],
    endpoint_slices: Iterable[dict] = (),
    pods: Iterable[dict] = (),
    *,
    namespaces: Iterable[str] = (),
    domain: str = "cluster.local",
    ttl: int = DEFAULT_TTL,
    pod_mode: str = "insecure",
    serial: int = 1,
) -> Zone:
    """Build the cluster zone from Services, EndpointSlices and Pods (with status merged).

    ``namespaces``: names of Namespace objects (namespaces of any given object, plus
    ``default`` and ``kube-system``, exist anyway). ``pod_mode``: ``insecure``,
    ``verified`` or ``disabled`` (pod A records). ``serial``: the SOA serial.
    """
    zone = Zone(domain, ttl, pod_mode, serial)
    zone.namespaces.update(n.lower() for n in namespaces)
    pod_index: dict[tuple[str, str], dict] = {}
    for pod in pods:
        key = ref(pod)
        pod_index[key] = pod
        zone.namespaces.add(key[0])
        zone.pod_ips.setdefault(key[0], Counter()).update(pod_ips(pod))
    by_owner: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for sl in endpoint_slices:
        owner = slice_owner(sl)
        if owner is not None:
            by_owner[owner].append(sl)
    for svc in services:
        info = compile_service(svc, by_owner.get(ref(svc), ()), pod_index.get)
        if info is not None:
            zone.set_service(info)
            zone.namespaces.add(info.namespace)
    return zone


class Zone:
    """The cluster zone (see the module docstring for its records).

    Built whole by :func:`build_zone`; kept current per object by
    :class:`~testbed.dns.index.ClusterIndex` through :meth:`set_service`,
    :attr:`namespaces` and :attr:`pod_ips`.
    """

    def __init__(self, domain: str = "cluster.local", ttl: int = DEFAULT_TTL,
                 pod_mode: str = "insecure", serial: int = 1) -> None:
        if pod_mode not in POD_MODES:
            raise ValueError(f"pod_mode must be one of {POD_MODES}, not {pod_mode!r}")
        self.domain = fqdn(domain)
        self.ttl = ttl
        self.pod_mode = pod_mode
        self.serial = serial
        #: Existing namespaces (NODATA rather than NXDOMAIN for ``<ns>.svc.<zone>``).
        self.namespaces: set[str] = set(IMPLICIT_NAMESPACES)
        #: Pod IPs by namespace (``verified`` pod mode); counts let owners share an IP.
        self.pod_ips: dict[str, Counter[str]] = {}
        self._services: dict[tuple[str, str], ServiceInfo] = {}
        self._ptr: dict[str, list[str]] = {}

    def _ptr_targets(self, s: ServiceInfo) -> list[tuple[str, str]]:
        base = f"{s.name}.{s.namespace}.svc.{self.domain}"
        return [(reverse_name(ip), base) for ip in s.ips] + [
            (reverse_name(e.ip), f"{e.label}.{base}") for e in s.endpoints]

    def set_service(self, info: ServiceInfo | None, key: tuple[str, str] | None = None) -> None:
        """Add or replace a service's records; ``info=None`` removes the service ``key``."""
        key = key or (info.namespace, info.name)  # type: ignore[union-attr]
        old = self._services.pop(key, None)
        for owner, target in self._ptr_targets(old) if old else ():
            targets = self._ptr.get(owner, [])
            if target in targets:
                targets.remove(target)
                if not targets:
                    del self._ptr[owner]
        if info is None:
            return
        self._services[key] = info
        for owner, target in self._ptr_targets(info):
            targets = self._ptr.setdefault(owner, [])
            if target not in targets:
                targets.append(target)

    # -- public API --------------------------------------------------------
    def soa(self, owner: str | None = None) -> Record:
        """The zone's SOA record (``owner`` defaults to the cluster domain)."""
        data = (f"ns.dns.{self.domain}", f"hostmaster.{self.domain}",
                self.serial & 0xFFFFFFFF, 7200, 1800, 86400, self.ttl)
        return Record(owner or self.domain, "SOA", self.ttl, data)

    def in_zone(self, name: str) -> bool:
        """True if ``name`` is the cluster domain or below it."""
        return split_under(fqdn(name), self.domain) is not None

    def lookup(self, qname: str, qtype: str) -> Answer | None:
        """Answer ``qname``/``qtype`` (type name, e.g. ``"A"``, ``"ANY"``); None if not ours."""
        name = fqdn(qname)
        rel = split_under(name, self.domain)
        if rel is None:
            records = self._ptr.get(name)
            if not records:
                return None
            ptrs = [Record(name, "PTR", self.ttl, t) for t in records]
            if qtype in ("PTR", "ANY"):
                return Answer(NOERROR, tuple(ptrs))
            owner = "ip6.arpa." if name.endswith(".ip6.arpa.") else "in-addr.arpa."
            return Answer(NOERROR, authority=(self.soa(owner),))
        return self._answer(name, rel, qtype, 0)

    # -- resolution --------------------------------------------------------
    def _answer(self, name: str, rel: list[str], qtype: str, depth: int) -> Answer:
        records = self._node(name, rel)
        if records is None:
            return Answer(NXDOMAIN, authority=(self.soa(),))
        hits = records if qtype == "ANY" else [r for r in records if r.rtype == qtype]
        if not hits:
            cname = next((r for r in records if r.rtype == "CNAME"), None)
            if cname is None:
                return Answer(NOERROR, authority=(self.soa(),))
            return self._chase(cname, qtype, depth)
        extra: list[Record] = []
        for r in hits:
            if r.rtype == "SRV":
                target = r.data[3]  # type: ignore[index]
                sub = split_under(target, self.domain)
                addrs = self._node(target, sub) if sub is not None else None
                extra += [a for a in addrs or () if a.rtype in ("A", "AAAA") and a not in extra]
        return Answer(NOERROR, tuple(hits), additional=tuple(extra))

    def _chase(self, cname: Record, qtype: str, depth: int) -> Answer:
        target = str(cname.data)
        rel = split_under(target, self.domain)
        if rel is None or depth >= _MAX_CHAIN:
            return Answer(NOERROR, (cname,))
        rest = self._answer(target, rel, qtype, depth + 1)
        return Answer(rest.rcode, (cname, *rest.answers), rest.authority, rest.additional)

    def _node(self, name: str, rel: Sequence[str]) -> list[Record] | None:
        """All records at ``name`` ([] for an empty non-terminal), or None if it does not exist."""
        if not rel:
            return [self.soa()]
        if list(rel) == ["dns-version"]:
            return [Record(name, "TXT", self.ttl, SCHEMA_VERSION)]
        if rel[-1] == "svc":
            return self._svc_node(name, rel[:-1])
        if rel[-1] == "pod":
            return self._pod_node(name, rel[:-1])
        return None

    def _svc_node(self, name: str, rel: Sequence[str]) -> list[Record] | None:
        if not rel:
            return []
        if rel[-1] not in self.namespaces:
            return None
        if len(rel) == 1:
            return []
        s = self._services.get((rel[-1], rel[-2]))
        if s is None or (s.kind == "Headless" and not s.endpoints):
            return None  # headless without ready endpoints: NXDOMAIN (spec 2.4.1)
        ttl, base = self.ttl, f"{s.name}.{s.namespace}.svc.{self.domain}"
        if len(rel) == 2:
            if s.kind == "ExternalName":
                return [Record(name, "CNAME", ttl, s.external)]
            ips = s.ips if s.kind == "ClusterIP" else dict.fromkeys(e.ip for e in s.endpoints)
            return [Record(name, _addr_type(ip), ttl, ip) for ip in ips]
        if s.kind == "ExternalName":
            return None
        if len(rel) == 3:
            label = rel[0]
            if label.startswith("_"):
                return [] if any(f"_{p[1]}" == label for p in s.ports) else None
            if s.kind != "Headless":
                return None
            hits = [Record(name, _addr_type(e.ip), ttl, e.ip)
                    for e in s.endpoints if e.label == label]
            return hits or None
        if len(rel) == 4 and rel[0].startswith("_") and rel[1].startswith("_"):
            port_name, proto = rel[0][1:], rel[1][1:]
            if s.kind == "ClusterIP":
                return [Record(name, "SRV", ttl, (0, 100, p[2], base))
                        for p in s.ports if p[0] == port_name and p[1] == proto] or None
            if not any(p[0] == port_name and p[1] == proto for p in s.ports):
                return None
            targets: dict[tuple[str, int], None] = {}
            for e in s.endpoints:
                ports = [p[2] for p in e.ports if p[0] == port_name and p[1] == proto]
                ports = ports or [p[2] for p in s.ports if p[0] == port_name and p[1] == proto]
                targets.update(((f"{e.label}.{base}", port), None) for port in ports)
            weight = max(1, 100 // max(1, len(targets)))
            return [Record(name, "SRV", ttl, (0, weight, port, target))
                    for target, port in targets] or None
        return None

    def _pod_node(self, name: str, rel: Sequence[str]) -> list[Record] | None:
        if self.pod_mode == "disabled":
            return None
        if not rel:
            return []
        ns = rel[-1]
        if self.pod_mode == "verified" and ns not in self.namespaces:
            return None
        if len(rel) == 1:
            return []
        if len(rel) != 2:
            return None
        ip = dashed_ip(rel[0])
        if ip is None or (self.pod_mode == "verified" and ip not in self.pod_ips.get(ns, ())):
            return None
        return [Record(name, _addr_type(ip), self.ttl, ip)]


__all__ = [
    "DEFAULT_TTL",
    "FORMERR",
    "NOERROR",
    "NOTIMP",
    "NXDOMAIN",
    "REFUSED",
    "SCHEMA_VERSION",
    "SERVFAIL",
    "Answer",
    "Record",
    "Zone",
    "build_zone",
    "pod_ips",
]
