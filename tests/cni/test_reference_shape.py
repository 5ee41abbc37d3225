"""Our ADD result has the same shape as Debian's bridge + host-local plugins' result."""

from __future__ import annotations

import pytest

from testbed.cni.invoke import testbed_conflist as make_conflist

from .rootnet import REFERENCE_DIR, node, skip_reason

pytestmark = pytest.mark.root

VERSION = "1.0.0"  # highest version Debian's reference plugins (1.1.x) speak


def shape(res: dict) -> dict:
    """The structure of a result, ignoring values."""
    return {
        "keys": sorted(res),
        "version": res["cniVersion"],
        "interfaces": [sorted(i) for i in res["interfaces"]],
        "sandboxed": ["sandbox" in i for i in res["interfaces"]],
        "ips": [sorted(ip) for ip in res["ips"]],
        "ip_interface": [ip["interface"] for ip in res["ips"]],
        "prefix": [ip["address"].split("/")[1] for ip in res["ips"]],
        "routes": [sorted(r) for r in res["routes"]],
        "dns": res["dns"],
    }


def test_add_result_shape_matches_reference_bridge(tmp_path, plugin_exe):
    reason = skip_reason(reference=True)
    if reason:
        pytest.skip(reason)
    ours = make_conflist(
        "10.251.1.0/24",
        "10.251.1.1",
        1500,
        bridge="tbcni-ours",
        name="tbcni-ours",
        cni_version=VERSION,
        data_dir=str(tmp_path / "ipam"),
    )
    ref = {
        "cniVersion": VERSION,
        "name": "tbcni-ref",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "tbcni-ref",
                "isGateway": True,
                "hairpinMode": True,
                "mtu": 1500,
                "ipam": {
                    "type": "host-local",
                    "subnet": "10.251.2.0/24",
                    "gateway": "10.251.2.1",
                    "dataDir": str(tmp_path / "ref-ipam"),
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            }
        ],
    }
    with node("shape", tmp_path, [str(plugin_exe.parent), str(REFERENCE_DIR)]) as n:
        p_ours, p_ref = n.pod(1), n.pod(2)
        got_ours, got_ref = n.invoke(
            {"op": "add", "args": [ours, "c-ours", p_ours]},
            {"op": "add", "args": [ref, "c-ref", p_ref]},
        )
        assert "ok" in got_ours, got_ours
        assert "ok" in got_ref, got_ref
        assert shape(got_ours["ok"]) == shape(got_ref["ok"])
        dels = n.invoke(
            {"op": "delete", "args": [ours, "c-ours", p_ours]},
            {"op": "delete", "args": [ref, "c-ref", p_ref]},
        )
        assert dels == [{"ok": None}, {"ok": None}]
