"""nftables renderer: own table only, shared maps (no per-service maps), golden files."""

from __future__ import annotations

import re

from testbed.proxy import nftables
from testbed.proxy.bench import synthetic_model
from testbed.proxy.model import build_model
from testbed.proxy.nft_rules import aff_set, port_nft, shared_chains

from .fakes import FakeRunner
from .samples import CTX, NODE, ep, eps_slice, kitchen_sink, port, service


def model():
    return build_model(*kitchen_sink(), NODE)


def elements(text: str, verb: str, target: str) -> list[str]:
    """Element lines of every ``<verb> element ip testbed-proxy <target> {...}`` block."""
    out = []
    for body in re.findall(rf"^{verb} element ip testbed-proxy {target} {{\n(.*?)\n}}", text,
                           re.M | re.S):  # fmt: skip
        out += [x.strip().rstrip(",") for x in body.splitlines()]
    return out


def chains(text: str) -> list[str]:
    return re.findall(r"^\tchain (\S+) \{", text, re.M)


def test_full_render_golden(golden):
    golden("nftables-full.nft", nftables.render(model(), CTX))


def test_incremental_render_golden(golden):
    svcs, slices = kitchen_sink()
    old = build_model(svcs, slices, NODE)
    slices[0]["endpoints"].append(ep("10.244.3.5", "node-c"))  # web: 2 -> 3 endpoints
    slices[4]["endpoints"] = [ep("10.244.1.10")]  # sticky loses a remote endpoint
    new = build_model(svcs, slices, NODE)
    golden("nftables-incremental.nft", nftables.render_incremental(old, new, CTX))


def test_touches_only_its_own_table_and_replaces_it_atomically():
    text = nftables.render(model(), CTX)
    assert text.splitlines()[1:4] == [
        "add table ip testbed-proxy",
        "delete table ip testbed-proxy",
        "table ip testbed-proxy {",
    ]
    assert set(re.findall(r"\b(?:table|element) (ip \S+)", text)) == {"ip testbed-proxy"}
    assert "flush ruleset" not in text


def test_no_per_service_anonymous_maps():
    # DESIGN.md: one anonymous vmap per service costs 56 s at 10k services.
    text = nftables.render(model(), CTX)
    assert not re.search(r"vmap \{|map \{ \d", text)


def test_dispatch_maps_and_pools():
    text = nftables.render(model(), CTX)
    ips = elements(text, "add", "service-ips")
    assert "10.96.0.10 . tcp . 80 : goto pool-2" in ips
    assert "10.96.0.53 . udp . 53 : goto svc-2KKYJRIGYGQNRODB" not in ips  # no affinity on dns
    assert (
        "10.96.0.53 . udp . 53 : goto pool-2" in ips
        and "10.96.0.53 . tcp . 53 : goto pool-2" in ips
    )
    assert "192.0.2.20 . tcp . 443 : goto ext-local-2-1" in ips
    assert "10.96.0.40 . tcp . 80 : goto pool-1" in ips  # internalTrafficPolicy Local
    eps = elements(text, "add", "endpoints")
    assert "10.96.0.53 . udp . 53 . 1 : 10.244.2.7 . 5353" in eps
    assert "10.96.0.40 . tcp . 80 . 0 : 10.244.1.11 . 80" in eps
    assert "tcp . 30080 : goto np-ext-cluster-2" in elements(text, "add", "service-nodeports")
    assert (
        "numgen random mod 2 map @endpoints" in text
        and "chain np-ext-cluster-2 {\n\t\tjump mark-for-masquerade\n\t\tgoto np-pool-2" in text
    )


def test_no_endpoints_reject_and_local_policy_drop():
    text = nftables.render(model(), CTX)
    noep = elements(text, "add", "no-endpoint-services")
    assert "10.96.0.99 . tcp . 80 : goto reject-chain" in noep
    assert "198.51.100.21 . tcp . 80 : drop" in noep
    assert elements(text, "add", "no-endpoint-nodeports") == ["tcp . 30021 : drop"]
    assert "reject with icmp port-unreachable" in text
    # lb-nolocal: external traffic from pods and the node is still short-circuited
    assert "198.51.100.21 . tcp . 80 : goto ext-local-1-0" in elements(text, "add", "service-ips")


def test_masquerade_sets():
    text = nftables.render(model(), CTX)
    assert "10.96.0.10 . tcp . 80" in elements(text, "add", "cluster-ips")
    assert "10.96.0.99 . tcp . 80" not in elements(text, "add", "cluster-ips")
    assert "10.244.1.5 . 10.244.1.5" in elements(text, "add", "hairpin")
    assert "ip saddr != 10.244.0.0/16 ip daddr . meta l4proto . th dport @cluster-ips" in text
    assert "masquerade fully-random" in text


