"""The synthetic benchmark cluster: valid, and its compiled plans agree with the oracle."""

from __future__ import annotations

from testbed.policy import Oracle, compile_node
from testbed.policy.bench import measure, synthetic

from .interp import plan_allows


def test_synthetic_cluster_plans_agree_with_the_oracle_at_scale():
    pods, namespaces, policies = synthetic(n_pods=60, n_policies=120, n_nodes=3, seed=3)
    oracle = Oracle(pods, namespaces, policies)
    plans = {n: compile_node(pods, namespaces, policies, n) for n in ("n0", "n1", "n2")}
    for proto, port in (("TCP", 8080), ("TCP", 8050), ("TCP", 80), ("UDP", 53)):
        want = oracle.matrix(port, proto)
        for s in pods:
            for d in pods:
                got = plan_allows(plans, pods, s.ip, d.ip, proto.lower(), port)
                assert got == want[(s.key, d.key)], oracle.explain(s, d, port, proto)


def test_measure_without_apply_reports_sizes():
    report = measure(n_pods=50, n_policies=100, n_nodes=2, do_apply=False)
    assert report["local_pods"] == 25 and report["nft_sets"] > 0
    assert "nft_apply_initial_s" not in report
