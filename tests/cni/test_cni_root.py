"""End-to-end: testbed-cni in a throw-away node netns (root only; skipped otherwise)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from testbed.cni import netops
from testbed.cni.invoke import testbed_conflist as make_conflist

from .rootnet import node, skip_reason

pytestmark = pytest.mark.root

SERVER = (
    "import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1);"
    "s.bind(('0.0.0.0', 8080)); s.listen(); s.settimeout(20); c, a = s.accept();"
    "c.send(('hi ' + a[0]).encode()); c.close()"
)
CLIENT = (
    "import socket, sys; s = socket.create_connection((sys.argv[1], 8080), timeout=5);"
    "print(s.recv(100).decode())"
)


@pytest.fixture
def rootnode(tmp_path, plugin_exe):
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    with node("e2e", tmp_path, [str(plugin_exe.parent)]) as n:
        yield n


def test_add_check_connect_gc_del(rootnode, tmp_path):
    n = rootnode
    conf = make_conflist(
        "10.251.3.0/24",
        "10.251.3.1",
        1450,
        bridge="tbcni-e2e",
        name="tbcni-e2e",
        data_dir=str(tmp_path / "ipam"),
    )
    p1, p2, p3 = n.pod(1), n.pod(2), n.pod(3)
    r1, r2, r3, chk, st = n.invoke(
        {"op": "add", "args": [conf, "c1", p1]},
        {"op": "add", "args": [conf, "c2", p2]},
        {"op": "add", "args": [conf, "c3", p3]},
        {"op": "check", "args": [conf, "c1", p1]},
        {"op": "status", "args": [conf]},
    )
    assert "ok" in r1, r1
    assert chk == {"ok": None} and st == {"ok": None}
    res = r1["ok"]
    assert res["ips"][0]["address"] == "10.251.3.2/24"
    assert r2["ok"]["ips"][0]["address"] == "10.251.3.3/24"
    veth = netops.host_veth_name("c1", "eth0")
    assert res["interfaces"][1]["name"] == veth

    # node side: bridge up with gateway + mtu, port hairpin, forwarding on
    br = json.loads(n.sh("ip", "-j", "addr", "show", "dev", "tbcni-e2e").stdout)[0]
    assert br["mtu"] == 1450 and "UP" in br["flags"]
    assert {(a["local"], a["prefixlen"]) for a in br["addr_info"] if a["family"] == "inet"} == {
        ("10.251.3.1", 24)
    }
    assert n.sh("cat", f"/sys/class/net/{veth}/brport/hairpin_mode").stdout.strip() == "1"
    assert n.sh("cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"

    # pod side: address, MAC from the result, default route via gateway, lo up
    pod1 = p1.rsplit("/", 1)[1]
    link = json.loads(n.sh("ip", "-j", "addr", "show", "dev", "eth0", pod=pod1).stdout)[0]
    assert link["address"] == res["interfaces"][2]["mac"] and link["mtu"] == 1450
    routes = json.loads(n.sh("ip", "-j", "route", pod=pod1).stdout)
    assert {"dst": "default", "gateway": "10.251.3.1"}.items() <= routes[0].items()
    assert "UP" in json.loads(n.sh("ip", "-j", "link", "show", "lo", pod=pod1).stdout)[0]["flags"]

    # data plane: pod1 -> pod2 over the bridge
    pod2 = p2.rsplit("/", 1)[1]
    server = subprocess.Popen(["ip", "netns", "exec", pod2, sys.executable, "-c", SERVER])
    try:
        deadline = time.monotonic() + 20  # the server may still be starting
        while True:
            out = n.sh(sys.executable, "-c", CLIENT, "10.251.3.3", pod=pod1)
            if out.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert out.stdout.strip() == "hi 10.251.3.2", out.stderr
    finally:
        server.kill()
        server.wait()

    # repeated ADD fails (code 100) and changes nothing; DEL without CNI_NETNS works
    again, gone, intact = n.invoke(
        {"op": "add", "args": [conf, "c1", p1]},
        {"op": "delete", "args": [conf, "c2", ""]},
        {"op": "check", "args": [conf, "c3", p3]},
    )
    assert again["error"]["code"] == 100
    assert gone == {"ok": None} and intact == {"ok": None}
    # CHECK notices a damaged attachment
    n.sh("ip", "addr", "flush", "dev", "eth0", pod=p3.rsplit("/", 1)[1])
    assert n.invoke({"op": "check", "args": [conf, "c3", p3]})[0]["error"]["code"] == 999

    # GC keeps c1 only: c3's reservation and veth go
    assert n.invoke({"op": "gc", "args": [conf, [{"containerID": "c1", "ifname": "eth0"}]]}) == [
        {"ok": None}
    ]
    assert sorted(
        p for p in (tmp_path / "ipam" / "tbcni-e2e").iterdir() if p.name[0].isdigit()
    ) == [tmp_path / "ipam" / "tbcni-e2e" / "10.251.3.2"]
    assert n.sh("ls", "/sys/class/net/tbcni-e2e/brif").stdout.split() == [veth]

    # DEL after the netns vanished, twice: still fine, everything released
    subprocess.run(["ip", "netns", "del", pod1], check=True)
    assert n.invoke(
        {"op": "delete", "args": [conf, "c1", p1]}, {"op": "delete", "args": [conf, "c1", p1]}
    ) == [{"ok": None}, {"ok": None}]
    assert not [p for p in (tmp_path / "ipam" / "tbcni-e2e").iterdir() if p.name[0].isdigit()]
    assert n.sh("ls", "/sys/class/net/tbcni-e2e/brif").stdout.split() == []