def test_session_affinity_sets_and_chains():
    m = model()
    p = next(x for x in m if x.name == "sticky")
    text = nftables.render(m, CTX)
    for e in p.endpoints:
        s = aff_set(p, e)
        assert f"set {s} {{\n\t\ttype ipv4_addr; flags dynamic,timeout; timeout 600s;" in text
        assert f"ip saddr @{s} update @{s} {{ ip saddr }} dnat to {e.addr}" in text
    assert "tcp . 30030 : goto ext-" in "\n".join(elements(text, "add", "service-nodeports"))


def test_shared_chains_agree_with_port_fragments():
    for p in model():
        assert port_nft(p, CTX).shared == shared_chains(p, CTX), p.port_key


def test_ten_thousand_services_structure():
    text = nftables.render(synthetic_model(10000, 2), CTX)
    assert len(elements(text, "add", "service-ips")) == 10000
    assert len(elements(text, "add", "endpoints")) == 20000
    assert len(elements(text, "add", "hairpin")) == 20000
    # hooks, helpers and the pre-made pool chains: no per-service chain at all
    assert len(chains(text)) == 11 + 4 * 8


def test_incremental_add_one_service_is_elements_only():
    old = synthetic_model(50, 2)
    new = synthetic_model(51, 2)
    text = nftables.render_incremental(old, new, CTX)
    assert "chain" not in text and "table ip testbed-proxy {" not in text
    assert elements(text, "add", "service-ips") == ["10.96.0.51 . tcp . 80 : goto pool-2"]
    assert len(elements(text, "add", "endpoints")) == 2 and "delete" not in text


def test_incremental_new_pool_size_and_removed_service():
    svcs, slices = kitchen_sink()
    old = build_model(svcs, slices, NODE)
    slices[0]["endpoints"].append(ep("10.244.3.5", "node-c"))  # web: first 3-endpoint pool
    new = build_model([s for s in svcs if s["metadata"]["name"] != "itp"], slices, NODE)
    text = nftables.render_incremental(old, new, CTX)
    assert "\tchain np-ext-cluster-3 {" in text and "\tchain pool-3 {" not in text  # pre-made
    assert "10.96.0.40 . tcp . 80" in elements(text, "delete", "service-ips")
    assert "10.244.1.11 . 10.244.1.11" in elements(text, "delete", "hairpin")
    # web was the only 2-endpoint NodePort with Cluster policy; pools are never deleted
    assert "delete chain ip testbed-proxy np-ext-cluster-2" in text
    assert "delete chain ip testbed-proxy np-pool-2" not in text
    assert text.index("add element") < text.index("delete chain")


def test_incremental_needing_a_new_pool_chain_asks_for_a_full_sync():
    svcs, slices = kitchen_sink()
    old = build_model(svcs, slices, NODE)
    slices[0]["endpoints"] = [ep(f"10.244.1.{i}") for i in range(20, 29)]  # 9 endpoints
    assert nftables.render_incremental(old, build_model(svcs, slices, NODE), CTX) is None


def test_incremental_unchanged_is_empty():
    m = model()
    assert nftables.render_incremental(m, model(), CTX) == nftables.INCREMENTAL_HEADER + "\n"


def test_apply_is_one_nft_transaction_and_cleanup_deletes_the_table():
    runner = FakeRunner()
    backend = nftables.NftablesBackend(runner)
    text = nftables.render(model(), CTX)
    backend.apply(text)
    backend.cleanup()
    assert runner.calls[0] == (("nft", "-f", "-"), text)
    assert runner.calls[1][1] == "add table ip testbed-proxy\ndelete table ip testbed-proxy\n"


def test_duplicate_frontends_first_service_wins():
    a = service("a", "10.96.0.1", [port(80)], externalIPs=["192.0.2.9"])
    b = service("b", "10.96.0.2", [port(80)], externalIPs=["192.0.2.9"])
    sl = [eps_slice(n, [ep("10.244.1.5")], [("", 80, "TCP")]) for n in ("a", "b")]
    text = nftables.render(build_model([a, b], sl, NODE), CTX)
    assert (
        sum(x.startswith("192.0.2.9 . tcp . 80 :") for x in elements(text, "add", "service-ips"))
        == 1
    )


def test_rules_present_reads_only_the_chain_list():
    listed = "table ip other {\n\tchain services {\n\t}\n}\ntable ip testbed-proxy {\n"
    listed += "".join(f"\tchain {c} {{\n\t}}\n" for c in nftables.CANARY_CHAINS) + "}\n"
    runner = FakeRunner(lambda argv, stdin: (0, listed, ""))
    assert nftables.NftablesBackend(runner).rules_present()
    assert runner.argvs() == [("nft", "list", "chains", "ip")]
    partial = listed.replace("\tchain nat-output {\n\t}\n", "")
    assert not nftables.NftablesBackend(FakeRunner(lambda a, s: (0, partial, ""))).rules_present()
