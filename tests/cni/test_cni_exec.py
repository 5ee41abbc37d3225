"""The plugin as an executable (stdout JSON, exit codes) and the netops builders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from testbed.cni import errors, netops

from .helpers import plugin_conf, write_exe


def exec_plugin(exe, env: dict, stdin: bytes) -> tuple[int, dict | None, str]:
    proc = subprocess.run([str(exe)], input=stdin, env=env, capture_output=True, timeout=60)
    out = proc.stdout.decode()
    return proc.returncode, (json.loads(out) if out.strip() else None), proc.stderr.decode()


def test_version(plugin_exe, plugin_env):
    for stdin, version in ((b'{"cniVersion": "0.4.0"}', "0.4.0"), (b"", "1.1.0")):
        rc, out, _ = exec_plugin(plugin_exe, dict(plugin_env, CNI_COMMAND="VERSION"), stdin)
        assert rc == 0
        assert out == {
            "cniVersion": version,
            "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
        }


@pytest.mark.parametrize(
    ("env", "stdin", "code", "version"),
    [
        ({"CNI_COMMAND": "ADD"}, json.dumps(plugin_conf()), errors.INVALID_ENV, "1.1.0"),
        ({}, json.dumps(plugin_conf()), errors.INVALID_ENV, "1.1.0"),
        ({"CNI_COMMAND": "STATUS"}, "{nope", errors.DECODE_FAILURE, "1.1.0"),
        ({"CNI_COMMAND": "STATUS"}, json.dumps(plugin_conf(mtu=5)), errors.INVALID_CONFIG, "1.1.0"),
        (
            {"CNI_COMMAND": "STATUS"},
            json.dumps(plugin_conf(cniVersion="0.2.0")),
            errors.INCOMPATIBLE_VERSION,
            "0.2.0",
        ),
        (
            {"CNI_COMMAND": "GC", "CNI_PATH": "/x"},
            json.dumps(plugin_conf(cniVersion="1.0.0")),
            errors.INCOMPATIBLE_VERSION,
            "1.0.0",
        ),
    ],
)
def test_errors_are_json_on_stdout_with_nonzero_exit(
    plugin_exe, plugin_env, env, stdin, code, version
):
    clean = {k: v for k, v in plugin_env.items() if not k.startswith("CNI_")}
    rc, out, err = exec_plugin(plugin_exe, clean | env, stdin.encode())
    assert rc != 0
    assert list(out) == ["cniVersion", "code", "msg", "details"]
    assert out["code"] == code and out["cniVersion"] == version
    assert isinstance(out["msg"], str) and out["msg"]
    if code == errors.INVALID_ENV and env:
        assert "CNI_CONTAINERID" in out["msg"] and "CNI_NETNS" in out["msg"]


def test_concurrent_adds_through_the_executable(plugin_exe, plugin_env, tmp_path):
    """Many plugin processes at once (fake ip) never hand out one address twice."""
    fakebin = tmp_path / "fakebin"
    fakebin.mkdir()
    write_exe(fakebin / "ip", "#!/bin/sh\ncat >/dev/null\n")
    write_exe(fakebin / "nsenter", '#!/bin/sh\nshift\nexec "$@"\n')
    netns = tmp_path / "ns"
    netns.write_text("")
    conf = plugin_conf(bridge="tbcni-fake1", ipam={"dataDir": str(tmp_path / "ipam")})
    env = dict(
        plugin_env,
        PATH=f"{fakebin}:{os.environ['PATH']}",
        CNI_COMMAND="ADD",
        CNI_NETNS=str(netns),
        CNI_IFNAME="eth0",
        CNI_PATH="/x",
    )
    # Separate processes can't use the fake /proc path: only run where ADD won't write it.
    with open(netops.IP_FORWARD) as fh:
        if fh.read().strip() != "1":
            pytest.skip("net.ipv4.ip_forward is 0 here and this test must not change it")

    def add(i: int) -> str:
        rc, out, err = exec_plugin(
            plugin_exe, dict(env, CNI_CONTAINERID=f"c{i}"), json.dumps(conf).encode()
        )
        assert rc == 0, (out, err)
        return out["ips"][0]["address"]

    with ThreadPoolExecutor(12) as pool:
        got = list(pool.map(add, range(36)))
    assert len(set(got)) == 36
    assert sorted(os.listdir(tmp_path / "ipam" / "testbed")) == sorted(
        [a.split("/")[0] for a in got] + ["last_reserved_ip", "lock"]
    )


def test_host_veth_name_is_stable_and_short():
    name = netops.host_veth_name("abc", "eth0")
    assert name == netops.host_veth_name("abc", "eth0") and len(name) == 12
    assert name.startswith("veth") and int(name[4:], 16) >= 0
    assert name != netops.host_veth_name("abc", "eth1")


def test_builders_and_batch_text():
    assert netops.bridge_create_cmds("tb0", 1450, "0a:58:0a:00:00:01") == [
        [
            "link",
            "add",
            "name",
            "tb0",
            "address",
            "0a:58:0a:00:00:01",
            "mtu",
            "1450",
            "type",
            "bridge",
        ]
    ]
    assert netops.bridge_ensure_cmds("tb0", 1500, None) == [
        ["link", "set", "dev", "tb0", "mtu", "1500", "up"]
    ]
    assert netops.delete_cmds(["a", "b"]) == [
        ["link", "del", "dev", "a"],
        ["link", "del", "dev", "b"],
    ]
    assert netops.check_cmds("eth0")[0] == ["addr", "show", "dev", "eth0"]
    text = netops.batch_text([["link", "add", "netns", "/run/my ns"], ["x", 'q"t']])
    assert text == 'link add netns "/run/my ns"\nx "q\\"t"\n'


def test_ip_argv_picks_dash_n_or_nsenter():
    assert netops.ip_argv("/sbin/ip") == ["/sbin/ip", "-batch", "-"]
    assert netops.ip_argv("/sbin/ip", "/var/run/netns/pod", json=True) == [
        "/sbin/ip",
        "-n",
        "pod",
        "-j",
        "-batch",
        "-",
    ]
    assert netops.ip_argv("/sbin/ip", "/proc/42/ns/net", force=True, nsenter="/bin/nsenter") == [
        "/bin/nsenter",
        "--net=/proc/42/ns/net",
        "/sbin/ip",
        "-force",
        "-batch",
        "-",
    ]


def test_spawn_collects_output_and_status():
    status, out, err = netops.spawn(
        [
            sys.executable,
            "-c",
            "import sys; d=sys.stdin.read(); print(d.upper()); "
            "sys.stderr.write('e' * 100000); sys.exit(3)",
        ],
        "hello",
    )
    assert (status, out, len(err)) == (3, "HELLO\n", 100000)


def test_which_and_sysfs_helpers(tmp_path, monkeypatch):
    with pytest.raises(errors.CniError):
        netops.which("definitely-not-a-tool-xyz")
    monkeypatch.setattr(netops, "SYS_NET", str(tmp_path))
    (tmp_path / "br").mkdir()
    (tmp_path / "br" / "address").write_text("0a:58:00:00:00:01\n")
    (tmp_path / "br" / "brif" / "vethx").mkdir(parents=True)
    (tmp_path / "vethx").mkdir()
    (tmp_path / "vethx" / "master").symlink_to(tmp_path / "br")
    assert netops.link_exists("br") and not netops.link_exists("nope")
    assert netops.read_mac("br") == "0a:58:00:00:00:01" and netops.read_mac("nope") == ""
    assert netops.bridge_ports("br") == ["vethx"] and netops.bridge_ports("nope") == []
    assert netops.link_master("vethx") == "br" and netops.link_master("br") is None


def test_root_skip_reasons(monkeypatch, tmp_path):
    from . import rootnet

    monkeypatch.setattr(rootnet.os, "geteuid", lambda: 1000)
    assert rootnet.skip_reason() == "needs root (creates network namespaces, veths and bridges)"
    monkeypatch.setattr(rootnet.os, "geteuid", lambda: 0)
    monkeypatch.setattr(rootnet, "REFERENCE_DIR", tmp_path)
    monkeypatch.setattr("shutil.which", lambda tool: "/sbin/ip")
    reason = rootnet.skip_reason(reference=True)
    assert reason.startswith("reference CNI plugins ['bridge', 'host-local'] not found in")
