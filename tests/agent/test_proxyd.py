"""proxyd's pure helpers: which UDP backends went away (their conntrack entries are cleared)."""

from __future__ import annotations

from testbed.agent.proxyd import stale_udp_backends, udp_backends
from testbed.proxy.model import build_model


def svc(ports):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "dns", "namespace": "kube-system"},
            "spec": {"clusterIP": "10.96.0.10", "ports": ports}}


def eps(ips):
    return {"metadata": {"name": "dns-1", "namespace": "kube-system",
                         "labels": {"kubernetes.io/service-name": "dns"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}, "nodeName": "w1"}
                          for ip in ips],
            "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                      {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}


PORTS = [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
         {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]


def test_removed_udp_backends_are_found():
    before = build_model([svc(PORTS)], [eps(["10.244.1.2", "10.244.2.2"])], "w1")
    after = build_model([svc(PORTS)], [eps(["10.244.2.2"])], "w1")
    assert udp_backends(before) == {("10.244.1.2", 53), ("10.244.2.2", 53)}
    assert udp_backends(before) - udp_backends(after) == {("10.244.1.2", 53)}
    assert udp_backends(None) == set()


def test_stale_udp_backends_only_when_no_service_keeps_them():
    other = svc(PORTS) | {"metadata": {"name": "dns2", "namespace": "kube-system"}}
    other_eps = eps(["10.244.1.2"])
    other_eps["metadata"] = {"name": "dns2-1", "namespace": "kube-system",
                             "labels": {"kubernetes.io/service-name": "dns2"}}
    before = build_model([svc(PORTS), other], [eps(["10.244.1.2", "10.244.2.2"]), other_eps],
                         "w1")
    dropped = before.with_services({("kube-system", "dns"): build_model(
        [svc(PORTS)], [eps(["10.244.2.2"])], "w1")})
    assert stale_udp_backends(before, dropped) == set()  # dns2 still uses 10.244.1.2:53
    gone = dropped.with_services({("kube-system", "dns2"): []})
    assert stale_udp_backends(dropped, gone) == {("10.244.1.2", 53)}
    assert stale_udp_backends(None, gone) == set() and stale_udp_backends(gone, gone) == set()
    # a model built from scratch (no known delta) gives the same answer
    assert stale_udp_backends(before, build_model([svc(PORTS)], [eps(["10.244.2.2"])],
                                                  "w1")) == {("10.244.1.2", 53)}
