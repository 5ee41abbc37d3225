"""The incremental model: ProxyModel.with_services and the ModelTracker must always give the
model a full build of the same state gives, while touching only what changed."""

from __future__ import annotations

import random

import pytest

from testbed.agent.proxyd import ProxyDaemon
from testbed.proxy.model import (
    ProxyModel,
    build_model,
    changed_ports,
    changed_services,
)
from testbed.proxy.tracker import (
    ENDPOINT_SLICES,
    SERVICE_STATUS,
    SERVICES,
    ModelTracker,
    effective_service,
)
from testbed.store.base import Event

NODE = "w1"


def service(ns: str, name: str, i: int, ports=(80,), kind="ClusterIP", policy=None) -> dict:
    spec = {"type": kind, "clusterIP": f"10.96.{i // 250}.{i % 250 + 1}",
            "ports": [{"name": f"p{p}", "port": p, "protocol": "TCP",
                       **({"nodePort": 30000 + i} if kind == "NodePort" else {})}
                      for p in ports]}
    if policy:
        spec["internalTrafficPolicy"] = policy
    return {"metadata": {"namespace": ns, "name": name}, "spec": spec}


def endpoint_slice(ns: str, name: str, owner: str, ips, ports=(80,), ready=True) -> dict:
    return {"metadata": {"namespace": ns, "name": name,
                         "labels": {"kubernetes.io/service-name": owner}},
            "addressType": "IPv4",
            "ports": [{"name": f"p{p}", "port": 8000 + p, "protocol": "TCP"} for p in ports],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready},
                           "nodeName": NODE if k % 2 == 0 else "w2"}
                          for k, ip in enumerate(ips)]}


def full_model(state) -> ProxyModel:
    services = [s for ref, spec in state[SERVICES].items()
                if (s := effective_service(spec, state[SERVICE_STATUS].get(ref)))]
    return build_model(services, state[ENDPOINT_SLICES].values(), NODE)


def empty_state() -> dict:
    return {SERVICES: {}, SERVICE_STATUS: {}, ENDPOINT_SLICES: {}}


def test_with_services_replaces_adds_and_removes_in_order():
    base = build_model([service("a", "x", 1), service("b", "y", 2, ports=(80, 81)),
                        service("c", "z", 3)], [], NODE)
    new = base.with_services({("b", "y"): [], ("a", "m", ): build_model(
        [service("a", "m", 4)], [], NODE), ("c", "z"): base.ports_of(("c", "z"))})
    assert [(p.namespace, p.name) for p in new] == [("a", "m"), ("a", "x"), ("c", "z")]
    assert new[1] is base[0]  # untouched ports are the same objects
    assert changed_services(base, new) == {("b", "y"), ("a", "m")}  # c/z given unchanged
    gone, changed = changed_ports(base, new)
    assert sorted(p.port for p in gone) == [80, 81] and [p.name for p in changed] == ["m"]
    assert new == ProxyModel(new)  # still sorted


def test_with_services_rejects_ports_of_another_service():
    base = build_model([service("a", "x", 1)], [], NODE)
    with pytest.raises(ValueError, match="another service"):
        base.with_services({("a", "y"): list(base)})


def test_fast_diff_only_between_parent_and_child():
    base = build_model([service("a", "x", 1), service("a", "y", 2)], [], NODE)
    child = base.with_services({("a", "x"): build_model([service("a", "x", 9)], [], NODE)})
    grandchild = child.with_services({("a", "y"): []})
    # Not made from `base`: the general merge walk answers (and agrees).
    assert changed_services(base, grandchild) == {("a", "x"), ("a", "y")}
    assert changed_services(child, grandchild) == {("a", "y")}
    assert changed_ports(base, base) == ([], [])


