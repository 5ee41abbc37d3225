"""Watched objects and the cluster :class:`~testbed.dns.records.Zone` kept current per event.

A list (first or re-list) of a prefix drops the zone; it is rebuilt whole
(:func:`~testbed.dns.records.build_zone`) on the next :meth:`ClusterIndex.zone`. A watch
event only recompiles the services it can affect (the service itself, the owner of an
EndpointSlice, the headless service a pod is the ``subdomain`` host of) and updates
namespace existence and pod IPs, so the cost of an event does not grow with the
cluster. Pure: no I/O, no threads.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from testbed.dns.objects import Ref, compile_service, pod_ips, pod_subdomain, ref, slice_owner
from testbed.dns.records import DEFAULT_TTL, IMPLICIT_NAMESPACES, Zone, build_zone
from testbed.store.base import Event, KeyValue

SERVICES = "/registry/services/"
ENDPOINT_SLICES = "/registry/endpointslices/"
PODS = "/registry/pods/"
POD_STATUS = "/status/pods/"
NAMESPACES = "/registry/namespaces/"
PREFIXES = (SERVICES, ENDPOINT_SLICES, PODS, POD_STATUS, NAMESPACES)


def _key_ref(key: str) -> Ref:
    ns, name = key.rsplit("/", 2)[-2:]
    return ns.lower(), name.lower()


class ClusterIndex:
    """Objects by prefix and key, with lookups by reference and an incremental zone."""

    def __init__(self, domain: str = "cluster.local", ttl: int = DEFAULT_TTL,
                 pod_mode: str = "insecure") -> None:
        self.domain, self.ttl, self.pod_mode = domain, ttl, pod_mode
        self.items: dict[str, dict[str, dict]] = {p: {} for p in PREFIXES}
        self.listed: set[str] = set()
        self.revision = 0
        self.full_builds = 0
        self._zone: Zone | None = None
        self._services: dict[Ref, str] = {}
        self._slices: dict[Ref, set[str]] = {}
        self._pods: dict[Ref, str] = {}
        self._ns_refs: Counter[str] = Counter()

    @property
    def ready(self) -> bool:
        """True once every prefix has been listed."""
        return self.listed >= set(PREFIXES)

    # -- lookups -----------------------------------------------------------
    def pod(self, pod_ref: Ref) -> dict | None:
        """The pod (namespace, name) with its ``/status/pods/...`` value merged as ``status``."""
        key = self._pods.get(pod_ref)
        if key is None:
            return None
        pod = self.items[PODS][key]
        status = self.items[POD_STATUS].get(POD_STATUS + key[len(PODS):])
        if status is None:
            return pod
        inner = status.get("status")
        return {**pod, "status": inner if isinstance(inner, dict) else status}

    def pods(self) -> list[dict]:
        """Every pod, status merged."""
        return [p for p in map(self.pod, list(self._pods)) if p is not None]

    def namespaces(self) -> list[str]:
        """Names of Namespace objects."""
        return [_key_ref(k)[1] for k in self.items[NAMESPACES]]

    # -- updates -----------------------------------------------------------
    def replace(self, prefix: str, items: Iterable[KeyValue]) -> None:
        """Install a (re-)list of ``prefix``; the zone is rebuilt on next use."""
        self.items[prefix] = {}
        if prefix == SERVICES:
            self._services.clear()
        elif prefix == ENDPOINT_SLICES:
            self._slices.clear()
        elif prefix == PODS:
            self._pods.clear()
        for kv in items:
            self._store(prefix, kv.key, kv.value)
            self.revision = max(self.revision, kv.mod_revision)
        self.listed.add(prefix)
        self._zone = None

    def apply(self, prefix: str, event: Event) -> None:
        """Apply one watch event, updating the zone in place if it is built."""
        key = event.key
        new = None if event.type == "DELETE" else event.value
        old = self.items[prefix].get(key)
        old_pod = self.pod(_key_ref(key)) if prefix in (PODS, POD_STATUS) else None
        if old is not None:
            self._forget(prefix, key, old)
        if new is not None:
            self._store(prefix, key, new)
        self.revision = max(self.revision, event.mod_revision)
        if self._zone is not None:
            self._update(self._zone, prefix, key, old, new, old_pod)

    def zone(self) -> Zone | None:
        """The zone (built whole if needed), or None until every prefix was listed."""
        if not self.ready:
            return None
        if self._zone is None:
            self._zone = build_zone(
                [self.items[SERVICES][k] for k in self._services.values()],
                self.items[ENDPOINT_SLICES].values(), self.pods(),
                namespaces=self.namespaces(), domain=self.domain, ttl=self.ttl,
                pod_mode=self.pod_mode, serial=self.revision)
            self.full_builds += 1
        return self._zone

    # -- internals ---------------------------------------------------------
    def _ns_ref(self, prefix: str, key: str, value: dict) -> str | None:
        if prefix == SERVICES:
            return ref(value)[0]
        if prefix == PODS:
            return _key_ref(key)[0]
        if prefix == NAMESPACES:
            return _key_ref(key)[1]
        return None

    def _store(self, prefix: str, key: str, value: dict) -> None:
        self.items[prefix][key] = value
        if prefix == SERVICES:
            self._services[ref(value)] = key
        elif prefix == ENDPOINT_SLICES and (owner := slice_owner(value)) is not None:
            self._slices.setdefault(owner, set()).add(key)
        elif prefix == PODS:
            self._pods[_key_ref(key)] = key
        ns = self._ns_ref(prefix, key, value)
        if ns is not None:
            self._ns_refs[ns] += 1

    def _forget(self, prefix: str, key: str, value: dict) -> None:
        del self.items[prefix][key]
        if prefix == SERVICES and self._services.get(ref(value)) == key:
            del self._services[ref(value)]
        elif prefix == ENDPOINT_SLICES and (owner := slice_owner(value)) is not None:
            self._slices.get(owner, set()).discard(key)
            if not self._slices.get(owner, True):
                del self._slices[owner]
        elif prefix == PODS:
            self._pods.pop(_key_ref(key), None)
        ns = self._ns_ref(prefix, key, value)
        if ns is not None:
            self._ns_refs[ns] -= 1
            if self._ns_refs[ns] <= 0:
                del self._ns_refs[ns]

    def _update(self, zone: Zone, prefix: str, key: str, old: dict | None, new: dict | None,
                old_pod: dict | None) -> None:
        zone.serial = self.revision
        affected: set[Ref | None] = set()
        if prefix == SERVICES:
            affected = {ref(v) for v in (old, new) if v is not None}
        elif prefix == ENDPOINT_SLICES:
            affected = {slice_owner(v) for v in (old, new) if v is not None}
        elif prefix in (PODS, POD_STATUS):
            pod_ref = _key_ref(key)
            new_pod = self.pod(pod_ref)
            counts = zone.pod_ips.setdefault(pod_ref[0], Counter())
            counts.subtract(pod_ips(old_pod) if old_pod else ())
            counts.update(pod_ips(new_pod) if new_pod else ())
            for ip in [ip for ip, n in counts.items() if n <= 0]:
                del counts[ip]
            affected = {pod_subdomain(p) for p in (old_pod, new_pod) if p is not None}
        for ns in {self._ns_ref(prefix, key, v) for v in (old, new) if v is not None}:
            if ns is None or ns in IMPLICIT_NAMESPACES:
                continue
            if self._ns_refs.get(ns, 0) > 0:
                zone.namespaces.add(ns)
            else:
                zone.namespaces.discard(ns)
        for svc_ref in affected:
            if svc_ref is not None:
                self._recompile(zone, svc_ref)

    def _recompile(self, zone: Zone, svc_ref: Ref) -> None:
        key = self._services.get(svc_ref)
        if key is None:
            zone.set_service(None, svc_ref)
            return
        slices = [self.items[ENDPOINT_SLICES][k] for k in self._slices.get(svc_ref, ())]
        info = compile_service(self.items[SERVICES][key], slices, self.pod)
        zone.set_service(info, svc_ref)


__all__ = ["PREFIXES", "ClusterIndex"]
