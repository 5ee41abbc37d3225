"""Pure builders of the runtime seam: container/network specs, host rule, image inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

from testbed.agent.supervisor import programs_for
from testbed.runtime import args, hostfw
from testbed.runtime.images import node_tag, parse_debian_mirror


def test_control_plane_container_spec():
    spec = args.node_container_spec("tb1", "control-plane", "control-plane", "img:1",
                                    "172.30.0.2", "172.30.0.2")
    assert spec.name == "tb1-control-plane" and spec.hostname == "control-plane"
    assert spec.cap_add == ("ALL",) and spec.cap_drop == ("SYS_RESOURCE",)
    assert set(spec.security_opt) == {"seccomp=unconfined", "apparmor=unconfined"}
    assert spec.labels == {"testbed.name": "tb1", "testbed.role": "control-plane",
                           "testbed.node": "control-plane"}
    assert spec.volumes == {"testbed-tb1-etcd": "/var/lib/etcd"}
    assert spec.environment["TESTBED_STORE"] == "172.30.0.2:2379"
    assert spec.network == "testbed-tb1" and spec.ipv4_address == "172.30.0.2"
    assert spec.sysctls["net.ipv4.ip_forward"] == "1"


def test_worker_and_host_have_no_store_volume():
    worker = args.node_container_spec("tb1", "w", "worker", "img", "172.30.0.3", "172.30.0.2")
    host = args.node_container_spec("tb1", "c", "external-host", "img", "172.30.0.9",
                                    "172.30.0.2")
    assert worker.volumes == {} and host.volumes == {}
    assert host.labels["testbed.role"] == "external-host"


def test_network_is_internal_and_labelled():
    net = args.network_spec("tb1", "172.30.0.0/24", "172.30.0.1", None, 1500, "abc", "nftables")
    assert net.internal is True
    assert net.labels == {"testbed.name": "tb1", "testbed.role": "network",
                          "testbed.topology-hash": "abc", "testbed.mode": "nftables"}


def test_bridge_rule_and_listing_parse_quoted_comments():
    rule = hostfw.bridge_rule("br-123", "tb1")
    assert rule[:4] == ["-i", "br-123", "-o", "br-123"] and rule[-2:] == ["-j", "ACCEPT"]
    listing = (
        "-N DOCKER-USER\n"
        '-A DOCKER-USER -i br-1 -o br-1 -m comment --comment "testbed:tb1" -j ACCEPT\n'
        '-A DOCKER-USER -i br-2 -o br-2 -m comment --comment "testbed:tb10" -j ACCEPT\n'
        "-A DOCKER-USER -j RETURN\n"
    )
    assert hostfw.rules_for(listing, "tb1") == [
        ["-i", "br-1", "-o", "br-1", "-m", "comment", "--comment", "testbed:tb1", "-j", "ACCEPT"]
    ]


def test_debian_mirror_from_both_source_formats():
    deb822 = "Types: deb\n# comment\nURIs: http://mirror.invalid/debian\nSuites: bookworm\n"
    assert parse_debian_mirror(deb822) == "http://mirror.invalid/debian"
    one_line = "deb http://mirror.invalid/debian-security bookworm-security main\n" \
               "deb [arch=amd64] http://mirror.invalid/debian bookworm main\n"
    assert parse_debian_mirror(one_line) == "http://mirror.invalid/debian"
    assert parse_debian_mirror("deb http://other.invalid/ubuntu jammy main\n") is None


def test_node_tag_follows_content(tmp_path: Path):
    root = Path(__file__).resolve().parents[2]
    for part in ("images", "testbed"):
        shutil.copytree(root / part, tmp_path / part,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(root / "pyproject.toml", tmp_path)
    first = node_tag(tmp_path)
    assert node_tag(tmp_path) == first
    (tmp_path / "testbed" / "agent" / "podspec.py").write_text("# changed\n", "utf-8")
    assert node_tag(tmp_path) != first


def test_supervised_programs_by_role():
    env = {"TESTBED_NODE_IP": "172.30.0.2", "TESTBED_NODE": "cp"}
    assert [p.name for p in programs_for("control-plane", env)] == [
        "etcd", "controller", "agent", "proxy", "policy"]
    assert [p.name for p in programs_for("worker", env)] == ["agent", "proxy", "policy"]
    assert [p.name for p in programs_for("external-host", env)] == ["hostd", "dns-upstream"]
    etcd = programs_for("control-plane", env)[0].argv
    assert "http://172.30.0.2:2379" in etcd
