"""Cluster DNS conformance (Kubernetes DNS-Based Service Discovery 1.1.0), with real `dig` and
the system resolver inside pods, through the kube-dns Service and the proxy of each mode."""

from __future__ import annotations

import time

import pytest

from testbed.testing.cluster import eventually
from testbed.testing.workloads import http_port, netexec_deployment, netexec_pod, service

DOMAIN = "cluster.local"
UPSTREAM_WWW = "192.0.2.10"  # www.example.test in the external host's test zone


def pause_pod(name: str, ns: str, labels: dict, node: str | None = None,
              ready_file: str | None = None, **spec) -> dict:
    container = {"name": "pause", "image": "registry.k8s.io/pause:3.9"}
    if ready_file:
        container["readinessProbe"] = {"exec": {"command": ["test", "-e", ready_file]},
                                       "periodSeconds": 1, "failureThreshold": 1}
    pod_spec = {"containers": [container], **spec}
    if node:
        pod_spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels}, "spec": pod_spec}


@pytest.fixture(scope="module")
def dns(cluster, module_namespace):
    """web (ClusterIP, 2 replicas), hs (headless over 3 pods), ext (ExternalName), a client."""
    ns = module_namespace
    ready = {i: f"/tmp/{ns}-hs-{i}-ready" for i in range(3)}
    for i, path in ready.items():
        cluster.exec_node(cluster.workers()[i % 2], ["touch", path]).check()
    cluster.apply([
        netexec_deployment("web", ns, 2),
        service("web", ns, {"app": "web"}, [http_port(80)]),
        *[pause_pod(f"hs-{i}", ns, {"app": "hs"}, cluster.workers()[i % 2], ready[i],
                    hostname=f"hs-{i}", subdomain="hs") for i in range(3)],
        service("hs", ns, {"app": "hs"}, [http_port(80, target=8080)], clusterIP="None"),
        service("ext", ns, None, [], type="ExternalName", externalName="www.example.test"),
        netexec_pod("dig", ns, cluster.workers()[0]),
    ])
    cluster.wait_pods_ready(ns, ["dig", "hs-0", "hs-1", "hs-2"])
    web = cluster.wait_service(ns, "web", ready=2)
    client = cluster.pod(ns, "dig")
    eventually(lambda: _dig(cluster, client, f"web.{ns}.svc.{DOMAIN}") or _fail(), 30)
    return {"ns": ns, "client": client, "web_ip": web["spec"]["clusterIP"], "ready": ready}


def _fail():
    raise AssertionError("no answer yet")


def _dig(cluster, pod, name: str, qtype: str = "A", *flags: str) -> list[str]:
    out = cluster.exec_pod(pod, ["dig", "+short", "+time=2", "+tries=2", *flags, name, qtype])
    return [line for line in out.stdout.splitlines() if line and not line.startswith(";")]


def _full(cluster, pod, name: str, qtype: str = "A", *flags: str) -> str:
    return cluster.exec_pod(pod, ["dig", "+time=2", "+tries=2", *flags, name, qtype]).stdout


def test_cluster_ip_service_a_record(cluster, dns):
    assert _dig(cluster, dns["client"], f"web.{dns['ns']}.svc.{DOMAIN}") == [dns["web_ip"]]


def test_short_names_through_the_search_path(cluster, dns, module_namespace):
    ns = dns["ns"]
    for name in ("web", f"web.{ns}", f"web.{ns}.svc"):
        out = cluster.exec_pod(dns["client"], ["getent", "hosts", name]).check()
        assert out.stdout.split()[0] == dns["web_ip"], (name, out.stdout)


def test_cross_namespace_lookup(cluster, dns):
    other = cluster.pods("kube-system", {"k8s-app": "kube-dns"})[0]
    assert other  # a pod in another namespace resolves web.<ns>
    out = cluster.exec_pod(dns["client"], ["getent", "hosts", f"web.{dns['ns']}"]).check()
    assert out.stdout.split()[0] == dns["web_ip"]
    kube_dns = _dig(cluster, dns["client"], f"kube-dns.kube-system.svc.{DOMAIN}")
    assert kube_dns == [cluster.service("kube-system", "kube-dns")["spec"]["clusterIP"]]


