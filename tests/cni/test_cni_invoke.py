"""CniInvoker against fake plugin executables that record their env and stdin."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from testbed.cni import errors
from testbed.cni.config import parse_config
from testbed.cni.invoke import (
    CniError,
    CniInvoker,
    load_conflist,
    select_version,
    testbed_conflist,
)

from .helpers import write_exe

FAKE_PLUGIN = """
#!{python}
# Fake CNI plugin "{name}": logs env+config; behaviour comes from the config's "fake" key.
import json, os, sys
conf = json.loads(sys.stdin.read() or "{{}}")
env = {{k: v for k, v in os.environ.items() if k.startswith("CNI_")}}
with open(os.environ["FAKE_CNI_LOG"], "a") as fh:
    fh.write(json.dumps({{"plugin": "{name}", "env": env, "conf": conf}}) + "\\n")
cmd = env["CNI_COMMAND"]
fake = conf.get("fake", {{}})
if cmd in fake.get("fail", []):
    print(json.dumps({{"cniVersion": conf.get("cniVersion"), "code": 11, "msg": "{name} says no",
                      "details": cmd}}))
    sys.stderr.write("{name} stderr\\n")
    sys.exit(1)
if cmd in fake.get("garbage", []):
    print("not json")
    sys.stderr.write("{name} exploded\\n")
    sys.exit(2)
if cmd == "ADD":
    prev = conf.get("prevResult") or {{"cniVersion": conf["cniVersion"], "interfaces": [],
                                       "ips": [], "dns": {{}}}}
    prev["interfaces"] = prev["interfaces"] + [{{"name": "{name}"}}]
    print(json.dumps(prev))
elif cmd == "VERSION":
    print(json.dumps({{"cniVersion": conf.get("cniVersion"), "supportedVersions": ["1.1.0"]}}))
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("one", "two", "three"):
        write_exe(bindir / name, FAKE_PLUGIN.format(python=sys.executable, name=name))
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("FAKE_CNI_LOG", str(log))
    monkeypatch.setenv("CNI_NETNS", "/leaked/from/parent")  # must be overridden
    inv = CniInvoker([str(tmp_path / "empty"), str(bindir)], str(tmp_path / "cache"))

    def calls() -> list[dict]:
        return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []

    return inv, calls, bindir


def conflist(version: str = "1.1.0", **fake) -> dict:
    return {
        "cniVersion": version,
        "name": "net1",
        "plugins": [
            {
                "type": "one",
                "capabilities": {"portMappings": True, "bandwidth": False},
                "custom": [1, 2],
                "fake": fake.get("one", {}),
            },
            {"type": "two", "fake": fake.get("two", {})},
            {"type": "three", "fake": fake.get("three", {})},
        ],
    }


def test_add_env_injection_and_chaining(env):
    inv, calls, bindir = env
    res = inv.add(
        conflist(),
        "cid1",
        "/run/netns/p1",
        "eth1",
        {"K8S_POD_NAME": "p", "A": "1"},
        capability_args={"portMappings": [{"hostPort": 80}], "bandwidth": {"x": 1}, "other": 1},
    )
    assert [i["name"] for i in res["interfaces"]] == ["one", "two", "three"]
    log = calls()
    assert [c["plugin"] for c in log] == ["one", "two", "three"]
    for c in log:
        assert c["env"] == {
            "CNI_COMMAND": "ADD",
            "CNI_CONTAINERID": "cid1",
            "CNI_NETNS": "/run/netns/p1",
            "CNI_IFNAME": "eth1",
            "CNI_ARGS": "K8S_POD_NAME=p;A=1",
            "CNI_PATH": f"{Path(inv.bin_dirs[0])}:{bindir}",
        }
        assert c["conf"]["name"] == "net1" and c["conf"]["cniVersion"] == "1.1.0"
        assert "capabilities" not in c["conf"]
    first, second, third = (c["conf"] for c in log)
    assert "prevResult" not in first
    assert first["runtimeConfig"] == {"portMappings": [{"hostPort": 80}]}
    assert first["custom"] == [1, 2]  # unknown fields pass through
    assert "runtimeConfig" not in second
    assert [i["name"] for i in second["prevResult"]["interfaces"]] == ["one"]
    assert [i["name"] for i in third["prevResult"]["interfaces"]] == ["one", "two"]
    assert inv.cached_result("net1", "cid1", "eth1") == res
    cache = json.loads(inv.cache_path("net1", "cid1", "eth1").read_text())
    assert cache["kind"] == "cniCacheV1" and cache["netns"] == "/run/netns/p1"


