"""proxyd's pure helpers: which UDP backends went away (their conntrack entries are cleared)."""

from __future__ import annotations

from testbed.agent.proxyd import udp_backends
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
