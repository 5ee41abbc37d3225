"""The plugin's command handlers, run in-process against a fake ``ip`` and a fake /sys.

No root needed: ``ip``/``nsenter`` on PATH are recording fakes, ``netops.SYS_NET`` and
``netops.IP_FORWARD`` point into tmp_path.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from testbed.cni import errors, ip4, ipam, netops
from testbed.cni.main import run

from .helpers import plugin_conf, write_exe

FAKE_IP = """
#!{python}
import json, os, sys
data = sys.stdin.read()
with open(os.environ["FAKE_IP_LOG"], "a") as fh:
    fh.write(json.dumps({{"argv": sys.argv[1:], "stdin": data}}) + "\\n")
fail = os.environ.get("FAKE_IP_FAIL_ON")
if fail and fail in data:
    sys.stderr.write("RTNETLINK answers: boom\\n")
    sys.exit(2)
if "-j" in sys.argv:
    sys.stdout.write(open(os.environ["FAKE_IP_JSON"]).read())
"""


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Fake ip/nsenter/sysfs; returns a namespace with paths and helpers."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    write_exe(bindir / "ip", FAKE_IP.format(python=sys.executable))
    write_exe(bindir / "nsenter", '#!/bin/sh\nshift\nexec "$@"\n')
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    log = tmp_path / "ip.log"
    monkeypatch.setenv("FAKE_IP_LOG", str(log))
    monkeypatch.delenv("FAKE_IP_FAIL_ON", raising=False)
    sysnet = tmp_path / "sys"
    sysnet.mkdir()
    monkeypatch.setattr(netops, "SYS_NET", str(sysnet))
    fwd = tmp_path / "ip_forward"
    fwd.write_text("0\n")
    monkeypatch.setattr(netops, "IP_FORWARD", str(fwd))
    netns = tmp_path / "netns-pod1"
    netns.write_text("")

    def calls() -> list[dict]:
        return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []

    return SimpleNamespace(
        log=log, sysnet=sysnet, fwd=fwd, netns=str(netns), data=tmp_path / "ipam", calls=calls
    )


def call(command: str, conf: dict, cid: str = "pod1", netns: str = "", ifname: str = "eth0"):
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": cid,
        "CNI_IFNAME": ifname,
        "CNI_PATH": "/opt/cni/bin",
        "CNI_NETNS": netns,
    }
    status, out = run(env, json.dumps(conf).encode())
    return status, (json.loads(out) if out.strip() else None)


def conf_for(fake, **over) -> dict:
    ipam_over = {"dataDir": str(fake.data)} | over.pop("ipam", {})
    return plugin_conf(bridge="tbcni-fake0", ipam=ipam_over, **over)


def reservations(fake, name: str = "testbed") -> dict:
    return {k: v for k, v in ipam.FileIpamStore(str(fake.data), name).owners().items()}


def test_add_runs_three_batches_and_returns_result(fake):
    status, res = call("ADD", conf_for(fake), netns=fake.netns)
    assert status == 0, res
    calls = fake.calls()
    assert len(calls) == 3
    assert calls[0]["stdin"].startswith("link add name tbcni-fake0 address 0a:58:0a:f4:01:01")
    host, inside = calls[1]["stdin"].splitlines(), calls[2]["stdin"].splitlines()
    veth = netops.host_veth_name("pod1", "eth0")
    assert host == [
        "link set dev tbcni-fake0 mtu 1500 up",
        "addr replace 10.244.1.1/24 dev tbcni-fake0",
        f"link add name {veth} mtu 1500 type veth peer name eth0 mtu 1500 address "
        f"0a:58:0a:f4:01:02 netns {fake.netns}",
        f"link set dev {veth} master tbcni-fake0 up",
        f"link set dev {veth} type bridge_slave hairpin on",
    ]
    assert inside == [
        "link set dev lo up",
        "addr add 10.244.1.2/24 dev eth0",
        "link set dev eth0 up",
        "route replace 0.0.0.0/0 via 10.244.1.1 dev eth0",
    ]
    assert calls[2]["argv"] == ["-batch", "-"]  # ran through (fake) nsenter
    assert fake.fwd.read_text().strip() == "1"
    assert res["cniVersion"] == "1.1.0" and res["dns"] == {}
    assert [i["name"] for i in res["interfaces"]] == ["tbcni-fake0", veth, "eth0"]
    assert res["interfaces"][2] == {
        "name": "eth0",
        "mac": "0a:58:0a:f4:01:02",
        "mtu": 1500,
        "sandbox": fake.netns,
    }
    assert res["ips"] == [{"interface": 2, "address": "10.244.1.2/24", "gateway": "10.244.1.1"}]
    assert res["routes"] == [{"dst": "0.0.0.0/0"}]
    assert reservations(fake) == {ip4.parse_ip("10.244.1.2"): ("pod1", "eth0")}


def test_add_options_routes_no_gateway_no_hairpin(fake):
    (fake.sysnet / "tbcni-fake0").mkdir()  # bridge exists: no create batch
    conf = conf_for(
        fake,
        isGateway=False,
        hairpinMode=False,
        mtu=1400,
        cniVersion="0.3.1",
        dns={"nameservers": ["10.96.0.10"]},
        ipam={"routes": [{"dst": "10.96.0.0/12", "gw": "10.244.1.254"}]},
    )
    status, res = call("ADD", conf, netns=fake.netns)
    assert status == 0, res
    host, inside = (c["stdin"] for c in fake.calls())
    assert "addr replace" not in host and "hairpin" not in host and "mtu 1400" in host
    assert "route replace 0.0.0.0/0 via 10.244.1.1 dev eth0" in inside
    assert "route replace 10.96.0.0/12 via 10.244.1.254 dev eth0" in inside
    assert res["ips"][0]["version"] == "4" and "mtu" not in res["interfaces"][2]
    assert res["routes"] == [{"dst": "0.0.0.0/0"}, {"dst": "10.96.0.0/12", "gw": "10.244.1.254"}]
    assert res["dns"] == {"nameservers": ["10.96.0.10"]}


@pytest.mark.parametrize("fail_on", ["addr add", "type veth", "type bridge"])
def test_add_failure_rolls_back_reservation(fake, monkeypatch, fail_on):
    monkeypatch.setenv("FAKE_IP_FAIL_ON", fail_on)
    status, err = call("ADD", conf_for(fake), netns=fake.netns)
    assert status == 1
    assert err["code"] == errors.INTERNAL and "failed" in err["msg"]
    assert "boom" in err["details"]
    assert reservations(fake) == {}


def test_add_rolls_back_created_veth(fake, monkeypatch):
    veth = netops.host_veth_name("pod1", "eth0")
    real_run_batch = netops.run_batch

    def fake_run_batch(cmds, *args, **kw):  # the host batch "creates" the veth
        out = real_run_batch(cmds, *args, **kw)
        if any("veth" in c for c in cmds[-1]):
            (fake.sysnet / veth).mkdir()
        return out

    monkeypatch.setattr(netops, "run_batch", fake_run_batch)
    monkeypatch.setenv("FAKE_IP_FAIL_ON", "addr add")
    assert call("ADD", conf_for(fake), netns=fake.netns)[0] == 1
    assert fake.calls()[-1]["stdin"] == f"link del dev {veth}\n"


def test_add_existing_interface_is_code_100_and_touches_nothing(fake):
    (fake.sysnet / netops.host_veth_name("pod1", "eth0")).mkdir()
    status, err = call("ADD", conf_for(fake), netns=fake.netns)
    assert (status, err["code"]) == (1, errors.ATTACHMENT_EXISTS)
    assert fake.calls() == [] and reservations(fake) == {}


def test_add_missing_netns_is_code_3(fake):
    status, err = call("ADD", conf_for(fake), netns=str(fake.netns) + "-gone")
    assert (status, err["code"]) == (1, errors.UNKNOWN_CONTAINER)
    assert reservations(fake) == {}


def test_add_exhausted_is_code_11(fake):
    conf = conf_for(fake, ipam={"subnet": "10.9.0.0/30", "gateway": "10.9.0.1"})
    assert call("ADD", conf, cid="a", netns=fake.netns)[0] == 0
    status, err = call("ADD", conf, cid="b", netns=fake.netns)
    assert (status, err["code"]) == (1, errors.TRY_AGAIN_LATER)


def test_del_is_idempotent_and_needs_no_netns(fake):
    conf = conf_for(fake)
    assert call("ADD", conf, netns=fake.netns)[0] == 0
    assert call("ADD", conf, cid="pod2", netns=fake.netns)[0] == 0
    for _ in range(2):
        assert call("DEL", conf, netns="") == (0, None)
    assert list(reservations(fake).values()) == [("pod2", "eth0")]
    assert all("link del" not in c["stdin"] for c in fake.calls())  # no veth: nothing to delete


def test_del_deletes_host_veth(fake):
    veth = netops.host_veth_name("pod1", "eth0")
    (fake.sysnet / veth).mkdir()
    assert call("DEL", conf_for(fake), netns=fake.netns) == (0, None)
    assert fake.calls()[-1]["stdin"] == f"link del dev {veth}\n"


def test_status(fake):
    small = conf_for(fake, ipam={"subnet": "10.9.0.0/30", "gateway": "10.9.0.1"})
    assert call("STATUS", small) == (0, None)
    assert call("ADD", small, netns=fake.netns)[0] == 0
    (fake.sysnet / "tbcni-fake0").mkdir()
    status, err = call("STATUS", small)
    assert (status, err["code"]) == (1, errors.NOT_AVAILABLE)
    (fake.sysnet / "tbcni-fake0").rmdir()
    status, err = call("STATUS", small)
    assert (status, err["code"]) == (1, errors.NOT_AVAILABLE_LIMITED)
    status, err = call("STATUS", conf_for(fake, cniVersion="1.0.0"))
    assert (status, err["code"]) == (1, errors.INCOMPATIBLE_VERSION)


def test_gc_releases_invalid_and_deletes_stray_veths(fake):
    conf = conf_for(fake)
    for cid in ("a", "b", "c"):
        assert call("ADD", conf, cid=cid, netns=fake.netns)[0] == 0
    brif = fake.sysnet / "tbcni-fake0" / "brif"
    brif.mkdir(parents=True)
    for cid in ("a", "b"):
        (brif / netops.host_veth_name(cid, "eth0")).mkdir()
    (brif / "eth9").mkdir()  # not ours: left alone
    assert call("GC", conf) == (0, None)  # no valid-attachments: collect nothing
    assert len(reservations(fake)) == 3
    gc_conf = dict(conf, **{"cni.dev/valid-attachments": [{"containerID": "a", "ifname": "eth0"}]})
    assert call("GC", gc_conf) == (0, None)
    assert list(reservations(fake).values()) == [("a", "eth0")]
    last = fake.calls()[-1]
    assert last["stdin"] == f"link del dev {netops.host_veth_name('b', 'eth0')}\n"
    assert "-force" in last["argv"]


def test_check_errors(fake):
    conf = conf_for(fake)
    status, res = call("ADD", conf, netns=fake.netns)
    status, err = call("CHECK", conf, netns=fake.netns)
    assert (status, err["code"]) == (1, errors.INVALID_CONFIG)  # no prevResult
    status, err = call("CHECK", dict(conf, cniVersion="0.3.1", prevResult=res), netns=fake.netns)
    assert (status, err["code"]) == (1, errors.INCOMPATIBLE_VERSION)
    status, err = call("CHECK", dict(conf, prevResult=res), netns=fake.netns)
    assert "host interface" in err["msg"] and "missing" in err["msg"]


def test_check_passes_on_intact_attachment(fake, tmp_path, monkeypatch):
    conf = conf_for(fake)
    _, res = call("ADD", conf, netns=fake.netns)
    veth = netops.host_veth_name("pod1", "eth0")
    (fake.sysnet / veth).mkdir()
    (fake.sysnet / "tbcni-fake0").mkdir()
    (fake.sysnet / veth / "master").symlink_to(fake.sysnet / "tbcni-fake0")
    link = [
        {
            "ifname": "eth0",
            "flags": ["BROADCAST", "UP"],
            "address": "0a:58:0a:f4:01:02",
            "addr_info": [{"family": "inet", "local": "10.244.1.2", "prefixlen": 24}],
        }
    ]
    routes = [{"dst": "default", "gateway": "10.244.1.1"}]
    out = tmp_path / "ip.json"
    out.write_text(json.dumps(link) + "\n" + json.dumps(routes) + "\n")
    monkeypatch.setenv("FAKE_IP_JSON", str(out))
    assert call("CHECK", dict(conf, prevResult=res), netns=fake.netns) == (0, None)
    assert fake.calls()[-1]["argv"][:1] == ["-j"]
    out.write_text(json.dumps(link) + "\n[]\n")
    status, err = call("CHECK", dict(conf, prevResult=res), netns=fake.netns)
    assert "default route" in err["msg"]
    other_gw = [{"dst": "default", "gateway": "10.244.1.254"}]
    out.write_text(json.dumps(link) + "\n" + json.dumps(other_gw) + "\n")
    custom = conf_for(fake, ipam={"routes": [{"dst": "0.0.0.0/0", "gw": "10.244.1.254"}]})
    assert call("CHECK", dict(custom, prevResult=res), netns=fake.netns) == (0, None)
    ipam.release(ipam.FileIpamStore(str(fake.data), "testbed"), "pod1", "eth0")
    status, err = call("CHECK", dict(conf, prevResult=res), netns=fake.netns)
    assert "reservation" in err["msg"]
