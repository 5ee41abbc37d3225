"""The proxy model kept current service by service, as kube-proxy's change trackers do.

A store event names the one service it can affect (a Service or its status by key, an
EndpointSlice by its ``kubernetes.io/service-name`` label, before and after the event), so
an incremental sync rebuilds only the ports of the services marked since the last sync and
splices them into the previous model (:meth:`ProxyModel.with_services`). The cost of a sync
then grows with what changed, not with the number of services. Pure: no I/O.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from testbed.proxy.gcpause import paused_gc
from testbed.proxy.model import SERVICE_NAME_LABEL, ProxyModel, _service_ports, build_model

SERVICES = "/registry/services/"
SERVICE_STATUS = "/status/services/"
ENDPOINT_SLICES = "/registry/endpointslices/"

ServiceKey = tuple[str, str]  # (namespace, name)


def effective_service(spec: Mapping[str, Any] | None,
                      status: Mapping[str, Any] | None) -> dict | None:
    """A Service with its status merged in; None when absent or rejected by the allocator
    (its ``Allocated`` condition is False: the controller refused its IPs or ports)."""
    if spec is None:
        return None
    status = status or {}
    rejected = any(c.get("type") == "Allocated" and c.get("status") == "False"
                   for c in status.get("conditions") or [])
    return None if rejected else {**spec, "status": status}


def _key_of_ref(ref: str) -> ServiceKey:
    namespace, _, name = ref.partition("/")
    return namespace, name


def slice_owner(sl: Mapping[str, Any] | None) -> ServiceKey | None:
    """The service an EndpointSlice belongs to (its service-name label), if any."""
    if not sl:
        return None
    meta = sl.get("metadata") or {}
    name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return (meta.get("namespace") or "default", name) if name else None


def _named(svc: Mapping[str, Any], ref: str) -> bool:
    """The object's own namespace/name is the key it is stored under (else it is ignored,
    in full and incremental builds alike)."""
    meta = svc.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name')}" == ref


class ModelTracker:
    """Follows the watched Services, their statuses and EndpointSlices for one node.

    ``state`` maps each watched prefix to ``{ref: value}`` (``ref`` = ``namespace/name``), the
    shape of :class:`testbed.agent.watched.WatchedState`. Call :meth:`note` with every event
    *before* the state applies it, then :meth:`model` for the current model.
    """

    def __init__(self, node_name: str) -> None:
        self.node_name = node_name
        self.current: ProxyModel | None = None
        self.dirty: set[ServiceKey] = set()
        self._slices: dict[ServiceKey, set[str]] = defaultdict(set)

    def reset(self) -> None:
        """Forget everything: the next :meth:`model` rebuilds from the whole state."""
        self.current = None
        self.dirty.clear()
        self._slices.clear()

    def note(self, prefix: str, ref: str, before: Mapping | None, after: Mapping | None) -> None:
        """Record that the object ``prefix + ref`` changed from ``before`` to ``after``."""
        if prefix in (SERVICES, SERVICE_STATUS):
            self.dirty.add(_key_of_ref(ref))
        elif prefix == ENDPOINT_SLICES:
            for owner, keep in ((slice_owner(before), False), (slice_owner(after), True)):
                if owner is not None:
                    self.dirty.add(owner)
                    (self._slices[owner].add if keep else self._slices[owner].discard)(ref)

    @paused_gc
    def model(self, state: Mapping[str, Mapping[str, Any]]) -> ProxyModel:
        """The model for the current ``state``: whole on first use (or after :meth:`reset`),
        else the previous model with the marked services rebuilt."""
        if self.current is None:
            self.current = self._full(state)
        elif self.dirty:
            self.current = self.current.with_services(
                {key: self._ports(state, key) for key in self.dirty})
        self.dirty.clear()
        return self.current

    def _full(self, state: Mapping[str, Mapping[str, Any]]) -> ProxyModel:
        self._slices.clear()
        for ref, sl in state[ENDPOINT_SLICES].items():
            owner = slice_owner(sl)
            if owner is not None:
                self._slices[owner].add(ref)
        statuses = state[SERVICE_STATUS]
        services = [svc for ref, spec in state[SERVICES].items()
                    if _named(spec, ref)
                    and (svc := effective_service(spec, statuses.get(ref))) is not None]
        return build_model(services, state[ENDPOINT_SLICES].values(), self.node_name)

    def _ports(self, state: Mapping[str, Mapping[str, Any]], key: ServiceKey) -> list:
        ref = f"{key[0]}/{key[1]}"
        svc = effective_service(state[SERVICES].get(ref), state[SERVICE_STATUS].get(ref))
        if svc is None or not _named(svc, ref):
            return []
        slices = [sl for r in sorted(self._slices.get(key, ()))
                  if (sl := state[ENDPOINT_SLICES].get(r)) is not None]
        return _service_ports(svc, slices, self.node_name)
