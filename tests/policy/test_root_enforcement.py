"""The strongest check: rendered rules in real netns, reachability compared with the oracle.

Root only (``@pytest.mark.root``); skipped with the precise reason otherwise. Two "node"
netns with a bridge each and two "pod" netns per node; both renderers are exercised.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from testbed.policy import External, Oracle, iptables, nft

from .netns import Topology, roundtrip, sh, skip_reason
from .worlds import labels, ns_peer, pods_peer, pol

pytestmark = pytest.mark.root
_REASON = skip_reason()
if _REASON:
    pytest.skip(_REASON, allow_module_level=True)

BACKENDS = {"nft": nft, "iptables": iptables}
NAMESPACES = {"x": {"ns": "x"}, "y": {"ns": "y"}}
PODS = [("x", "a", {"pod": "a"}, "n1"), ("x", "b", {"pod": "b"}, "n1"),
        ("y", "a", {"pod": "a"}, "n2"), ("y", "b", {"pod": "b"}, "n2")]

SCENARIOS = {
    "no-policy": ([], [(80, "TCP")]),
    "deny-all-ingress-x": ([pol("x", "deny")], [(80, "TCP")]),
    "named-port-from-other-ns": (
        [pol("x", "deny"),
         pol("x", "a-from-y", labels(pod="a"),
             ingress=[{"from": [ns_peer(ns="y")], "ports": [{"port": "serve-80"}]}])],
        [(80, "TCP"), (81, "TCP")]),
    "egress-range-cross-node": (
        [pol("x", "b-out", labels(pod="b"), types=["Egress"],
             egress=[{"to": [{"namespaceSelector": {}, **pods_peer(pod="a")}],
                      "ports": [{"port": 81, "endPort": 90}]}])],
        [(80, "TCP"), (81, "TCP")]),
    "ipblock-except-and-udp": (
        [pol("y", "b-in", labels(pod="b"), ingress=[
            {"from": [{"ipBlock": {"cidr": "10.99.1.0/24", "except": ["10.99.1.3/32"]}}]}]),
         pol("y", "a-udp", labels(pod="a"),
             ingress=[{"ports": [{"protocol": "UDP", "port": 80}]}])],
        [(80, "TCP"), (80, "UDP")]),
    "egress-named-port-and-same-ns": (
        [pol("x", "a-out", labels(pod="a"), egress=[{"ports": [{"port": "serve-81"}]}]),
         pol("x", "deny-b", labels(pod="b")),  # same node: egress allowed, ingress denied
         pol("y", "same-ns", ingress=[{"from": [pods_peer()]}])],
        [(81, "TCP"), (80, "TCP")]),
}


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def topo(request):
    t = Topology(request.param[:3])
    try:
        t.build(PODS)
        t.backend = BACKENDS[request.param]
        yield t
    finally:
        for node in ("n1", "n2"):
            if t.node_ns(node) in t.netns:
                t.backend.cleanup(prefix=t.exec_prefix(node))
        t.close()


def _apply(t: Topology, policies: list) -> None:
    for node in ("n1", "n2"):
        text = t.backend.render(t.pods, NAMESPACES, policies, node)
        t.backend.apply(text, prefix=t.exec_prefix(node))


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_observed_reachability_matches_the_oracle(topo, scenario):
    policies, queries = SCENARIOS[scenario]
    _apply(topo, policies)
    oracle = Oracle(topo.pods, NAMESPACES, policies)
    for port, proto in queries:
        want = oracle.matrix(port, proto)
        got = topo.observed_matrix(port, proto)
        wrong = {k: f"observed {got[k]}, oracle {want[k]}" for k in want if got[k] != want[k]}
        assert not wrong, f"{scenario} {proto}/{port}: {wrong}"


def test_node_reaches_its_own_pods_despite_deny_all(topo):
    deny = [pol("x", "deny"), pol("y", "deny")]
    _apply(topo, deny)
    oracle = Oracle(topo.pods, NAMESPACES, deny)
    for node in ("n1", "n2"):
        targets = [(p.ip, 80, "TCP") for p in topo.pods]
        got = topo.probe(topo.node_ns(node), targets)
        want = [oracle.allowed(External("10.99.0.1", node=node), p, 80).allowed
                for p in topo.pods]
        assert got == want == [p.node == node for p in topo.pods]


def test_established_connections_survive_changes_new_flows_follow_policy(topo):
    _apply(topo, [])
    ya = next(p for p in topo.pods if p.key == "y/a")
    conn = topo.client("x/a", ya.ip, 80)
    assert roundtrip(conn)
    still_allowed = [pol("y", "only-x-a", labels(pod="a"), ingress=[
        {"from": [{**ns_peer(ns="x"), **pods_peer(pod="a")}]}])]
    _apply(topo, still_allowed)
    assert roundtrip(conn), "an established, still-allowed connection was dropped"
    assert topo.probe(topo.pod_ns["x/a"], [(ya.ip, 80, "TCP")]) == [True]
    assert topo.probe(topo.pod_ns["x/b"], [(ya.ip, 80, "TCP")]) == [False]
    _apply(topo, [pol("y", "deny-a", labels(pod="a"))])
    assert topo.probe(topo.pod_ns["x/a"], [(ya.ip, 80, "TCP")]) == [False]
    # by design (conntrack accept first) an established flow outlives a new deny
    assert roundtrip(conn)


def test_apply_is_idempotent_and_leaves_other_rules_alone(topo):
    node, prefix = "n1", topo.exec_prefix("n1")
    if topo.backend is nft:
        sh(*prefix, "nft", "add table inet other-owner")
        sh(*prefix, "nft",
           "add chain inet other-owner c10 { type filter hook forward priority 10; }")
    else:
        sh(*prefix, "iptables", "-w", "-N", "OTHER-OWNER")
        sh(*prefix, "iptables", "-w", "-A", "FORWARD", "-j", "OTHER-OWNER")
    pols = SCENARIOS["named-port-from-other-ns"][0]
    text = topo.backend.render(topo.pods, NAMESPACES, pols, node)
    topo.backend.apply(text, prefix=prefix)
    topo.backend.apply(text, prefix=prefix)
    if topo.backend is nft:
        tables = sh(*prefix, "nft", "list", "tables").stdout.split("\n")
        assert "table inet testbed-policy" in tables and "table inet other-owner" in tables
        nft.cleanup(prefix=prefix)
        tables = sh(*prefix, "nft", "list", "tables").stdout
        assert "testbed-policy" not in tables and "other-owner" in tables
        sh(*prefix, "nft", "delete table inet other-owner")
    else:
        fwd = sh(*prefix, "iptables", "-w", "-S", "FORWARD").stdout
        assert fwd.count("-j TESTBED-POL-FWD") == 1 and "-j OTHER-OWNER" in fwd
        # a pod disappears: its chains are removed in the next transaction
        fewer = topo.backend.render(topo.pods[2:], NAMESPACES, pols, node)
        topo.backend.apply(fewer, prefix=prefix)
        assert sh(*prefix, "iptables-save", "-t", "filter").stdout.count(":TESTBED-POL-") == 2
        iptables.cleanup(prefix=prefix)
        saved = sh(*prefix, "iptables-save", "-t", "filter").stdout
        assert "TESTBED-POL" not in saved and "-A FORWARD -j OTHER-OWNER" in saved
        sh(*prefix, "iptables", "-w", "-D", "FORWARD", "-j", "OTHER-OWNER")
        sh(*prefix, "iptables", "-w", "-X", "OTHER-OWNER")


@pytest.fixture
def scratch_ns():
    name = f"tbpol-chk-{os.getpid()}"
    sh("ip", "netns", "add", name)
    try:
        yield ["ip", "netns", "exec", name]
    finally:
        sh("ip", "netns", "del", name, check=False)


def test_every_golden_loads_in_the_kernel(scratch_ns):
    golden = Path(__file__).parent / "golden"
    for path in sorted(golden.glob("*.nft")):
        sh(*scratch_ns, "nft", "-c", "-f", str(path))
    for path in sorted(golden.glob("*.iptables")):
        sh(*scratch_ns, "iptables-restore", "--test", "--noflush", stdin=path.read_text())