def test_headless_returns_every_ready_endpoint_and_drops_unready(cluster, dns):
    ns, client = dns["ns"], dns["client"]
    ips = {cluster.pod(ns, f"hs-{i}").ip for i in range(3)}
    assert set(_dig(cluster, client, f"hs.{ns}.svc.{DOMAIN}")) == ips
    cluster.exec_node(cluster.workers()[0], ["rm", "-f", dns["ready"][0]]).check()
    try:
        gone = cluster.pod(ns, "hs-0").ip
        eventually(lambda: _expect(set(_dig(cluster, client, f"hs.{ns}.svc.{DOMAIN}")),
                                   ips - {gone}), timeout=30)
    finally:
        cluster.exec_node(cluster.workers()[0], ["touch", dns["ready"][0]]).check()
    eventually(lambda: _expect(set(_dig(cluster, client, f"hs.{ns}.svc.{DOMAIN}")), ips), 30)


def _expect(got, want):
    assert got == want, (got, want)
    return got


def test_hostname_records_for_subdomain_pods(cluster, dns):
    ns = dns["ns"]
    for i in range(3):
        got = _dig(cluster, dns["client"], f"hs-{i}.hs.{ns}.svc.{DOMAIN}")
        assert got == [cluster.pod(ns, f"hs-{i}").ip]


def test_statefulset_pod_fqdns(cluster, dns):
    ns = dns["ns"]
    template = netexec_pod("ss", ns)
    cluster.apply([
        service("ss", ns, {"app": "ss"}, [http_port(80, target=8080)], clusterIP="None"),
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "ss",
                                                                      "namespace": ns},
         "spec": {"replicas": 2, "serviceName": "ss", "selector": {"matchLabels": {"app": "ss"}},
                  "template": {"metadata": {"labels": {"app": "ss"}},
                               "spec": template["spec"]}}},
    ])
    pods = cluster.wait_pods_ready(ns, ["ss-0", "ss-1"], timeout=90)
    for pod in pods:
        name = f"{pod.name}.ss.{ns}.svc.{DOMAIN}"
        eventually(lambda name=name, pod=pod: _expect(_dig(cluster, dns["client"], name),
                                                      [pod.ip]), timeout=20)


def test_srv_for_named_ports(cluster, dns):
    ns = dns["ns"]
    records = _dig(cluster, dns["client"], f"_http._tcp.web.{ns}.svc.{DOMAIN}", "SRV")
    assert len(records) == 1
    prio, weight, port, target = records[0].split()
    assert port == "80" and target == f"web.{ns}.svc.{DOMAIN}."
    headless = _dig(cluster, dns["client"], f"_http._tcp.hs.{ns}.svc.{DOMAIN}", "SRV")
    targets = sorted(r.split()[3] for r in headless)
    assert targets == [f"hs-{i}.hs.{ns}.svc.{DOMAIN}." for i in range(3)]
    assert {r.split()[2] for r in headless} == {"8080"}


def test_ptr_records(cluster, dns):
    ns = dns["ns"]
    out = cluster.exec_pod(dns["client"], ["dig", "+short", "-x", dns["web_ip"]]).check()
    assert out.stdout.strip() == f"web.{ns}.svc.{DOMAIN}."
    hs0 = cluster.pod(ns, "hs-0").ip
    out = cluster.exec_pod(dns["client"], ["dig", "+short", "-x", hs0]).check()
    assert out.stdout.strip() == f"hs-0.hs.{ns}.svc.{DOMAIN}."


def test_external_name_cname_chased_to_upstream(cluster, dns):
    got = _dig(cluster, dns["client"], f"ext.{dns['ns']}.svc.{DOMAIN}")
    assert got == ["www.example.test.", UPSTREAM_WWW]


def test_names_outside_the_cluster_go_to_the_upstream(cluster, dns):
    assert _dig(cluster, dns["client"], "www.example.test") == [UPSTREAM_WWW]
    out = cluster.exec_pod(dns["client"], ["getent", "hosts", "www.example.test"]).check()
    assert out.stdout.split()[0] == UPSTREAM_WWW


