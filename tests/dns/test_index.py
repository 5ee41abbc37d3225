"""The incrementally updated zone equals a zone rebuilt from scratch after any events."""

from __future__ import annotations

import random

import pytest

from testbed.dns.index import (
    ENDPOINT_SLICES,
    NAMESPACES,
    POD_STATUS,
    PODS,
    PREFIXES,
    SERVICES,
    ClusterIndex,
)
from testbed.dns.records import NOERROR, NXDOMAIN, Zone, build_zone
from testbed.store.base import Event

from .helpers import endpoint, endpoint_slice, service

NAMESPACE_POOL = ["default", "apps", "db"]


def _state(zone: Zone) -> tuple:
    ptr = {k: sorted(v) for k, v in zone._ptr.items()}
    ips = {ns: {ip for ip, n in c.items() if n > 0} for ns, c in zone.pod_ips.items()}
    ips = {ns: s for ns, s in ips.items() if s}
    return dict(zone._services), ptr, set(zone.namespaces), ips, zone.serial


def _random_event(rng: random.Random, rev: int, index: ClusterIndex) -> tuple[str, Event]:
    prefix = rng.choice(PREFIXES)
    ns, name = rng.choice(NAMESPACE_POOL), rng.choice(["a", "b", "c"])
    key = f"{prefix}{ns}" if prefix == NAMESPACES else f"{prefix}{ns}/{name}"
    if key in index.items[prefix] and rng.random() < 0.3:
        return prefix, Event("DELETE", key, None, rev)
    ip = f"10.{NAMESPACE_POOL.index(ns)}.0.{rng.randrange(1, 6)}"
    if prefix == SERVICES:
        obj = service(name, ns, cluster_ip=rng.choice(["None", "None", ip.replace("10.", "172.")]),
                      ports=[{"name": "http", "port": 80}])
    elif prefix == ENDPOINT_SLICES:
        owner = rng.choice(["a", "b", "c"])
        eps = [endpoint(f"10.{NAMESPACE_POOL.index(ns)}.0.{i}", ready=rng.random() < 0.8,
                        pod=rng.choice([None, "a", "b"])) for i in range(rng.randrange(0, 4))]
        obj = endpoint_slice(owner, eps, ns, name=name)
    elif prefix == PODS:
        spec = {"hostname": name, "subdomain": rng.choice(["a", "b"])} if rng.random() < 0.5 \
            else {}
        obj = {"metadata": {"name": name, "namespace": ns}, "spec": spec}
    elif prefix == POD_STATUS:
        obj = {"podIP": ip, "podIPs": [{"ip": ip}]}
    else:
        obj = {"metadata": {"name": ns}}
    return prefix, Event("PUT", key, obj, rev)


def _rebuilt(index: ClusterIndex) -> Zone:
    return build_zone(index.items[SERVICES].values(), index.items[ENDPOINT_SLICES].values(),
                      index.pods(), namespaces=index.namespaces(), serial=index.revision,
                      pod_mode="verified")


@pytest.mark.parametrize("seed", range(8))
def test_incremental_matches_rebuild(seed: int) -> None:
    rng = random.Random(seed)
    index = ClusterIndex(pod_mode="verified")
    for prefix in PREFIXES:
        index.replace(prefix, [])
    assert index.zone() is not None and index.full_builds == 1
    for rev in range(2, 300):
        prefix, event = _random_event(rng, rev, index)
        index.apply(prefix, event)
        assert _state(index.zone()) == _state(_rebuilt(index)), (rev, prefix, event)
    assert index.full_builds == 1  # events never forced a full rebuild


def test_relist_rebuilds_and_events_update_answers() -> None:
    index = ClusterIndex()
    for prefix in PREFIXES:
        index.replace(prefix, [])
    zone = index.zone()
    name = "h.apps.svc.cluster.local"
    index.apply(SERVICES, Event("PUT", "/registry/services/apps/h",
                                service("h", "apps", cluster_ip="None"), 5))
    assert index.zone() is zone and zone.lookup(name, "A").rcode == NXDOMAIN
    index.apply(ENDPOINT_SLICES, Event("PUT", "/registry/endpointslices/apps/h-1",
                                       endpoint_slice("h", [endpoint("10.1.1.1")], "apps"), 6))
    ans = zone.lookup(name, "A")
    assert ans.rcode == NOERROR and [r.data for r in ans.answers] == ["10.1.1.1"]
    assert zone.lookup("1.1.1.10.in-addr.arpa", "PTR").answers[0].data == \
        "10-1-1-1.h.apps.svc.cluster.local."
    assert zone.soa().data[2] == 6
    index.apply(SERVICES, Event("DELETE", "/registry/services/apps/h", None, 7))
    assert zone.lookup(name, "A").rcode == NXDOMAIN
    assert zone.lookup("1.1.1.10.in-addr.arpa", "PTR") is None
    assert zone.lookup("apps.svc.cluster.local", "A").rcode == NXDOMAIN  # namespace gone
    index.replace(SERVICES, [])
    assert index.zone() is not zone and index.full_builds == 2
