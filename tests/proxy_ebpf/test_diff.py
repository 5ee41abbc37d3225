"""Incremental syncs: only changed entries are written, and a backend swap is never visible
half-done (checked after every single element operation, like a concurrent reader)."""

from __future__ import annotations

import json
import struct

import pytest

from testbed.proxy.ebpf import layout as L
from testbed.proxy.ebpf.maps import MapSet
from testbed.proxy.ebpf.render import (
    Frontend,
    Group,
    SvcPlan,
    render_full,
    render_incremental,
)

from .fakes import FakeMapIO


def web(backends, ident="default/web:http/TCP", vip="10.96.0.50", affinity=0):
    """A service port with a ClusterIP and a tc NodePort frontend."""
    return SvcPlan(ident, "TCP", (Group((Frontend(vip, 80),), tuple(backends)),
                                  Group((Frontend("172.18.0.2", 30080, L.SCOPE_EXT),),
                                        tuple(backends))), affinity)


def consistent(io: FakeMapIO) -> None:
    """Every frontend's slots 0..count-1 of its generation exist (what the programs read)."""
    be = io.by_name("be")
    for k, v in io.by_name("svc").items():
        svc_id, gen, count = struct.unpack_from("<IIH", v)
        for slot in range(count):
            assert struct.pack("<III", svc_id, gen, slot) in be, (k.hex(), slot)


@pytest.fixture
def maps(tmp_path):
    """Map fds over fake pins."""
    pins = {}
    for m in L.MAPS:
        pins[m] = tmp_path / f"{m}_tag"
        pins[m].touch()
    return MapSet(FakeMapIO(), pins)


def apply(maps: MapSet, ops) -> dict:
    """Apply a rendered Ops through its JSON text."""
    return maps.apply(json.loads(ops.to_json()))


A = [("10.244.1.2", 8080), ("10.244.1.3", 8080)]
B = [("10.244.1.3", 8080), ("10.244.2.7", 8080), ("10.244.2.8", 8080)]


def test_backend_swap_is_atomic_and_ordered(maps):
    old = {p.ident: p for p in (web(A), web(A, "default/other:/TCP", "10.96.0.60"))}
    full = render_full(old, "172.18.0.2")
    apply(maps, full)
    io = maps.io
    io.log.clear()
    io.check = consistent
    new = dict(old) | {"default/web:http/TCP": web(B)}
    inc = render_incremental(old, new, full.ids)
    apply(maps, inc)
    kinds = [(op, m) for op, m, _ in io.log]
    first_svc = kinds.index(("update", "svc"))
    assert set(kinds[:first_svc]) == {("update", "be")}  # new slots first
    assert kinds[first_svc:first_svc + 2] == [("update", "svc")] * 2  # flip both frontends
    assert set(kinds[first_svc + 2:]) == {("delete", "be")}  # old slots last
    assert kinds.count(("update", "be")) == 3 and kinds.count(("delete", "be")) == 2
    # the other service was not touched at all
    other_vip = L.svc_key("10.96.0.60", 80, "TCP", L.SCOPE_SOCK)
    assert all(k != other_vip for _, _, k in io.log)


def test_unchanged_model_renders_no_ops(maps):
    plans = {p.ident: p for p in (web(A),)}
    full = render_full(plans, "172.18.0.2")
    inc = render_incremental(plans, dict(plans), full.ids)
    assert inc.ops == [] and inc.ids == {} and inc.freed == []


def test_add_one_service_writes_only_its_entries(maps):
    plans = {f"s{i}": web(A, f"s{i}", f"10.96.1.{i}") for i in range(50)}
    full = render_full(plans, "172.18.0.2")
    apply(maps, full)
    maps.io.log.clear()
    new = plans | {"added": web(B, "added", "10.96.2.1")}
    inc = render_incremental(plans, new, full.ids)
    assert inc.ids == {"added": 51}
    counts = apply(maps, inc)
    assert counts == {"update": 3 + 2, "delete": 0, "prune": 0}  # 3 slots + 2 frontends


def test_remove_service_deletes_frontends_before_slots(maps):
    plans = {p.ident: p for p in (web(A), web(B, "gone", "10.96.0.99"))}
    full = render_full(plans, "172.18.0.2")
    apply(maps, full)
    maps.io.log.clear()
    maps.io.check = consistent
    inc = render_incremental(plans, {"default/web:http/TCP": plans["default/web:http/TCP"]},
                             full.ids)
    assert inc.freed == ["gone"]
    apply(maps, inc)
    kinds = [(op, m) for op, m, _ in maps.io.log]
    assert kinds == [("delete", "svc")] * 2 + [("delete", "be")] * 3


def test_full_sync_prunes_only_stale_entries_after_the_flip(maps):
    apply(maps, render_full({"x": web(A, "x")}, "172.18.0.2"))
    maps.io.log.clear()
    maps.io.check = consistent
    counts = apply(maps, render_full({"x": web(B, "x")}, "172.18.0.2", {"x": 1}))
    assert counts["prune"] == 2  # the two old slots
    assert maps.io.log[-2:] == [("delete", "be", k) for _, _, k in maps.io.log[-2:]]
    assert len(maps.io.by_name("be")) == 3


def test_affinity_membership_follows_the_swap(maps):
    plans = {"x": web(A, "x", affinity=30)}
    full = render_full(plans, "172.18.0.2")
    apply(maps, full)
    apply(maps, render_incremental(plans, {"x": web(B, "x", affinity=30)}, full.ids))
    members = {L.decode_be(k[:8] + b"\0\0\0\0", k[8:])["backend"] for k in maps.io.by_name("bset")}
    assert members == {f"{ip}:{port}" for ip, port in B}


def test_dump_is_readable(maps):
    apply(maps, render_full({"x": web(A, "x")}, "172.18.0.2"))
    d = maps.dump()
    assert d["nodeIP"] == "172.18.0.2"
    assert {(s["frontend"], s["scope"]) for s in d["services"]} == {
        ("10.96.0.50:80", "sock"), ("172.18.0.2:30080", "ext")}
    assert d["services"][0]["backends"] == ["10.244.1.2:8080", "10.244.1.3:8080"]
