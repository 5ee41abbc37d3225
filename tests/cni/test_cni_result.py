"""Result shapes per CNI version, IPv4 helpers and the JSON shim."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys

import pytest

from testbed.cni import ip4, jsonlite, result

from .helpers import REPO

V03 = ("0.3.0", "0.3.1", "0.4.0")
V1 = ("1.0.0", "1.1.0")


def _sample(version: str, prev: dict | None = None) -> dict:
    ifaces = [
        result.interface(version, "tb0", "0a:58:0a:f4:01:01"),
        result.interface(version, "veth12345678", "aa:bb:cc:dd:ee:ff"),
        result.interface(version, "eth0", "0a:58:0a:f4:01:05", "/var/run/netns/p", mtu=1500),
    ]
    ips = [result.ip_config(version, "10.244.1.5/24", "10.244.1.1", 2)]
    routes = [result.route("0.0.0.0/0"), result.route("10.96.0.0/12", "10.244.1.1")]
    return result.build(version, ifaces, ips, routes, result.dns({}), prev)


@pytest.mark.parametrize("version", V03 + V1)
def test_common_shape(version):
    res = _sample(version)
    assert list(res) == ["cniVersion", "interfaces", "ips", "routes", "dns"]
    assert res["cniVersion"] == version
    assert [i["name"] for i in res["interfaces"]] == ["tb0", "veth12345678", "eth0"]
    assert "sandbox" not in res["interfaces"][0] and "sandbox" not in res["interfaces"][1]
    assert res["interfaces"][2]["sandbox"] == "/var/run/netns/p"
    assert res["ips"][0]["interface"] == 2 and res["ips"][0]["gateway"] == "10.244.1.1"
    assert res["routes"] == [{"dst": "0.0.0.0/0"}, {"dst": "10.96.0.0/12", "gw": "10.244.1.1"}]
    assert res["dns"] == {}
    json.dumps(res)


@pytest.mark.parametrize("version", V03)
def test_pre_1_0_ips_carry_version(version):
    assert _sample(version)["ips"][0] == {
        "version": "4",
        "interface": 2,
        "address": "10.244.1.5/24",
        "gateway": "10.244.1.1",
    }


@pytest.mark.parametrize("version", V1)
def test_1_x_ips_drop_version(version):
    assert "version" not in _sample(version)["ips"][0]


def test_mtu_only_in_1_1_0():
    assert _sample("1.1.0")["interfaces"][2]["mtu"] == 1500
    for version in ("1.0.0", *V03):
        assert "mtu" not in _sample(version)["interfaces"][2]


def test_dns_passes_known_keys_only():
    assert result.dns({"nameservers": ["10.96.0.10"], "search": ["a"], "junk": 1}) == {
        "nameservers": ["10.96.0.10"],
        "search": ["a"],
    }


def test_chaining_appends_and_shifts_indexes():
    prev = {
        "cniVersion": "0.4.0",
        "interfaces": [{"name": "x"}],
        "ips": [{"version": "4", "interface": 0, "address": "1.2.3.4/32"}],
        "routes": [{"dst": "1.0.0.0/8"}],
        "dns": {"nameservers": ["9.9.9.9"]},
    }
    res = _sample("1.0.0", prev)
    assert [i["name"] for i in res["interfaces"]] == ["x", "tb0", "veth12345678", "eth0"]
    assert [ip["interface"] for ip in res["ips"]] == [0, 3]
    assert all("version" not in ip for ip in res["ips"])
    assert res["routes"][0] == {"dst": "1.0.0.0/8"} and res["dns"] == {"nameservers": ["9.9.9.9"]}


def test_convert_round_trip():
    res = _sample("1.1.0")
    old = result.convert(res, "0.3.1")
    assert old["ips"][0]["version"] == "4" and "mtu" not in old["interfaces"][2]
    assert result.convert(old, "1.0.0")["ips"][0] == {
        "interface": 2,
        "address": "10.244.1.5/24",
        "gateway": "10.244.1.1",
    }


def test_find_attachment():
    res = _sample("1.0.0")
    iface, ips = result.find_attachment(res, "eth0", "/var/run/netns/p")
    assert iface["mac"] == "0a:58:0a:f4:01:05" and ips[0]["address"] == "10.244.1.5/24"
    with pytest.raises(KeyError):
        result.find_attachment(res, "eth0", "/other")


@pytest.mark.parametrize("text", ["0.0.0.0", "10.244.1.5", "255.255.255.255", "1.2.3.4"])
def test_ip4_matches_ipaddress(text):
    assert ip4.parse_ip(text) == int(ipaddress.IPv4Address(text))
    assert ip4.format_ip(ip4.parse_ip(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "01.2.3.4",
        "a.b.c.d",
        "1.2.3.-4",
        " 1.2.3.4",
        "١.2.3.4",
    ],
)
def test_ip4_rejects(text):
    with pytest.raises(ValueError):
        ip4.parse_ip(text)


def test_ip4_cidr_helpers():
    assert ip4.parse_cidr("10.244.0.0/16") == (ip4.parse_ip("10.244.0.0"), 16)
    with pytest.raises(ValueError):
        ip4.parse_cidr("10.244.1.0/16")
    assert ip4.parse_cidr("10.244.1.0/16", strict=False)[1] == 16
    for bad in ("10.0.0.0", "10.0.0.0/33", "10.0.0.0/x", "10.0.0.0/8/8"):
        with pytest.raises(ValueError):
            ip4.parse_cidr(bad)
    net = ipaddress.IPv4Network("10.244.1.0/24")
    assert ip4.broadcast(int(net.network_address), 24) == int(net.broadcast_address)
    assert ip4.in_network(ip4.parse_ip("10.244.1.9"), int(net.network_address), 24)
    assert ip4.mac_for_ip(ip4.parse_ip("10.244.1.5")) == "0a:58:0a:f4:01:05"


@pytest.mark.parametrize(
    "doc", ['{"a": [1, 2.5, -3e2, true, false, null, "x\\u00e9\\n"], "b": {}}', "[]", '"s"', "12"]
)
def test_jsonlite_matches_json(doc):
    obj = jsonlite.loads(doc)
    assert obj == json.loads(doc)
    assert json.loads(jsonlite.dumps(obj)) == obj


@pytest.mark.parametrize("doc", ["", "{", "{} x", "[1,]", '{"a" 1}', "nul", b"\xff", "NaN x"])
def test_jsonlite_errors(doc):
    with pytest.raises(jsonlite.JsonError):
        jsonlite.loads(doc)


def test_jsonlite_dumps_rejects_non_json():
    with pytest.raises(TypeError):
        jsonlite.dumps({1: 2})
    with pytest.raises(TypeError):
        jsonlite.dumps(object())
    with pytest.raises(ValueError):
        jsonlite.dumps(float("nan"))
    assert jsonlite.loads_many('[1]\n{"a": 2} 3') == [[1], {"a": 2}, 3]


def test_plugin_entry_imports_stay_light():
    """The exec path must not import heavy modules (start-up cost per CNI call)."""
    code = (
        "import sys; import testbed.cni.main, testbed.cni.plugin; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('json', 're', 'typing', 'subprocess', 'ipaddress', 'pydantic', 'yaml', 'docker', "
        "'dataclasses', 'enum', 'hashlib', 'ctypes', 'socket', 'logging')))"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
        env={"PYTHONPATH": str(REPO)},
    )
    assert out.stdout.strip() == "[]", out.stdout
