"""Environment and network-config parsing: values, defaults and error codes."""

from __future__ import annotations

import json

import pytest

from testbed.cni import errors, ip4
from testbed.cni.config import parse_config, parse_env, valid_ifname, valid_name

from .helpers import plugin_conf

FULL_ENV = {
    "CNI_COMMAND": "ADD",
    "CNI_CONTAINERID": "abc123",
    "CNI_NETNS": "/var/run/netns/x",
    "CNI_IFNAME": "eth0",
    "CNI_PATH": "/opt/cni/bin",
}


def test_env_full_add():
    env = parse_env(dict(FULL_ENV, CNI_ARGS="K8S_POD_NAME=x;IgnoreUnknown=1"))
    assert (env.command, env.container_id, env.netns, env.ifname) == (
        "ADD",
        "abc123",
        "/var/run/netns/x",
        "eth0",
    )
    assert env.args == "K8S_POD_NAME=x;IgnoreUnknown=1"


@pytest.mark.parametrize(
    ("command", "drop", "missing"),
    [
        ("ADD", "CNI_NETNS", "CNI_NETNS"),
        ("CHECK", "CNI_NETNS", "CNI_NETNS"),
        ("ADD", "CNI_CONTAINERID", "CNI_CONTAINERID"),
        ("DEL", "CNI_IFNAME", "CNI_IFNAME"),
        ("ADD", "CNI_PATH", "CNI_PATH"),
        ("GC", "CNI_PATH", "CNI_PATH"),
    ],
)
def test_env_missing_required_is_code_4_and_names_it(command, drop, missing):
    env = dict(FULL_ENV, CNI_COMMAND=command)
    del env[drop]
    with pytest.raises(errors.CniError) as exc:
        parse_env(env)
    assert exc.value.code == errors.INVALID_ENV
    assert missing in exc.value.msg


def test_env_del_needs_no_netns_and_version_needs_nothing():
    env = dict(FULL_ENV, CNI_COMMAND="DEL")
    del env["CNI_NETNS"]
    assert parse_env(env).netns == ""
    assert parse_env({"CNI_COMMAND": "VERSION"}).command == "VERSION"
    assert parse_env({"CNI_COMMAND": "STATUS"}).command == "STATUS"


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"CNI_COMMAND": "FROB"},
        dict(FULL_ENV, CNI_CONTAINERID="-bad"),
        dict(FULL_ENV, CNI_CONTAINERID="a b"),
        dict(FULL_ENV, CNI_IFNAME="this-name-is-too-long"),
        dict(FULL_ENV, CNI_IFNAME="a/b"),
        dict(FULL_ENV, CNI_IFNAME=".."),
    ],
)
def test_env_invalid_is_code_4(env):
    with pytest.raises(errors.CniError) as exc:
        parse_env(env)
    assert exc.value.code == errors.INVALID_ENV


def test_name_rules():
    assert valid_name("a") and valid_name("pod_1.x-y") and not valid_name("_a")
    assert not valid_name("") and not valid_name(None) and not valid_name("é")
    assert valid_ifname("eth0") and valid_ifname("x" * 15) and not valid_ifname("x" * 16)
    assert not valid_ifname("a b") and not valid_ifname("a:b") and not valid_ifname(".")


def test_config_full_and_defaults():
    conf = parse_config(json.dumps(plugin_conf()).encode())
    assert conf.cni_version == "1.1.0" and conf.name == "testbed" and conf.type == "testbed-cni"
    assert conf.subnet == "10.244.1.0/24" and ip4.format_ip(conf.gateway) == "10.244.1.1"
    assert ip4.format_ip(conf.range_start) == "10.244.1.1"
    assert ip4.format_ip(conf.range_end) == "10.244.1.254"
    assert conf.routes == ((0, 0, None),)
    assert conf.data_dir == "/var/lib/cni/testbed"
    minimal = parse_config(
        {"cniVersion": "0.3.1", "name": "n", "type": "t", "ipam": {"subnet": "10.0.0.0/16"}}
    )
    assert (minimal.bridge, minimal.mtu, minimal.hairpin, minimal.is_gateway) == (
        "tb0",
        1500,
        True,
        True,
    )
    assert ip4.format_ip(minimal.gateway) == "10.0.0.1"
    assert minimal.prev_result is None and minimal.valid_attachments is None
    assert minimal.dns == {}


