"""Oracle cases written from the networking.k8s.io/v1 API docs (one per semantic bullet)."""

from __future__ import annotations

import pytest

from testbed.policy import (
    SCTP_MESSAGE,
    ContainerPort,
    External,
    Oracle,
    Pod,
    PolicyError,
    Unsupported,
    matrix,
)
from testbed.policy.model import NAME_LABEL as NAME
from testbed.policy.oracle import label_selector_matches

from .worlds import (
    NAMESPACES,
    deny_from,
    deny_to,
    e2e_pods,
    expect,
    labels,
    ns_peer,
    pods_peer,
    pol,
)

PODS = e2e_pods()
ALL = [p.key for p in PODS]
X = [k for k in ALL if k.startswith("x/")]
Y = [k for k in ALL if k.startswith("y/")]
P = {p.key: p for p in PODS}


def _x_deny_all() -> dict:
    return pol("x", "deny-all")


CASES = [
    ("no policies: everything allowed", [], 80, "TCP", set()),
    ("default-deny ingress isolates every pod of the namespace (self still allowed)",
     [_x_deny_all()], 80, "TCP", set().union(*(deny_to(PODS, d) for d in X))),
    ("policy in y does not select pods in x",
     [pol("y", "deny-all")], 80, "TCP", set().union(*(deny_to(PODS, d) for d in Y))),
    ("podSelector selects only matching pods",
     [pol("x", "deny-a", labels(pod="a"))], 80, "TCP", deny_to(PODS, "x/a")),
    ("podSelector-only peer means pods of the policy's namespace",
     [pol("x", "from-b", labels(pod="a"), ingress=[{"from": [pods_peer(pod="b")]}])],
     80, "TCP", deny_to(PODS, "x/a", ["x/b"])),
    ("namespaceSelector-only peer means every pod of matching namespaces",
     [pol("x", "from-y", labels(pod="a"), ingress=[{"from": [ns_peer(ns="y")]}])],
     80, "TCP", deny_to(PODS, "x/a", Y)),
    ("namespaceSelector AND podSelector in one peer",
     [pol("x", "from-y-b", labels(pod="a"),
          ingress=[{"from": [{**ns_peer(ns="y"), **pods_peer(pod="b")}]}])],
     80, "TCP", deny_to(PODS, "x/a", ["y/b"])),
    ("namespaceSelector OR podSelector as two peers",
     [pol("x", "or", labels(pod="a"), ingress=[{"from": [ns_peer(ns="y"), pods_peer(pod="b")]}])],
     80, "TCP", deny_to(PODS, "x/a", [*Y, "x/b"])),
    ("empty namespaceSelector = all namespaces",
     [pol("x", "all-ns-b", labels(pod="a"),
          ingress=[{"from": [{"namespaceSelector": {}, **pods_peer(pod="b")}]}])],
     80, "TCP", deny_to(PODS, "x/a", ["x/b", "y/b", "z/b"])),
    ("namespace name label is set automatically",
     [pol("x", "by-name", labels(pod="a"),
          ingress=[{"from": [{"namespaceSelector": labels(**{NAME: "z"})}]}])],
     80, "TCP", deny_to(PODS, "x/a", ["z/a", "z/b", "z/c"])),
    ("matchExpressions In + NotIn",
     [pol("x", "expr", labels(pod="a"), ingress=[{"from": [{
         "namespaceSelector": {"matchExpressions": [
             {"key": "ns", "operator": "NotIn", "values": ["x"]}]},
         "podSelector": {"matchExpressions": [
             {"key": "pod", "operator": "In", "values": ["a", "c"]}]},
     }]}])],
     80, "TCP", deny_to(PODS, "x/a", ["y/a", "y/c", "z/a", "z/c"])),
    ("matchExpressions Exists",
     [pol("x", "exists", labels(pod="a"), ingress=[{"from": [{
         "namespaceSelector": {},
         "podSelector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}}]}])],
     80, "TCP", deny_to(PODS, "x/a", ["x/b", "y/b", "z/b"])),
    ("matchExpressions DoesNotExist selects the isolated pods",
     [pol("x", "dne", {"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]})],
     80, "TCP", deny_to(PODS, "x/a") | deny_to(PODS, "x/c")),
    ("rules are ORed",
     [pol("x", "two-rules", labels(pod="a"),
          ingress=[{"from": [pods_peer(pod="b")]}, {"from": [pods_peer(pod="c")]}])],
     80, "TCP", deny_to(PODS, "x/a", ["x/b", "x/c"])),
    ("policies are additive",
     [pol("x", "p1", labels(pod="a"), ingress=[{"from": [pods_peer(pod="b")]}]),
      pol("x", "p2", labels(pod="a"), ingress=[{"from": [pods_peer(pod="c")]}])],
     80, "TCP", deny_to(PODS, "x/a", ["x/b", "x/c"])),
    ("empty from and empty ports match everything",
     [pol("x", "allow-all", ingress=[{"from": [], "ports": []}])], 80, "TCP", set()),
    ("ingress rule {} allows all",
     [pol("x", "allow-all", ingress=[{}])], 81, "UDP", set()),
    ("numeric port: other ports denied",
     [pol("x", "p80", labels(pod="a"), ingress=[{"ports": [{"port": 80}]}])],
     81, "TCP", deny_to(PODS, "x/a")),
    ("numeric port: that port allowed",
     [pol("x", "p80", labels(pod="a"), ingress=[{"ports": [{"port": 80}]}])],
     80, "TCP", set()),
    ("named port resolves on the destination pod (81 allowed)",
     [pol("x", "named", labels(pod="a"), ingress=[{"ports": [{"port": "serve-81-tcp"}]}])],
     81, "TCP", set()),
    ("named port resolves on the destination pod (80 denied)",
     [pol("x", "named", labels(pod="a"), ingress=[{"ports": [{"port": "serve-81-tcp"}]}])],
     80, "TCP", deny_to(PODS, "x/a")),
    ("named port needs the rule's protocol to match the container port's",
     [pol("x", "named-udp", labels(pod="a"),
          ingress=[{"ports": [{"port": "serve-80-tcp", "protocol": "UDP"}]}])],
     80, "UDP", deny_to(PODS, "x/a")),
    ("endPort range is inclusive",
     [pol("x", "range", labels(pod="a"), ingress=[{"ports": [{"port": 79, "endPort": 81}]}])],
     81, "TCP", set()),
    ("endPort range excludes ports above",
     [pol("x", "range", labels(pod="a"), ingress=[{"ports": [{"port": 70, "endPort": 80}]}])],
     81, "TCP", deny_to(PODS, "x/a")),
    ("protocol defaults to TCP: UDP denied",
     [pol("x", "tcp80", labels(pod="a"), ingress=[{"ports": [{"port": 80}]}])],
     80, "UDP", deny_to(PODS, "x/a")),
    ("protocol without port = every port of that protocol",
     [pol("x", "udp-any", labels(pod="a"), ingress=[{"ports": [{"protocol": "UDP"}]}])],
     4242, "UDP", set()),
    ("ipBlock with except matches pod IPs (our documented choice)",
     [pol("x", "cidr", labels(pod="a"), ingress=[{"from": [{"ipBlock": {
         "cidr": "10.10.2.0/24", "except": ["10.10.2.4/32"]}}]}])],
     80, "TCP", deny_to(PODS, "x/a", ["y/a", "y/b"])),
    ("policyTypes [Egress] ignores ingress rules and denies all egress",
     [pol("x", "egress-only", labels(pod="a"), types=["Egress"],
          ingress=[{"from": [pods_peer(pod="b")]}])],
     80, "TCP", deny_from(PODS, "x/a")),
    ("egress rules present => Egress type by default (ingress still isolated)",
     [pol("x", "eg", labels(pod="a"), egress=[{"to": [pods_peer(pod="b")]}])],
     80, "TCP", deny_from(PODS, "x/a", ["x/b"]) | deny_to(PODS, "x/a")),
    ("empty egress list => no Egress type",
     [pol("x", "eg-empty", labels(pod="a"), egress=[])], 80, "TCP", deny_to(PODS, "x/a")),
    ("egress named port resolves on the destination pod",
     [pol("x", "eg-named", labels(pod="a"), types=["Egress"],
          egress=[{"ports": [{"port": "serve-81-tcp"}]}])], 81, "TCP", set()),
    ("egress named port: other ports denied",
     [pol("x", "eg-named", labels(pod="a"), types=["Egress"],
          egress=[{"ports": [{"port": "serve-81-tcp"}]}])], 80, "TCP", deny_from(PODS, "x/a")),
    ("a flow needs egress at the source AND ingress at the destination",
     [pol("x", "eg", labels(pod="a"), types=["Egress"], egress=[{"to": [ns_peer(ns="y")]}]),
      pol("y", "deny-b", labels(pod="b"))],
     80, "TCP", deny_from(PODS, "x/a", Y) | deny_to(PODS, "y/b")),
]


@pytest.mark.parametrize(("policies", "port", "protocol", "denied"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_matrix_case(policies, port, protocol, denied):
    got = matrix(PODS, NAMESPACES, policies, port, protocol)
    want = expect(PODS, denied)
    wrong = sorted(k for k in want if got[k] != want[k])
    assert not wrong, f"mismatched pairs (src, dst): {wrong}"


def test_node_traffic_to_local_pods_is_always_allowed():
    o = Oracle(PODS, NAMESPACES, [_x_deny_all()])
    assert o.allowed(External("10.0.0.1", node="n1"), P["x/a"], 80)  # x/a runs on n1
    assert not o.allowed(External("10.0.0.2", node="n2"), P["x/a"], 80)
    assert not o.allowed(External("192.0.2.7"), P["x/a"], 80)


def test_traffic_to_own_node_is_allowed_but_other_hosts_need_egress():
    o = Oracle(PODS, NAMESPACES, [pol("x", "no-egress", types=["Egress"])])
    assert o.allowed(P["x/a"], External("10.0.0.1", node="n1"), 80)
    assert not o.allowed(P["x/a"], External("10.0.0.2", node="n2"), 80)


def test_ipblock_for_external_peers_and_except():
    p = pol("x", "ext", labels(pod="a"), types=["Ingress", "Egress"],
            ingress=[{"from": [{"ipBlock": {"cidr": "192.0.2.0/24",
                                            "except": ["192.0.2.128/25"]}}]}],
            egress=[{"to": [{"ipBlock": {"cidr": "198.51.100.0/24"}}],
                     "ports": [{"port": "serve-80-tcp"}]},
                    {"to": [{"ipBlock": {"cidr": "198.51.100.0/24"}}], "ports": [{"port": 443}]}])
    o = Oracle(PODS, NAMESPACES, [p])
    assert o.allowed(External("192.0.2.5"), P["x/a"], 80)
    assert not o.allowed(External("192.0.2.200"), P["x/a"], 80)
    assert o.allowed(P["x/a"], External("198.51.100.9"), 443)
    # a named port cannot resolve on a non-pod destination
    assert not o.allowed(P["x/a"], External("198.51.100.9"), 80)


def test_selector_peer_never_matches_external():
    p = pol("x", "all-ns", ingress=[{"from": [{"namespaceSelector": {}}]}])
    o = Oracle(PODS, NAMESPACES, [p])
    assert not o.allowed(External("10.10.1.2"), P["x/b"], 80)
    assert o.allowed(P["z/c"], P["x/b"], 80)


def test_explain_names_the_policies_and_rules():
    o = Oracle(PODS, NAMESPACES, [_x_deny_all(), pol("x", "from-b", labels(pod="a"),
                                                     ingress=[{"from": [pods_peer(pod="b")]}])])
    text = o.explain(P["x/b"], P["x/a"], 80)
    assert text.startswith("ALLOWED: x/b -> x/a TCP/80")
    assert "x/from-b ingress[0]" in text and "x/deny-all" in text
    denied = o.allowed(P["y/a"], P["x/a"], 80)
    assert not denied
    assert any("denied, isolated by x/deny-all, x/from-b" in r for r in denied.reasons)


def test_sctp_is_unsupported_with_a_clear_message():
    p = pol("x", "sctp", ingress=[{"ports": [{"protocol": "SCTP", "port": 9}]}])
    with pytest.raises(Unsupported, match=SCTP_MESSAGE):
        Oracle(PODS, NAMESPACES, [p])
    with pytest.raises(Unsupported, match="SCTP is not supported"):
        Oracle(PODS, NAMESPACES, []).allowed(P["x/a"], P["x/b"], 9, "SCTP")


@pytest.mark.parametrize("bad", [
    {"ports": [{"port": "http", "endPort": 90}]},
    {"ports": [{"endPort": 90}]},
    {"ports": [{"port": 90, "endPort": 80}]},
    {"ports": [{"port": "80"}]},
    {"ports": [{"port": 80, "protocol": "ICMP"}]},
    {"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]},
    {"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/24"]}}]},
    {"from": [{}]},
    {"from": [{"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}]},
    {"from": [{"podSelector": {"matchExpressions": [
        {"key": "a", "operator": "Gt", "values": ["1"]}]}}]},
])
def test_malformed_policies_are_rejected(bad):
    with pytest.raises(PolicyError):
        Oracle(PODS, NAMESPACES, [pol("x", "bad", ingress=[bad])])


def test_label_selector_semantics():
    lb = {"a": "1", "b": "2"}
    assert label_selector_matches({}, {})
    assert label_selector_matches({"matchLabels": {"a": "1"}}, lb)
    assert not label_selector_matches({"matchLabels": {"a": "1", "c": "3"}}, lb)
    not_in = {"matchExpressions": [{"key": "c", "operator": "NotIn", "values": ["3"]}]}
    assert label_selector_matches(not_in, lb)  # NotIn matches when the key is absent
    both = {"matchLabels": {"a": "1"},
            "matchExpressions": [{"key": "b", "operator": "In", "values": ["9"]}]}
    assert not label_selector_matches(both, lb)  # matchLabels AND matchExpressions


def test_pod_from_k8s_object():
    obj = {"metadata": {"namespace": "x", "name": "web", "labels": {"app": "w"}},
           "spec": {"nodeName": "n1", "containers": [
               {"name": "c", "ports": [{"containerPort": 8080, "name": "http"},
                                       {"containerPort": 53, "protocol": "UDP"}]}]},
           "status": {"podIP": "10.0.0.7"}}
    p = Pod.from_k8s(obj)
    assert (p.key, p.ip, p.node, dict(p.labels)) == ("x/web", "10.0.0.7", "n1", {"app": "w"})
    assert p.ports == (ContainerPort(8080, "http"), ContainerPort(53, None, "UDP"))
    assert External("1.2.3.4").key == "1.2.3.4" and External("1.2.3.4", node="n1").key == "node:n1"
