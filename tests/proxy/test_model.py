"""build_model / diff: the Kubernetes semantics every backend relies on."""

from __future__ import annotations

import random

from testbed.proxy.model import ProxyModel, build_model, diff

from .samples import NODE, ep, eps_slice, kitchen_sink, port, service


def one(svcs, slices):
    model = build_model(svcs, slices, NODE)
    assert len(model) == 1, model
    return model[0]


def test_named_target_port_resolves_through_slice_port_names():
    svc = service("web", "10.96.0.10", [port(80, "http", targetPort="http")])
    sl = eps_slice("web", [ep("10.244.1.5")], [("http", 8080, "TCP")])
    p = one([svc], [sl])
    assert (p.port, p.endpoints[0].port, p.endpoints[0].addr) == (80, 8080, "10.244.1.5:8080")


def test_ports_match_on_name_and_protocol_tcp_and_udp_on_same_port():
    svc = service("dns", "10.96.0.53", [port(53, "dns", "UDP"), port(53, "dns-tcp", "TCP")])
    sl = eps_slice("dns", [ep("10.244.1.7")], [("dns", 5353, "UDP"), ("dns-tcp", 5354, "TCP")])
    model = build_model([svc], [sl], NODE)
    got = {(p.port_name, p.protocol, p.port): p.endpoints[0].port for p in model}
    assert got == {("dns", "UDP", 53): 5353, ("dns-tcp", "TCP", 53): 5354}


def test_slice_port_with_other_protocol_does_not_match():
    svc = service("dns", "10.96.0.53", [port(53, "dns", "UDP")])
    sl = eps_slice("dns", [ep("10.244.1.7")], [("dns", 5353, "TCP")])
    assert one([svc], [sl]).endpoints == ()


def test_multi_port_service_gives_one_entry_per_port_sorted():
    svc = service("m", "10.96.0.9", [port(443, "https"), port(80, "http")])
    sl = eps_slice("m", [ep("10.244.1.5")], [("http", 8080, "TCP"), ("https", 8443, "TCP")])
    model = build_model([svc], [sl], NODE)
    assert [(p.port_name, p.endpoints[0].port) for p in model] == [("http", 8080), ("https", 8443)]
    assert [p.port_key for p in model] == ["default/m:http", "default/m:https"]


def test_headless_external_name_sctp_and_unallocated_produce_nothing():
    svcs = [
        service("headless", "None", [port(80)]),
        service("ext", None, [], type="ExternalName", externalName="example.org"),
        service("sctp", "10.96.0.50", [port(9999, "s", "SCTP")]),
        service("pending", "", [port(80)]),
    ]
    slices = [eps_slice("headless", [ep("10.244.1.12")], [("", 80, "TCP")])]
    assert build_model(svcs, slices, NODE) == ()


def test_ipv6_slices_and_addresses_are_ignored():
    svc = service("web", "10.96.0.10", [port(80)])
    v6 = eps_slice("web", [ep("fd00::5")], [("", 80, "TCP")], suffix="v6")
    v6["addressType"] = "IPv6"
    p = one([svc], [v6])
    assert p.endpoints == () and not p.has_endpoints


def test_no_endpoints_means_reject():
    p = one([service("empty", "10.96.0.99", [port(80)])], [])
    assert not p.has_endpoints and not p.has_internal_endpoints and not p.has_external_endpoints


def test_ready_endpoints_win_and_nil_conditions_mean_ready():
    svc = service("web", "10.96.0.10", [port(80)])
    eps = [
        ep("10.244.1.5", ready=None),
        ep("10.244.1.6", ready=False, serving=True, terminating=True),
        ep("10.244.1.7", ready=False, serving=False, terminating=True),
    ]
    p = one([svc], [eps_slice("web", eps, [("", 80, "TCP")])])
    assert [e.ip for e in p.cluster_endpoints] == ["10.244.1.5"]


def test_not_ready_falls_back_to_serving_terminating():
    svc = service("web", "10.96.0.10", [port(80)])
    eps = [
        ep("10.244.1.6", ready=False, serving=True, terminating=True),
        ep("10.244.1.7", ready=False, serving=False, terminating=True),
        ep("10.244.1.8", ready=False, serving=False),
    ]
    p = one([svc], [eps_slice("web", eps, [("", 80, "TCP")])])
    assert [e.ip for e in p.cluster_endpoints] == ["10.244.1.6"]
    assert p.has_endpoints


def test_internal_traffic_policy_local_uses_only_this_nodes_endpoints():
    svc = service("itp", "10.96.0.40", [port(80)], internalTrafficPolicy="Local")
    eps = [ep("10.244.1.11"), ep("10.244.2.11", "node-b")]
    p = one([svc], [eps_slice("itp", eps, [("", 80, "TCP")])])
    assert [e.ip for e in p.internal_endpoints] == ["10.244.1.11"]
    assert p.cluster_endpoints == ()  # no traffic uses the cluster pool here
    remote = one([svc], [eps_slice("itp", [ep("10.244.2.11", "node-b")], [("", 80, "TCP")])])
    # endpoints exist elsewhere: DROP (not REJECT) for the cluster IP on this node
    assert remote.has_endpoints and not remote.has_internal_endpoints


def test_internal_local_falls_back_to_local_serving_terminating():
    svc = service("itp", "10.96.0.40", [port(80)], internalTrafficPolicy="Local")
    eps = [ep("10.244.1.11", ready=False, serving=True, terminating=True),
           ep("10.244.2.11", "node-b")]  # fmt: skip
    p = one([svc], [eps_slice("itp", eps, [("", 80, "TCP")])])
    assert [e.ip for e in p.local_endpoints] == ["10.244.1.11"]