def test_config_nulls_mean_defaults_and_ranges_parse():
    conf = parse_config(plugin_conf(ipam={"rangeStart": None, "rangeEnd": None}))
    assert ip4.format_ip(conf.range_end) == "10.244.1.254"
    conf = parse_config(
        plugin_conf(
            ipam={
                "rangeStart": "10.244.1.10",
                "rangeEnd": "10.244.1.20",
                "routes": [{"dst": "10.96.0.0/12", "gw": "10.244.1.1"}],
            }
        )
    )
    assert (ip4.format_ip(conf.range_start), ip4.format_ip(conf.range_end)) == (
        "10.244.1.10",
        "10.244.1.20",
    )
    assert conf.routes == ((ip4.parse_ip("10.96.0.0"), 12, ip4.parse_ip("10.244.1.1")),)


def test_config_host_bits_in_subnet_are_normalised():
    assert parse_config(plugin_conf(ipam={"subnet": "10.244.1.7/24"})).subnet == "10.244.1.0/24"


def test_config_valid_attachments():
    conf = parse_config(
        plugin_conf(**{"cni.dev/valid-attachments": [{"containerID": "a", "ifname": "eth0"}]})
    )
    assert conf.valid_attachments == [("a", "eth0")]


@pytest.mark.parametrize("data", [b"", b"{", b"[1, 2]", b'"x"', b"\xff", b"{} {}"])
def test_config_decode_errors_are_code_6(data):
    with pytest.raises(errors.CniError) as exc:
        parse_config(data)
    assert exc.value.code == errors.DECODE_FAILURE


@pytest.mark.parametrize("version", ["0.1.0", "0.2.0", "2.0.0", "", None, "1.1"])
def test_config_unsupported_version_is_code_1(version):
    conf = plugin_conf(cniVersion=version)
    if version is None:
        del conf["cniVersion"]
    with pytest.raises(errors.CniError) as exc:
        parse_config(conf)
    assert exc.value.code == errors.INCOMPATIBLE_VERSION


@pytest.mark.parametrize(
    "over",
    [
        {"name": ""},
        {"name": "bad name"},
        {"type": ""},
        {"bridge": "x" * 16},
        {"mtu": 10},
        {"mtu": "1500"},
        {"mtu": True},
        {"hairpinMode": "yes"},
        {"isGateway": 1},
        {"ipam": {"subnet": None}},
        {"ipam": {"subnet": "10.244.1.0/33"}},
        {"ipam": {"subnet": "banana"}},
        {"ipam": {"subnet": "10.244.1.0/31"}},
        {"ipam": {"gateway": "10.245.0.1"}},
        {"ipam": {"gateway": "10.244.1.255"}},
        {"ipam": {"gateway": "10.244.1.01"}},
        {"ipam": {"rangeStart": "10.244.1.0"}},
        {"ipam": {"rangeStart": "10.244.1.50", "rangeEnd": "10.244.1.40"}},
        {"ipam": {"dataDir": "relative/dir"}},
        {"ipam": {"routes": [{"gw": "10.244.1.1"}]}},
        {"ipam": {"routes": [{"dst": "nope"}]}},
        {"ipam": {"routes": "0.0.0.0/0"}},
        {"dns": []},
        {"prevResult": "x"},
        {"cni.dev/valid-attachments": [{"containerID": 1}]},
        {"cniVersion": 1},
    ],
)
def test_config_invalid_is_code_7(over):
    with pytest.raises(errors.CniError) as exc:
        parse_config(plugin_conf(**over))
    assert exc.value.code == errors.INVALID_CONFIG, exc.value


def test_config_missing_ipam_is_code_7():
    conf = plugin_conf()
    del conf["ipam"]
    with pytest.raises(errors.CniError) as exc:
        parse_config(conf)
    assert exc.value.code == errors.INVALID_CONFIG


def test_config_ipv6_is_unsupported_field_code_2():
    with pytest.raises(errors.CniError) as exc:
        parse_config(plugin_conf(ipam={"subnet": "fd00::/64", "gateway": None}))
    assert exc.value.code == errors.UNSUPPORTED_FIELD
    assert "ipam.subnet=fd00::/64" in exc.value.msg
