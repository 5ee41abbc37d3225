"""Hypothesis properties of the oracle, and agreement of the compiled plan with the oracle."""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testbed.policy import External, Oracle, Pod, compile_node
from testbed.policy.oracle import label_selector_matches

from .interp import plan_allows
from .strategies import EXTERNAL_IPS, QUERY_PORTS, clusters, policy_lists, rules, selectors

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _all_matrices(o: Oracle) -> dict:
    return {(proto, port): o.matrix(port, proto) for proto, port in QUERY_PORTS}


@SETTINGS
@given(world=clusters(), pols=policy_lists(), data=st.data())
def test_adding_an_ingress_rule_never_removes_reachability(world, pols, data):
    pods, namespaces = world
    if not pols:
        return
    before = _all_matrices(Oracle(pods, namespaces, pols))
    grown = copy.deepcopy(pols)
    target = grown[data.draw(st.integers(0, len(grown) - 1))]
    target["spec"].setdefault("ingress", []).append(data.draw(rules("from")))
    after = _all_matrices(Oracle(pods, namespaces, grown))
    lost = [(q, k) for q in before for k, ok in before[q].items() if ok and not after[q][k]]
    assert not lost, f"adding an ingress rule removed reachability: {lost}"


@SETTINGS
@given(world=clusters(), pols=policy_lists(), sel=selectors(), ns=st.sampled_from(("x", "y")))
def test_default_deny_isolates_exactly_the_selected_pods(world, pols, sel, ns):
    pods, namespaces = world
    deny = {"metadata": {"namespace": ns, "name": "zz-deny"}, "spec": {"podSelector": sel}}
    old, new = Oracle(pods, namespaces, pols), Oracle(pods, namespaces, [*pols, deny])
    selected = {p.key for p in pods if p.namespace == ns and label_selector_matches(sel, p.labels)}
    for p in pods:
        assert new.isolated(p, "Ingress") == (old.isolated(p, "Ingress") or p.key in selected)
        assert new.isolated(p, "Egress") == old.isolated(p, "Egress")
    for (proto, port), before in _all_matrices(old).items():
        after = new.matrix(port, proto)
        for (s, d), ok in before.items():
            if d in selected and not old.isolated(_pod(pods, d), "Ingress"):
                assert after[(s, d)] == (s == d), (s, d, proto, port)
            else:
                assert after[(s, d)] == ok, (s, d, proto, port)


def _pod(pods: list[Pod], key: str) -> Pod:
    return next(p for p in pods if p.key == key)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=clusters(max_pods=5), pols=policy_lists(max_size=4))
def test_compiled_plan_agrees_with_the_oracle(world, pols):
    pods, namespaces = world
    o = Oracle(pods, namespaces, pols)
    plans = {n: compile_node(pods, namespaces, pols, n) for n in ("n1", "n2")}
    peers = [*pods, *(External(ip) for ip in EXTERNAL_IPS)]
    for proto, port in QUERY_PORTS:
        for s in peers:
            for d in peers:
                if isinstance(s, External) and isinstance(d, External):
                    continue
                want = o.allowed(s, d, port, proto).allowed
                got = plan_allows(plans, pods, s.ip, d.ip, proto.lower(), port)
                assert got == want, o.explain(s, d, port, proto)


def test_plan_only_lists_isolated_local_pods():
    pods = [Pod("x", "a", {"app": "a"}, "10.0.0.2", "n1"), Pod("x", "b", {}, "10.0.0.3", "n1"),
            Pod("x", "c", {"app": "a"}, "10.0.0.4", "n2"), Pod("x", "d", {"app": "a"}, "", "n1")]
    p = {"metadata": {"namespace": "x", "name": "d"},
         "spec": {"podSelector": {"matchLabels": {"app": "a"}}}}
    plan = compile_node(pods, {}, [p], "n1")
    assert [c.pod for c in plan.ingress] == ["x/a"] and plan.egress == ()
    assert plan.local_ips == ("10.0.0.2", "10.0.0.3")