def test_nxdomain_versus_nodata(cluster, dns):
    ns = dns["ns"]
    missing = _full(cluster, dns["client"], f"nope.{ns}.svc.{DOMAIN}")
    assert "status: NXDOMAIN" in missing and "SOA" in missing
    nodata = _full(cluster, dns["client"], f"web.{ns}.svc.{DOMAIN}", "AAAA")
    assert "status: NOERROR" in nodata and "ANSWER: 0" in nodata and "SOA" in nodata


def test_pod_a_records_and_dns_version(cluster, dns):
    ip = dns["client"].ip
    name = f"{ip.replace('.', '-')}.{dns['ns']}.pod.{DOMAIN}"
    assert _dig(cluster, dns["client"], name) == [ip]
    assert _dig(cluster, dns["client"], f"dns-version.{DOMAIN}", "TXT") == ['"1.1.0"']


def test_large_headless_answer_falls_back_to_tcp(cluster, dns):
    ns = dns["ns"]
    workers = cluster.workers()
    cluster.apply([pause_pod(f"big-{i}", ns, {"app": "big"}, workers[i % len(workers)])
                   for i in range(40)]
                  + [service("big", ns, {"app": "big"}, [http_port(80, target=8080)],
                             clusterIP="None")])
    cluster.wait_pods_ready(ns, labels={"app": "big"}, count=40, timeout=120)
    name = f"big.{ns}.svc.{DOMAIN}"
    eventually(lambda: _expect(len(_dig(cluster, dns["client"], name)), 40), timeout=30)
    udp_only = _full(cluster, dns["client"], name, "A", "+notcp", "+ignore", "+noedns")
    assert " tc" in udp_only.split("flags:")[1].split(";")[0], udp_only


@pytest.mark.parametrize("policy", ["ClusterFirst", "ClusterFirstWithHostNet", "Default",
                                    "None"])
def test_dns_policies(cluster, dns, policy):
    ns = dns["ns"]
    name = f"pol-{policy.lower()}"
    spec = {"dnsPolicy": policy}
    if policy == "ClusterFirstWithHostNet":
        spec["hostNetwork"] = True
    if policy == "None":
        spec["dnsConfig"] = {"nameservers": [cluster.service("kube-system", "kube-dns")[
            "spec"]["clusterIP"]], "searches": [f"{ns}.svc.{DOMAIN}"],
            "options": [{"name": "ndots", "value": "2"}]}
    pod = pause_pod(name, ns, {"app": name}, cluster.workers()[1], **spec)
    cluster.apply([pod])
    ref = cluster.wait_pods_ready(ns, [name])[0]
    resolv = cluster.exec_pod(ref, ["cat", "/etc/resolv.conf"]).check().stdout
    node_resolv = cluster.exec_node(ref.node, ["cat", "/etc/resolv.conf"]).check().stdout
    kube_dns = cluster.service("kube-system", "kube-dns")["spec"]["clusterIP"]
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        assert f"nameserver {kube_dns}" in resolv and "ndots:5" in resolv
        assert f"search {ns}.svc.{DOMAIN} svc.{DOMAIN} {DOMAIN}" in resolv
    elif policy == "Default":
        assert resolv.split() == node_resolv.split()
    else:
        assert resolv == (f"nameserver {kube_dns}\nsearch {ns}.svc.{DOMAIN}\n"
                          "options ndots:2\n")
    if policy != "Default":
        out = cluster.exec_pod(ref, ["getent", "hosts", "web"]).check()
        assert out.stdout.split()[0] == dns["web_ip"]


def test_queries_survive_losing_a_resolver_pod(cluster, dns):
    victim = cluster.pods("kube-system", {"k8s-app": "kube-dns"})[0]
    cluster.delete([{"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": victim.name, "namespace": "kube-system"}}])
    deadline = time.monotonic() + 10
    failures = 0
    while time.monotonic() < deadline:
        got = _dig(cluster, dns["client"], f"web.{dns['ns']}.svc.{DOMAIN}", "A",
                   "+tries=3", "+timeout=1")
        failures += got != [dns["web_ip"]]
    assert failures == 0
    cluster.wait_pods_ready("kube-system", labels={"k8s-app": "kube-dns"}, count=2,
                            timeout=60)
