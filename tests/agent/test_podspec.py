"""Pod spec → what the agent runs: argv, env, resolv.conf, hosts."""

from __future__ import annotations

import pytest

from testbed.agent import podspec

CONFIG = {"networking": {"serviceSubnet": "10.96.0.0/16", "dnsDomain": "cluster.local"}}
NODE_RESOLV = "nameserver 192.0.2.53\nsearch corp.invalid\noptions timeout:2\n"


def pod(**spec):
    return {"metadata": {"name": "web-0", "namespace": "prod", "uid": "u1"}, "spec": spec}


def test_agnhost_netexec_runs_the_builtin_server():
    argv = podspec.container_argv(
        {"name": "c", "image": "registry.k8s.io/e2e-test-images/agnhost:2.47",
         "args": ["netexec", "--http-port=8080"]}, python="py")
    assert argv == ["py", "-m", "testbed.workloads.netexec", "--http-port=8080"]


def test_command_and_args_run_on_the_node_and_pause_sleeps():
    assert podspec.container_argv({"name": "c", "image": "debian", "command": ["python3"],
                                   "args": ["-m", "http.server", 80]}) == \
        ["python3", "-m", "http.server", "80"]
    assert podspec.container_argv({"name": "c", "image": "registry.k8s.io/pause:3.9"}) == \
        ["sleep", "infinity"]


def test_unknown_image_without_command_is_a_clear_error():
    with pytest.raises(podspec.UnsupportedContainer, match="set `command`"):
        podspec.container_argv({"name": "c", "image": "nginx:1.25"})
    with pytest.raises(podspec.UnsupportedContainer, match="subcommand 'dns-server'"):
        podspec.container_argv({"name": "c", "image": "registry.k8s.io/e2e-test-images/agnhost"
                                ":2.47", "args": ["dns-server"]})


def test_env_values_and_field_refs():
    env = podspec.container_env({"env": [
        {"name": "A", "value": "1"},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    ]}, pod(nodeName="w1"), "10.244.1.5", "172.30.0.3")
    assert (env["A"], env["IP"], env["NODE"], env["NS"]) == ("1", "10.244.1.5", "w1", "prod")
    assert env["HOSTNAME"] == "web-0"


def test_sandbox_wrapper_sets_netns_and_hostname():
    argv = podspec.wrap_in_sandbox(["x"], "pod-u1", "web-0")
    assert argv[:4] == ["ip", "netns", "exec", "pod-u1"] and "--uts" in argv
    assert argv[-2:] == ["web-0", "x"]
    assert podspec.wrap_in_sandbox(["x"], None, "web-0") == ["x"]


def test_cluster_first_resolv_conf():
    text = podspec.resolv_conf(pod(), CONFIG, NODE_RESOLV)
    assert text == ("nameserver 10.96.0.10\n"
                    "search prod.svc.cluster.local svc.cluster.local cluster.local\n"
                    "options ndots:5\n")


def test_host_network_cluster_first_uses_node_resolver_unless_with_host_net():
    assert "192.0.2.53" in podspec.resolv_conf(pod(hostNetwork=True), CONFIG, NODE_RESOLV)
    with_host = pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet")
    assert "10.96.0.10" in podspec.resolv_conf(with_host, CONFIG, NODE_RESOLV)


def test_default_and_none_policies_with_dns_config_merge():
    default = podspec.resolv_conf(pod(dnsPolicy="Default"), CONFIG, NODE_RESOLV)
    assert default == "nameserver 192.0.2.53\nsearch corp.invalid\noptions timeout:2\n"
    none = pod(dnsPolicy="None", dnsConfig={
        "nameservers": ["192.0.2.1"], "searches": ["a.test"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]})
    assert podspec.resolv_conf(none, CONFIG, NODE_RESOLV) == \
        "nameserver 192.0.2.1\nsearch a.test\noptions ndots:2 edns0\n"
    merged = pod(dnsConfig={"searches": ["extra.test"], "options": [{"name": "ndots",
                                                                      "value": "1"}]})
    text = podspec.resolv_conf(merged, CONFIG, NODE_RESOLV)
    assert "cluster.local extra.test" in text and "options ndots:1" in text


def test_hosts_file_with_subdomain_fqdn():
    text = podspec.hosts_file(pod(hostname="web-0", subdomain="web"), "10.244.1.5", CONFIG)
    assert "10.244.1.5\tweb-0.web.prod.svc.cluster.local web-0" in text


def test_host_network_pods_get_their_own_resolv_conf_by_bind_mount():
    argv = podspec.wrap_in_sandbox(["x", "y"], None, "node", "/var/lib/testbed/hostnet/u1")
    assert argv[:2] == ["unshare", "--mount"]
    assert "mount --bind /var/lib/testbed/hostnet/u1/resolv.conf /etc/resolv.conf" in argv[7]
    assert argv[-2:] == ["x", "y"]