def _random_step(rng: random.Random, state: dict, tracker: ModelTracker, events: list) -> None:
    """One random store change, noted the way proxyd notes events (before applying)."""
    n = rng.randrange(12)
    ns, name = rng.choice("ab"), f"s{n}"
    ref = f"{ns}/{name}"
    what = rng.random()
    if what < 0.3:
        prefix = SERVICES
        value = None if rng.random() < 0.2 else service(
            ns, name, n, ports=rng.choice([(80,), (80, 81)]),
            kind=rng.choice(["ClusterIP", "NodePort"]),
            policy=rng.choice([None, "Local"]))
    elif what < 0.4:
        prefix = SERVICE_STATUS
        value = None if rng.random() < 0.5 else {"conditions": [
            {"type": "Allocated", "status": rng.choice(["True", "False"])}]}
    else:
        prefix = ENDPOINT_SLICES
        slice_name = f"{name}-{rng.randrange(2)}"
        ref = f"{ns}/{slice_name}"
        owner = rng.choice([name, f"s{rng.randrange(12)}"])  # relabelled sometimes
        value = None if rng.random() < 0.2 else endpoint_slice(
            ns, slice_name, owner,
            [f"10.244.{n}.{k}" for k in range(1, rng.randrange(1, 5))],
            ports=rng.choice([(80,), (80, 81)]), ready=rng.random() < 0.8)
    tracker.note(prefix, ref, state[prefix].get(ref), value)
    if value is None:
        state[prefix].pop(ref, None)
    else:
        state[prefix][ref] = value
    events.append((prefix, ref))


@pytest.mark.parametrize("seed", range(20))
def test_tracker_always_equals_a_full_build(seed):
    rng = random.Random(seed)
    state, tracker, events = empty_state(), ModelTracker(NODE), []
    previous = tracker.model(state)
    for _ in range(150):
        for _ in range(rng.randrange(1, 4)):  # batched events, one sync
            _random_step(rng, state, tracker, events)
        current = tracker.model(state)
        assert current == full_model(state), events[-3:]
        assert changed_services(previous, current) == changed_services(
            ProxyModel(previous), ProxyModel(current))
        previous = current


def test_tracker_rebuilds_only_marked_services():
    state = empty_state()
    for i in range(50):
        state[SERVICES][f"a/s{i}"] = service("a", f"s{i}", i)
        state[ENDPOINT_SLICES][f"a/s{i}-0"] = endpoint_slice("a", f"s{i}-0", f"s{i}",
                                                              [f"10.244.0.{i + 1}"])
    tracker = ModelTracker(NODE)
    first = tracker.model(state)
    assert tracker.model(state) is first  # nothing marked: the same model
    value = endpoint_slice("a", "s7-0", "s7", ["10.244.9.9"])
    tracker.note(ENDPOINT_SLICES, "a/s7-0", state[ENDPOINT_SLICES]["a/s7-0"], value)
    state[ENDPOINT_SLICES]["a/s7-0"] = value
    second = tracker.model(state)
    assert changed_services(first, second) == {("a", "s7")}
    assert sum(p is q for p, q in zip(first, second, strict=True)) == 49


class _RecordingBackend:
    name = "recording"

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def render(self, model, ctx):
        self.calls.append(("full", len(model)))
        return "full"

    def render_incremental(self, old, new, ctx):
        self.calls.append(("incremental", len(changed_services(old, new))))
        return "incremental"

    def apply(self, text):
        pass


def test_proxyd_syncs_incrementally_from_events():
    config = {"nodes": [{"name": NODE, "ip": "172.18.0.2"}],
              "networking": {"podSubnet": "10.244.0.0/16"}}
    backend = _RecordingBackend()
    daemon = ProxyDaemon(None, NODE, config, backend)
    daemon.sync(full=True)
    events = [Event("PUT", "/registry/services/a/web", service("a", "web", 1), 2),
              Event("PUT", "/registry/endpointslices/a/web-0",
                    endpoint_slice("a", "web-0", "web", ["10.244.0.5"]), 3),
              Event("PUT", "/status/nodes/w1", {"ready": True}, 4)]
    assert [daemon.on_event(e) for e in events] == [True, True, False]
    daemon.sync()
    assert backend.calls == [("full", 0), ("incremental", 1)]
    assert [e.ip for e in daemon.model[0].endpoints] == ["10.244.0.5"]
    daemon.on_event(Event("DELETE", "/registry/endpointslices/a/web-0", None, 5))
    daemon.sync()
    assert daemon.model[0].endpoints == () and backend.calls[-1] == ("incremental", 1)
