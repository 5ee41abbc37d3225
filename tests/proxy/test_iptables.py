"""iptables renderer: kube-proxy's chains, golden files, partial restores, apply sequence."""

from __future__ import annotations

import re

from testbed.proxy import iptables
from testbed.proxy.bench import synthetic_model
from testbed.proxy.iptables_rules import port_proto_hash, probability, sep_chain, svc_chain
from testbed.proxy.model import build_model

from .fakes import FakeRunner
from .samples import CTX, NODE, ep, eps_slice, kitchen_sink, port, service


def model():
    return build_model(*kitchen_sink(), NODE)


def by_port(m, key):
    return next(p for p in m if p.port_key == key)


def test_hash_and_probability_match_kube_proxy():
    # Chain names seen in every kubeadm cluster's iptables-save.
    assert port_proto_hash("default/kubernetes:https", "tcp") == "NPX46M4PTMTKRN6Y"
    assert port_proto_hash("kube-system/kube-dns:dns", "udp") == "TCOU7JCQXEZGVUNU"
    assert port_proto_hash("kube-system/kube-dns:dns-tcp", "tcp") == "ERIFXISQEP7F7OF4"
    assert [probability(n) for n in (2, 3, 7)] == ["0.5000000000", "0.3333333333", "0.1428571429"]


def test_full_render_golden(golden):
    golden("iptables-full.txt", iptables.render(model(), CTX))


def test_incremental_render_golden(golden):
    svcs, slices = kitchen_sink()
    old = build_model(svcs, slices, NODE)
    slices[0]["endpoints"].append(ep("10.244.3.5", "node-c"))  # web scales up
    new = build_model(svcs, slices, NODE)
    golden("iptables-incremental.txt", iptables.render_incremental(old, new, CTX))


def test_only_own_chains_are_declared_and_dispatch_ends_with_nodeports():
    text = iptables.render(model(), CTX)
    assert re.findall(r"^\*(\w+)", text, re.M) == ["filter", "nat"]
    assert all(c.startswith("KUBE-") for c in re.findall(r"^:(\S+)", text, re.M))
    services = [line for line in text.splitlines() if line.startswith("-A KUBE-SERVICES")]
    nat_services = services[services.index(next(s for s in services if "cluster IP" in s)) :]
    assert "-j KUBE-NODEPORTS" in nat_services[-1]
    assert "-m addrtype --dst-type LOCAL" in nat_services[-1]


def test_no_endpoints_rejects_and_local_policy_without_local_endpoints_drops():
    text = iptables.render(model(), CTX)
    assert (
        '-A KUBE-SERVICES -m comment --comment "default/empty has no endpoints" -m tcp -p tcp'
        " -d 10.96.0.99/32 --dport 80 -j REJECT --reject-with icmp-port-unreachable"
    ) in text
    lines = [x for x in text.splitlines() if "default/lb-nolocal has no local endpoints" in x]
    assert len(lines) == 2 and all(x.endswith("-j DROP") for x in lines)
    assert any("--dst-type LOCAL" in x and "--dport 30021" in x for x in lines)


def test_internal_local_without_local_endpoints_drops_cluster_ip():
    svc = service("itp", "10.96.0.40", [port(80)], internalTrafficPolicy="Local")
    m = build_model([svc], [eps_slice("itp", [ep("10.244.2.11", "node-b")], [("", 80, "TCP")])],
                    NODE)  # fmt: skip
    text = iptables.render(m, CTX)
    assert '"default/itp has no local endpoints"' in text and "-d 10.96.0.40/32" in text
    assert ":KUBE-SVL-" not in text and ":KUBE-SVC-" not in text


def test_external_local_chain_short_circuits_pods_and_node():
    m = model()
    p = by_port(m, "default/lb:https")
    h = port_proto_hash(p.port_key, "tcp")
    ext = [x for x in iptables.render(m, CTX).splitlines() if x.startswith(f"-A KUBE-EXT-{h}")]
    assert "-s 10.244.0.0/16 -j KUBE-SVC-" + h in ext[0]
    assert "--src-type LOCAL -j KUBE-MARK-MASQ" in ext[1]
    assert "--src-type LOCAL -j KUBE-SVC-" + h in ext[2]
    assert ext[3] == f"-A KUBE-EXT-{h} -j KUBE-SVL-{h}"  # outside clients: local only, no masq
    web = port_proto_hash("default/web:http", "tcp")
    assert f'-A KUBE-EXT-{web} -m comment --comment "masquerade traffic for' in iptables.render(
        m, CTX)  # fmt: skip


def test_endpoint_chains_hairpin_masquerade_and_off_cluster_masquerade():
    m = model()
    p = by_port(m, "default/web:http")
    text = iptables.render(m, CTX)
    sep = sep_chain(p, p.endpoints[0])
    assert (
        f'-A {sep} -m comment --comment "default/web:http" -s 10.244.1.5/32 -j KUBE-MARK-MASQ'
        in text
    )
    masq = (
        f'-A {svc_chain(p)} -m comment --comment "default/web:http cluster IP" -m tcp -p tcp'
        " -d 10.96.0.10/32 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ"
    )
    assert masq in text
    assert "-m statistic --mode random --probability 0.5000000000 -j " + sep in text
    snat = (
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT"'
        " -j MASQUERADE --random-fully"
    )
    assert snat in text
    assert "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000" in text