def test_delete_reverse_order_with_cached_prev_result(env):
    inv, calls, _ = env
    res = inv.add(conflist(), "cid1", "/run/netns/p1")
    n = len(calls())
    inv.delete(conflist(), "cid1", "/run/netns/p1")
    dels = calls()[n:]
    assert [c["plugin"] for c in dels] == ["three", "two", "one"]
    assert all(c["env"]["CNI_COMMAND"] == "DEL" for c in dels)
    assert all(c["conf"]["prevResult"] == res for c in dels)
    assert not inv.cache_path("net1", "cid1", "eth0").exists()
    inv.delete(conflist(), "cid1", "")  # again: no cache, no prevResult, still fine
    again = calls()[n + 3 :]
    assert len(again) == 3 and all("prevResult" not in c["conf"] for c in again)
    assert all(c["env"]["CNI_NETNS"] == "" for c in again)


def test_delete_pre_0_4_0_passes_no_prev_result(env):
    inv, calls, _ = env
    inv.add(conflist("0.3.1"), "cid1", "/run/netns/p1")
    inv.delete(conflist("0.3.1"), "cid1", "/run/netns/p1")
    assert all("prevResult" not in c["conf"] for c in calls()[3:])


def test_check_uses_cache_in_order(env):
    inv, calls, _ = env
    res = inv.add(conflist(), "cid1", "/run/netns/p1")
    inv.check(conflist(), "cid1", "/run/netns/p1")
    checks = calls()[3:]
    assert [c["plugin"] for c in checks] == ["one", "two", "three"]
    assert all(c["conf"]["prevResult"] == res for c in checks)
    with pytest.raises(CniError) as exc:
        inv.check(conflist(), "other", "/run/netns/p1")
    assert exc.value.code == errors.UNKNOWN_CONTAINER
    n = len(calls())
    inv.check(dict(conflist(), disableCheck=True), "cid1", "/run/netns/p1")
    inv.check(conflist("0.3.1"), "cid1", "/run/netns/p1")
    assert len(calls()) == n


def test_plugin_error_carries_code_output_and_plugin(env):
    inv, calls, _ = env
    with pytest.raises(CniError) as exc:
        inv.add(conflist(two={"fail": ["ADD"]}), "cid1", "/run/netns/p1")
    e = exc.value
    assert (e.code, e.msg, e.details, e.plugin) == (11, "two says no", "ADD", "two")
    assert json.loads(e.stdout)["code"] == 11 and e.stderr == "two stderr\n"
    assert [c["plugin"] for c in calls()] == ["one", "two"]  # chain halted
    assert inv.cached_result("net1", "cid1", "eth0") is None
    with pytest.raises(CniError) as exc:
        inv.delete(conflist(one={"garbage": ["DEL"]}), "cid1", "")
    assert exc.value.code == errors.INTERNAL and "exploded" in exc.value.details
    assert "two" in str(CniError(1, "m", "d", plugin="two"))


def test_missing_plugin(env):
    inv, _, _ = env
    with pytest.raises(CniError) as exc:
        inv.add({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "nope"}]}, "c", "/x")
    assert exc.value.plugin == "nope"
    with pytest.raises(CniError):
        inv.find_plugin("../one")


def test_status_and_version(env):
    inv, calls, _ = env
    inv.status(conflist())
    assert [c["env"]["CNI_COMMAND"] for c in calls()] == ["STATUS"] * 3
    assert all(c["env"]["CNI_CONTAINERID"] == "" for c in calls())
    inv.status(conflist("1.0.0"))  # STATUS only exists from 1.1.0
    assert len(calls()) == 3
    with pytest.raises(CniError) as exc:
        inv.status(conflist(two={"fail": ["STATUS"]}))
    assert exc.value.plugin == "two"
    assert inv.version("one") == {"cniVersion": "1.1.0", "supportedVersions": ["1.1.0"]}


