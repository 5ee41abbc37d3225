"""Renderer golden cases: service plans → exact key/value bytes, and full-render documents."""

from __future__ import annotations

import json

from testbed.proxy.ebpf import layout as L
from testbed.proxy.ebpf.render import (
    Frontend,
    Group,
    SvcPlan,
    assign_ids,
    gen_of,
    plan_entries,
    render_full,
)

BE = (("10.244.1.2", 8080), ("10.244.1.3", 8080))
WEB = SvcPlan("default/web:http/TCP", "TCP", (Group((Frontend("10.96.0.50", 80),), BE),))


def hexed(entries):
    """Entries with hex keys/values, for readable goldens."""
    return {m: {k.hex(): v.hex() for k, v in kv.items()} for m, kv in entries.items()}


def test_golden_clusterip_two_backends():
    assert gen_of(BE) == 0xC043B508
    assert hexed(plan_entries(WEB, 1)) == {
        # VIP 10.96.0.50, port 80 (network order), proto 6, scope sock
        "svc": {"0a60003200500600":
                # id 1, gen c043b508 (LE), count 2, flags 0, pad, affinity timeout 0
                "0100000008b543c00200000000000000"},
        "be": {"0100000008b543c000000000": "0af401021f900000",   # slot 0 → 10.244.1.2:8080
               "0100000008b543c001000000": "0af401031f900000"},  # slot 1 → 10.244.1.3:8080
        "bset": {},
    }


def test_golden_udp_affinity_and_external_local():
    plan = SvcPlan("kube-system/dns:dns/UDP", "UDP", (
        Group((Frontend("10.96.0.10", 53),), (("10.244.2.5", 53),)),
        Group((Frontend("172.18.0.2", 30053, L.SCOPE_EXT),), (), no_snat=True),
    ), affinity_timeout=60)
    e = hexed(plan_entries(plan, 7))
    gen = gen_of((("10.244.2.5", 53),))
    assert e["svc"]["0a60000a00351100"] == (
        f"07000000{gen.to_bytes(4, 'little').hex()}0100" "01" "00" "3c000000")
    # the tc frontend: scope 1, no endpoints (count 0 → drop), flags affinity|no-snat
    empty = gen_of(()).to_bytes(4, "little").hex()
    assert e["svc"]["ac12000275651101"] == f"07000000{empty}0000" "03" "00" "3c000000"
    assert e["be"] == {f"07000000{gen.to_bytes(4, 'little').hex()}00000000": "0af4020500350000"}
    # affinity services also get membership entries (validate affinity hits)
    assert e["bset"] == {f"07000000{gen.to_bytes(4, 'little').hex()}0af4020500350000":
                         "01000000"}


def test_no_endpoints_renders_count_zero_and_no_slots():
    plan = SvcPlan("ns/empty:/TCP", "TCP", (Group((Frontend("10.96.0.51", 80),), ()),))
    e = plan_entries(plan, 2)
    assert L.decode_svc_val(next(iter(e["svc"].values())))["count"] == 0
    assert e["be"] == {}


def test_backend_order_and_duplicates_do_not_change_the_generation():
    a = SvcPlan("s", "TCP", (Group((Frontend("10.96.0.50", 80),), BE[::-1] + BE),))
    assert plan_entries(a, 1) == plan_entries(WEB, 1)


def test_groups_with_same_backends_share_slots():
    plan = SvcPlan("s", "TCP", (Group((Frontend("10.96.0.50", 80),), BE),
                                Group((Frontend("172.18.0.2", 30080, L.SCOPE_EXT),), BE)))
    e = plan_entries(plan, 1)
    assert len(e["svc"]) == 2 and len(e["be"]) == 2


def test_ids_are_kept_and_new_ones_never_reuse():
    ids, new = assign_ids(["a", "b", "c"], {"b": 5})
    assert ids == {"a": 6, "b": 5, "c": 7} and new == {"a": 6, "c": 7}
    assert assign_ids(["x", "y"], {})[0] == {"x": 1, "y": 2}


def test_full_render_document_order():
    doc = json.loads(render_full({WEB.ident: WEB}, "172.18.0.2").to_json())
    assert doc["kind"] == "full" and doc["ids"] == {WEB.ident: 1}
    steps = [(op["map"], op["op"]) for op in doc["ops"]]
    assert steps == [("cfg", "update"), ("be", "update"), ("svc", "update"),
                     ("svc", "prune"), ("be", "prune"), ("bset", "prune")]
    assert doc["ops"][0]["entries"] == [["00000000", "ac12000200000000"]]


def test_full_render_is_deterministic():
    plans = {f"s{i}": SvcPlan(f"s{i}", "TCP", (Group((Frontend(f"10.96.0.{i}", 80),), BE),))
             for i in range(1, 20)}
    assert render_full(plans, "172.18.0.2").to_json() == render_full(
        dict(reversed(plans.items())), "172.18.0.2").to_json()
