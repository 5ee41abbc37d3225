"""Node-level pod networking: routes (routed), VXLAN overlay, and pod egress masquerade.

Renderers are pure (config in, `ip -batch` lines / nft script out); `apply_*` run them.
"""

from __future__ import annotations

import subprocess
from ipaddress import IPv4Address, IPv4Network

VXLAN_DEV = "tbvx0"
VXLAN_ID = 1
VXLAN_PORT = 4789
VXLAN_OVERHEAD = 50
MASQ_TABLE = "testbed-masq"
NODE_IFACE = "eth0"


def pod_mtu(config: dict) -> int:
    """Pod interface MTU: the node MTU, less the VXLAN header in vxlan mode."""
    mtu = int(config["networking"].get("mtu", 1500))
    return mtu - VXLAN_OVERHEAD if config["networking"].get("routing") == "vxlan" else mtu


def vtep_mac(node_ip: str) -> str:
    """A stable, locally administered MAC for a node's VTEP, derived from its IP."""
    octets = IPv4Address(node_ip).packed
    return "0a:58:" + ":".join(f"{b:02x}" for b in octets)


def vtep_ip(pod_cidr: str) -> str:
    """The VTEP address: the pod /24's network address (as flannel does)."""
    return str(IPv4Network(pod_cidr).network_address)


def peers(config: dict, me: str) -> list[dict]:
    return [n for n in config["nodes"] if n["name"] != me]


def routed_batch(config: dict, me: str) -> list[str]:
    """`ip -batch` lines: a route to every other node's pod /24 via that node's IP."""
    return [f"route replace {p['podCIDR']} via {p['ip']} dev {NODE_IFACE}"
            for p in peers(config, me)]


def vxlan_batch(config: dict, me: str) -> list[str]:
    """`ip -batch` lines for the overlay: device, and per peer a route, neighbour and FDB entry."""
    node = next(n for n in config["nodes"] if n["name"] == me)
    mtu = pod_mtu(config)
    lines = [
        f"link set {VXLAN_DEV} address {vtep_mac(node['ip'])} mtu {mtu} up",
        f"addr replace {vtep_ip(node['podCIDR'])}/32 dev {VXLAN_DEV}",
    ]
    for p in peers(config, me):
        vip, mac = vtep_ip(p["podCIDR"]), vtep_mac(p["ip"])
        lines += [
            f"neigh replace {vip} lladdr {mac} dev {VXLAN_DEV} nud permanent",
            f"route replace {p['podCIDR']} via {vip} dev {VXLAN_DEV} onlink",
        ]
    return lines


def vxlan_fdb_batch(config: dict, me: str) -> list[str]:
    """`bridge -batch` lines: where to send frames for each peer's VTEP MAC."""
    return [f"fdb replace {vtep_mac(p['ip'])} dev {VXLAN_DEV} dst {p['ip']} self permanent"
            for p in peers(config, me)]


def vxlan_create_args(node_ip: str) -> list[str]:
    return ["ip", "link", "add", VXLAN_DEV, "type", "vxlan", "id", str(VXLAN_ID),
            "dstport", str(VXLAN_PORT), "local", node_ip, "dev", NODE_IFACE, "nolearning"]


def masquerade_script(config: dict) -> str:
    """nft script for the CNI masquerade table: pod egress leaving the pod network is NATed
    to the node IP (the "island" model); flat mode gets an empty table."""
    pod_subnet = config["networking"]["podSubnet"]
    flat = config["networking"].get("podNetwork", "island") == "flat"
    rules = "" if flat else (
        f"\t\tip saddr {pod_subnet} ip daddr != {pod_subnet} "
        f"oifname \"{NODE_IFACE}\" masquerade\n"
    )
    return (
        f"table ip {MASQ_TABLE}\n"
        f"delete table ip {MASQ_TABLE}\n"
        f"table ip {MASQ_TABLE} {{\n"
        f"\tchain postrouting {{\n"
        f"\t\ttype nat hook postrouting priority srcnat + 10; policy accept;\n"
        f"{rules}"
        f"\t}}\n"
        f"}}\n"
    )


def _run(cmd: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}\n{stdin or ''}")
    return proc


def apply_node_network(config: dict, me: str) -> None:
    """Converge this node's routes/overlay and masquerade table to the config (idempotent)."""
    node = next(n for n in config["nodes"] if n["name"] == me)
    if config["networking"].get("routing") == "vxlan":
        exists = subprocess.run(["ip", "link", "show", VXLAN_DEV], capture_output=True)
        if exists.returncode != 0:
            _run(vxlan_create_args(node["ip"]))
        fdb = vxlan_fdb_batch(config, me)
        if fdb:
            _run(["bridge", "-batch", "-"], "\n".join(fdb) + "\n")
        batch = vxlan_batch(config, me)
    else:
        batch = routed_batch(config, me)
    if batch:
        _run(["ip", "-batch", "-"], "\n".join(batch) + "\n")
    _run(["nft", "-f", "-"], masquerade_script(config))