def test_gc_deletes_stale_cached_and_sends_valid_attachments(env):
    inv, calls, _ = env
    inv.add(conflist(), "keep", "/run/netns/a")
    inv.add(conflist(), "stale", "/run/netns/b")
    n = len(calls())
    inv.gc(conflist(), [("keep", "eth0")])
    after = calls()[n:]
    dels = [c for c in after if c["env"]["CNI_COMMAND"] == "DEL"]
    assert [c["env"]["CNI_CONTAINERID"] for c in dels] == ["stale"] * 3
    assert dels[0]["env"]["CNI_NETNS"] == "/run/netns/b"
    gcs = [c for c in after if c["env"]["CNI_COMMAND"] == "GC"]
    assert [c["plugin"] for c in gcs] == ["one", "two", "three"]
    assert all(
        c["conf"]["cni.dev/valid-attachments"] == [{"containerID": "keep", "ifname": "eth0"}]
        for c in gcs
    )
    assert inv.cached_result("net1", "keep", "eth0") is not None
    assert inv.cached_result("net1", "stale", "eth0") is None


def test_gc_keeps_going_and_reports_all_errors(env):
    inv, calls, _ = env
    with pytest.raises(CniError) as exc:
        inv.gc(conflist(one={"fail": ["GC"]}, three={"fail": ["GC"]}), [])
    assert "2 places" in exc.value.msg and "three says no" in exc.value.details
    assert [c["plugin"] for c in calls()] == ["one", "two", "three"]
    n = len(calls())
    inv.gc(dict(conflist(), disableGC=True), [])
    assert len(calls()) == n


def test_select_version():
    assert select_version({"cniVersion": "0.4.0", "cniVersions": ["1.0.0", "0.3.1"]}) == "1.0.0"
    assert select_version({"cniVersion": "1.1.0"}) == "1.1.0"
    with pytest.raises(CniError):
        select_version({})


def test_load_conflist_and_conf(tmp_path):
    cl = tmp_path / "10-net.conflist"
    cl.write_text(json.dumps(conflist()))
    assert load_conflist(cl) == conflist()
    conf = tmp_path / "10-net.conf"
    conf.write_text(
        json.dumps({"cniVersion": "0.4.0", "name": "single", "type": "bridge", "bridge": "cni0"})
    )
    loaded = load_conflist(conf)
    assert loaded["name"] == "single" and loaded["cniVersion"] == "0.4.0"
    assert loaded["plugins"][0]["type"] == "bridge" and loaded["plugins"][0]["bridge"] == "cni0"
    bad = tmp_path / "bad.conf"
    for text, code in (
        ("{", errors.DECODE_FAILURE),
        ("[]", errors.DECODE_FAILURE),
        ('{"cniVersion": "1.0.0", "type": "x"}', errors.INVALID_CONFIG),
        ('{"name": "n", "plugins": []}', errors.INVALID_CONFIG),
        ('{"name": "n", "plugins": [{"type": "x"}]}', errors.INVALID_CONFIG),
        ('{"name": "n", "cniVersion": "1.0.0", "plugins": [{}]}', errors.INVALID_CONFIG),
    ):
        bad.write_text(text)
        with pytest.raises(CniError) as exc:
            load_conflist(bad)
        assert exc.value.code == code, text


def test_testbed_conflist_is_valid_for_the_plugin():
    cl = testbed_conflist("10.244.3.0/24", "10.244.3.1", 1450)
    assert cl["name"] == "testbed" and cl["cniVersion"] == "1.1.0"
    assert [p["type"] for p in cl["plugins"]] == ["testbed-cni"]
    plugin = cl["plugins"][0]
    assert plugin["bridge"] == "tb0" and plugin["mtu"] == 1450
    req = CniInvoker.build_config(cl, plugin)
    conf = parse_config(json.dumps(req))
    assert conf.subnet == "10.244.3.0/24" and conf.mtu == 1450 and conf.name == "testbed"
    custom = testbed_conflist(
        "10.1.0.0/16",
        "10.1.0.1",
        9000,
        bridge="br9",
        name="n2",
        cni_version="1.0.0",
        data_dir="/tmp/x",
    )
    assert custom["plugins"][0]["ipam"]["dataDir"] == "/tmp/x"
    assert custom["cniVersion"] == "1.0.0" and custom["plugins"][0]["bridge"] == "br9"