def test_external_traffic_policy_local_keeps_cluster_pool_for_short_circuit():
    svc = service("lb", "10.96.0.20", [port(443, nodePort=30443)], type="NodePort",
                  externalTrafficPolicy="Local")  # fmt: skip
    eps = [ep("10.244.1.8"), ep("10.244.2.8", "node-b")]
    p = one([svc], [eps_slice("lb", eps, [("", 8443, "TCP")])])
    assert p.external_policy_local and p.external_local
    assert [e.ip for e in p.external_endpoints] == ["10.244.1.8"]
    assert [e.ip for e in p.internal_endpoints] == ["10.244.1.8", "10.244.2.8"]
    assert [e.ip for e in p.reachable_endpoints] == ["10.244.1.8", "10.244.2.8"]


def test_external_policy_local_needs_an_external_address():
    svc = service("c", "10.96.0.21", [port(80)], externalTrafficPolicy="Local")
    assert not one([svc], []).external_policy_local
    svc = service("c", "10.96.0.21", [port(80)], externalTrafficPolicy="Local",
                  externalIPs=["192.0.2.1"])  # fmt: skip
    assert one([svc], []).external_policy_local


def test_external_local_without_local_endpoints_has_no_external_endpoints():
    svc = service("lb", "10.96.0.21", [port(80, nodePort=30021)], type="NodePort",
                  externalTrafficPolicy="Local")  # fmt: skip
    p = one([svc], [eps_slice("lb", [ep("10.244.2.9", "node-b")], [("", 80, "TCP")])])
    assert p.has_endpoints and p.has_internal_endpoints and not p.has_external_endpoints


def test_load_balancer_ips_node_ports_and_external_ips():
    lb = service("lb", "10.96.0.20", [port(443, nodePort=30443)], type="LoadBalancer",
                 externalIPs=["192.0.2.20", "bogus"],
                 status={"loadBalancer": {"ingress": [{"ip": "198.51.100.20"},
                                                      {"hostname": "x.example"}]}})  # fmt: skip
    cip = service("c", "10.96.0.30", [port(80, nodePort=30030)],
                  status={"loadBalancer": {"ingress": [{"ip": "198.51.100.30"}]}})  # fmt: skip
    a, b = build_model([lb, cip], [], NODE)
    assert (a.name, a.node_port, a.load_balancer_ips, a.external_ips) == (
        "c", 0, (), ())  # fmt: skip
    assert (b.node_port, b.load_balancer_ips, b.external_ips) == (
        30443, ("198.51.100.20",), ("192.0.2.20",))  # fmt: skip


def test_session_affinity_timeout():
    default = service("a", "10.96.0.1", [port(80)], sessionAffinity="ClientIP")
    custom = service("b", "10.96.0.2", [port(80)], sessionAffinity="ClientIP",
                     sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}})  # fmt: skip
    none = service("c", "10.96.0.3", [port(80)], sessionAffinity="None")
    model = build_model([default, custom, none], [], NODE)
    assert [p.affinity_timeout for p in model] == [10800, 600, None]


def test_endpoint_in_two_slices_is_kept_once_preferring_ready():
    svc = service("web", "10.96.0.10", [port(80)])
    a = eps_slice("web", [ep("10.244.1.5", ready=False)], [("", 80, "TCP")], suffix="a")
    b = eps_slice("web", [ep("10.244.1.5"), ep("10.244.1.4")], [("", 80, "TCP")], suffix="b")
    p = one([svc], [a, b])
    assert [(e.ip, e.ready) for e in p.endpoints] == [("10.244.1.4", True), ("10.244.1.5", True)]


def test_endpoints_sorted_numerically_and_locality():
    svc = service("web", "10.96.0.10", [port(80)])
    eps = [ep("10.244.1.10", "node-b"), ep("10.244.1.9"), ep("10.244.1.100")]
    p = one([svc], [eps_slice("web", eps, [("", 80, "TCP")])])
    assert [(e.ip, e.is_local) for e in p.endpoints] == [
        ("10.244.1.9", True), ("10.244.1.10", False), ("10.244.1.100", True)]  # fmt: skip


def test_model_is_deterministic_regardless_of_input_order():
    svcs, slices = kitchen_sink()
    want = build_model(svcs, slices, NODE)
    rng = random.Random(7)
    for _ in range(5):
        rng.shuffle(svcs)
        rng.shuffle(slices)
        assert build_model(svcs, slices, NODE) == want
    keys = [(p.namespace, p.name, p.port_name, p.protocol) for p in want]
    assert keys == sorted(keys)
    assert isinstance(want, ProxyModel) and want.services is want


def test_slices_of_other_namespaces_do_not_match():
    svc = service("web", "10.96.0.10", [port(80)])
    other = eps_slice("web", [ep("10.244.1.5")], [("", 80, "TCP")], ns="other")
    assert one([svc], [other]).endpoints == ()


def test_diff_reports_changed_added_and_removed_services():
    svcs, slices = kitchen_sink()
    old = build_model(svcs, slices, NODE)
    assert diff(old, build_model(svcs, slices, NODE)) == frozenset()
    slices[0]["endpoints"].append(ep("10.244.1.99"))  # web gets an endpoint
    svcs.append(service("new", "10.96.0.77", [port(80)]))
    svcs = [s for s in svcs if s["metadata"]["name"] != "itp"]
    new = build_model(svcs, slices, NODE)
    assert diff(old, new) == {"default/web", "default/new", "default/itp"}
    assert diff(new, old) == {"default/web", "default/new", "default/itp"}


def test_diff_sees_a_port_level_change():
    old = build_model([service("s", "10.96.0.5", [port(80), port(81, "b")])], [], NODE)
    new = build_model([service("s", "10.96.0.5", [port(80)])], [], NODE)
    assert diff(old, new) == {"default/s"}
