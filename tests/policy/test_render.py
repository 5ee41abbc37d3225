"""Golden renders (nft and iptables) plus structural checks of the renderers.

Regenerate the goldens with ``UPDATE_GOLDENS=1 .venv/bin/python -m pytest tests/policy``.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import pytest

from testbed.policy import Pod, Unsupported, iptables, nft
from testbed.policy.plan import compile_node

from .worlds import NAMESPACES, e2e_pods, labels, ns_peer, pods_peer, pol

GOLDEN = Path(__file__).parent / "golden"

POLICY_SETS = {
    "none": [],
    "deny-all": [pol("x", "deny-all", types=["Ingress", "Egress"])],
    "mixed": [
        pol("x", "deny-all"),
        pol("x", "web-from-y", labels(pod="a"), ingress=[
            {"from": [ns_peer(ns="y")], "ports": [{"port": "serve-80-tcp"}, {"port": 81}]},
            {"from": [{"ipBlock": {"cidr": "10.10.3.0/24", "except": ["10.10.3.4/32"]}}],
             "ports": [{"port": 8000, "endPort": 8100}, {"protocol": "UDP"}]},
        ]),
        pol("x", "b-egress", labels(pod="b"), egress=[
            {"to": [{"namespaceSelector": {}, **pods_peer(pod="a")}],
             "ports": [{"port": "serve-81-tcp"}, {"port": 80}]},
            {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
        ]),
        pol("y", "same-ns", ingress=[{"from": [pods_peer()]}]),
    ],
}


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDENS"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing golden {path}; run with UPDATE_GOLDENS=1"
    assert text == path.read_text(), f"{name} differs from its golden (UPDATE_GOLDENS=1 to accept)"


@pytest.mark.parametrize("node", ["n1", "n2"])
@pytest.mark.parametrize("name", sorted(POLICY_SETS))
def test_golden_nft(name, node):
    _check_golden(f"{name}.{node}.nft", nft.render(e2e_pods(), NAMESPACES, POLICY_SETS[name], node))


@pytest.mark.parametrize("node", ["n1", "n2"])
@pytest.mark.parametrize("name", sorted(POLICY_SETS))
def test_golden_iptables(name, node):
    text = iptables.render(e2e_pods(), NAMESPACES, POLICY_SETS[name], node)
    _check_golden(f"{name}.{node}.iptables", text)


def test_render_is_deterministic_under_input_order():
    pods, pols = e2e_pods(), POLICY_SETS["mixed"]
    want_nft = nft.render(pods, NAMESPACES, pols, "n1")
    want_ipt = iptables.render(pods, NAMESPACES, pols, "n1")
    rng = random.Random(7)
    for _ in range(5):
        p2, q2 = pods[:], pols[:]
        rng.shuffle(p2)
        rng.shuffle(q2)
        assert nft.render(p2, NAMESPACES, q2, "n1") == want_nft
        assert iptables.render(p2, NAMESPACES, q2, "n1") == want_ipt


def _chain_bodies(text: str) -> list[str]:
    return re.findall(r"\tchain \S+ \{\n(.*?)\n\t\}", text, flags=re.S)


def test_nft_touches_only_its_table_and_uses_no_anonymous_sets():
    text = nft.render(e2e_pods(), NAMESPACES, POLICY_SETS["mixed"], "n1")
    tables = re.findall(r"^(?:delete )?table (\S+ \S+)", text, flags=re.M)
    assert set(tables) == {"inet testbed-policy"}
    for body in _chain_bodies(text):
        for line in body.splitlines():
            assert "{" not in line, f"anonymous set/map in rule: {line}"
    fwd = _chain_bodies(text)[0].splitlines()
    assert fwd[1].strip() == "ct state established,related accept"
    assert fwd[2].strip() == "ct state invalid drop"


def test_nft_sets_are_shared_between_pods_with_the_same_rule():
    pods = [Pod("x", f"p{i}", {"app": "web"}, f"10.0.0.{i + 2}", "n1") for i in range(4)]
    pods += [Pod("x", f"c{i}", {"app": "client"}, f"10.0.1.{2 * i + 2}", "n2") for i in range(3)]
    p = pol("x", "web", labels(app="web"), ingress=[{"from": [pods_peer(app="client")],
                                                      "ports": [{"port": 80}, {"port": 443}]}])
    text = nft.render(pods, {}, [p], "n1")
    assert text.count("\tset peers_") == 1 and text.count("\tset ports_") == 1
    assert text.count("ip saddr @peers_0 meta l4proto . th dport @ports_0 accept") == 4
    # non-isolated pods stay out of the verdict maps
    text = nft.render(pods, {}, [p], "n2")
    assert "jump" not in text


def test_single_elements_are_inlined():
    pods = [Pod("x", "a", {}, "10.0.0.2", "n1"), Pod("x", "b", {"r": "1"}, "10.0.0.9", "n1")]
    p = pol("x", "one", labels(), ingress=[{"from": [pods_peer(r="1")], "ports": [{"port": 80}]}])
    text = nft.render(pods, {}, [p], "n1")
    assert "ip saddr 10.0.0.9 meta l4proto tcp th dport 80 accept" in text
    assert "\tset peers_" not in text


def test_sctp_cannot_be_rendered():
    p = pol("x", "sctp", ingress=[{"ports": [{"protocol": "SCTP", "port": 9}]}])
    with pytest.raises(Unsupported, match="SCTP is not supported by this testbed's data plane"):
        nft.render(e2e_pods(), NAMESPACES, [p], "n1")
    with pytest.raises(Unsupported):
        iptables.render(e2e_pods(), NAMESPACES, [p], "n1")


def test_iptables_only_own_chains_short_names_and_never_accepts():
    text = iptables.render(e2e_pods(), NAMESPACES, POLICY_SETS["mixed"], "n1")
    declared = re.findall(r"^:(\S+)", text, flags=re.M)
    assert declared and all(c.startswith("TESTBED-POL-") and len(c) <= 28 for c in declared)
    appended = set(re.findall(r"^-A (\S+)", text, flags=re.M))
    assert appended <= set(declared)
    assert "ACCEPT" not in text and "FORWARD" not in text
    assert not re.search(r"^-[FXDIN] ", text, flags=re.M)


def test_iptables_multiport_is_chunked():
    frags = iptables.port_matches(tuple(("tcp", p, p) for p in range(1000, 1020))
                                  + (("udp", 1, 5), ("udp", 7, 7)))
    assert frags[0].count(",") == 14 and frags[1].count(",") == 4
    assert frags[2] == "-p udp -m multiport --dports 1:5,7"
    assert iptables.port_matches((("tcp", 0, 65535),)) == ["-p tcp"]
    assert iptables.port_matches(None) == [""]


def test_iptables_stale_chains_are_flushed_and_deleted_in_the_same_transaction():
    text = iptables.render_plan(compile_node([], {}, [], "n1"))
    full = iptables.with_stale_removed(text, ["TESTBED-POL-FWD", "TESTBED-POL-I-OLD", "OTHER"])
    lines = full.splitlines()
    assert ":TESTBED-POL-I-OLD - [0:0]" in lines and "-X TESTBED-POL-I-OLD" in lines
    assert lines.index("-X TESTBED-POL-I-OLD") < lines.index("COMMIT")
    assert "OTHER" not in full
    assert iptables.with_stale_removed(text, ["TESTBED-POL-FWD"]) == text
