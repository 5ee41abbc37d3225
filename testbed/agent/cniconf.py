"""The CNI network configuration a node uses: testbed-cni by default, or the user's conflist
with per-node values filled in ({{podCIDR}}, {{podGateway}}, {{mtu}}, {{nodeIP}}, {{nodeName}})."""

from __future__ import annotations

import json
from ipaddress import IPv4Network

from testbed.agent.netsetup import pod_mtu


def template_values(config: dict, node: dict) -> dict[str, str]:
    cidr = IPv4Network(node["podCIDR"])
    return {"podCIDR": str(cidr), "podGateway": str(cidr.network_address + 1),
            "mtu": str(pod_mtu(config)), "nodeIP": node["ip"], "nodeName": node["name"]}


def render_template(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def node_conflist(config: dict, node: dict) -> dict:
    """The conflist the agent hands to CNI for pods on `node` (pure)."""
    from testbed.cni.invoke import testbed_conflist

    custom = (config.get("cni") or {}).get("conflist")
    values = template_values(config, node)
    if custom:
        return _numeric_mtu(json.loads(render_template(json.dumps(custom), values)))
    return testbed_conflist(values["podCIDR"], values["podGateway"], pod_mtu(config))


def _numeric_mtu(obj):
    """"mtu": "{{mtu}}" renders to a string; plugins expect a number."""
    if isinstance(obj, dict):
        return {k: int(v) if k == "mtu" and isinstance(v, str) and v.isdigit() else _numeric_mtu(v)
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [_numeric_mtu(v) for v in obj]
    return obj