def test_session_affinity_uses_recent_match():
    m = model()
    p = by_port(m, "default/sticky")
    text = iptables.render(m, CTX)
    for e in p.endpoints:
        sep = sep_chain(p, e)
        assert f"-m recent --name {sep} --rcheck --seconds 600 --reap -j {sep}" in text
        assert (
            f"-m recent --name {sep} --set -m tcp -p tcp -j DNAT --to-destination {e.addr}" in text
        )


def test_large_clusters_drop_per_endpoint_comments():
    text = iptables.render(synthetic_model(600, 2), CTX)  # 1200 endpoints > 1000
    assert not any(x.startswith("-A KUBE-SEP-") and "comment" in x for x in text.splitlines())
    assert '"bench/svc-000000:http cluster IP"' in text  # dispatch keeps them


def test_ten_thousand_services_structure():
    text = iptables.render(synthetic_model(10000, 2), CTX)
    chains = re.findall(r"^:(KUBE-\w+)-", text, re.M)
    assert chains.count("KUBE-SVC") == 10000 and chains.count("KUBE-SEP") == 20000
    assert sum(x.startswith("-A KUBE-SERVICES ") for x in text.splitlines()) == 10001


def test_incremental_touches_only_the_changed_service():
    svcs, slices = kitchen_sink()
    old = build_model(svcs, slices, NODE)
    slices[0]["endpoints"] = [ep("10.244.1.5")]  # web loses its remote endpoint
    new = build_model(svcs, slices, NODE)
    text = iptables.render_incremental(old, new, CTX)
    web = by_port(old, "default/web:http")
    dns = by_port(old, "kube-system/dns:dns")
    declared = re.findall(r"^:(\S+)", text, re.M)
    assert svc_chain(web) in declared and svc_chain(dns) not in declared
    gone = sep_chain(web, web.endpoints[1])
    assert f"-X {gone}" in text and gone in declared  # flushed, then deleted
    assert "-S" not in text.splitlines()  # partial restores need no listing
    assert "-A KUBE-SERVICES" in text  # dispatch chains are rewritten whole


def test_stale_chains_from_listing_and_deletion_input():
    text = iptables.render(model(), CTX)
    listing = "-N KUBE-SERVICES\n-N KUBE-SVC-AAAA\n-N KUBE-SEP-ZZZZ\n-N OTHER-CHAIN\n"
    listing += "".join(f"-N {c}\n" for c in re.findall(r"^:(KUBE-SVC-\S+)", text, re.M))
    assert iptables.stale_chains(text, listing) == ["KUBE-SVC-AAAA", "KUBE-SEP-ZZZZ"]
    body = iptables.deletion_input("nat", ["KUBE-SVC-AAAA", "KUBE-SEP-ZZZZ"])
    assert body == ("*nat\n:KUBE-SVC-AAAA - [0:0]\n:KUBE-SEP-ZZZZ - [0:0]\n-X KUBE-SVC-AAAA\n"
                    "-X KUBE-SEP-ZZZZ\nCOMMIT\n")  # fmt: skip


def test_apply_full_restores_deletes_stale_and_ensures_missing_jumps():
    def respond(argv, stdin):
        if argv[0] == "iptables-restore" and stdin and stdin.startswith(iptables.FULL_HEADER):
            return 0, "-N KUBE-SEP-STALE\n", ""
        if argv[:2] == ("iptables", "-t") and argv[3] == "-S" and argv[4] == "PREROUTING":
            line = iptables.jump_rule_line(iptables.JUMP_RULES[6])
            return 0, f"-P PREROUTING ACCEPT\n{line}\n", ""
        return 0, "", ""

    runner = FakeRunner(respond)
    backend = iptables.IptablesBackend(runner)
    backend.apply(iptables.render(model(), CTX))
    argvs = runner.argvs()
    assert argvs[0] == ("iptables-restore", "--noflush")
    assert (
        argvs[1] == ("iptables-restore", "--noflush") and "-X KUBE-SEP-STALE" in runner.calls[1][1]
    )
    inserts = [a for a in argvs if "-I" in a]
    assert len(inserts) == len(iptables.JUMP_RULES) - 1  # PREROUTING's jump already there
    assert ("iptables", "-t", "nat", "-I", "POSTROUTING", "-m", "comment", "--comment",
            "kubernetes postrouting rules", "-j", "KUBE-POSTROUTING") in inserts  # fmt: skip


def test_apply_partial_is_one_restore():
    runner = FakeRunner()
    svcs, slices = kitchen_sink()
    old = build_model(svcs, slices, NODE)
    new = build_model(svcs[:-1], slices, NODE)
    iptables.IptablesBackend(runner).apply(iptables.render_incremental(old, new, CTX) or "")
    assert runner.argvs() == [("iptables-restore", "--noflush")]


def test_jump_rule_line_matches_iptables_save_format():
    assert iptables.jump_rule_line(iptables.JUMP_RULES[0]) == (
        "-A INPUT -m conntrack --ctstate NEW -m comment --comment "
        '"kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES'
    )
