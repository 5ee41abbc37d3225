"""Node network renderers: routes, VXLAN overlay entries, masquerade table, CNI conflist."""

from __future__ import annotations

from testbed.agent import netsetup
from testbed.agent.cniconf import node_conflist

NODES = [
    {"name": "cp", "ip": "172.30.0.2", "podCIDR": "10.244.0.0/24"},
    {"name": "w1", "ip": "172.30.0.3", "podCIDR": "10.244.1.0/24"},
    {"name": "w2", "ip": "172.30.0.4", "podCIDR": "10.244.2.0/24"},
]


def config(routing="routed", pod_network="island", cni=None):
    return {"networking": {"routing": routing, "podNetwork": pod_network, "mtu": 1500,
                           "podSubnet": "10.244.0.0/16"}, "nodes": NODES, "cni": cni or {}}


def test_routed_mode_routes_each_peer_cidr_via_its_node():
    assert netsetup.routed_batch(config(), "w1") == [
        "route replace 10.244.0.0/24 via 172.30.0.2 dev eth0",
        "route replace 10.244.2.0/24 via 172.30.0.4 dev eth0",
    ]


def test_vxlan_entries_are_derived_from_peer_ips():
    cfg = config("vxlan")
    assert netsetup.pod_mtu(cfg) == 1450 and netsetup.pod_mtu(config()) == 1500
    assert netsetup.vtep_mac("172.30.0.4") == "0a:58:ac:1e:00:04"
    lines = netsetup.vxlan_batch(cfg, "w1")
    assert lines[0] == "link set tbvx0 address 0a:58:ac:1e:00:03 mtu 1450 up"
    assert "neigh replace 10.244.2.0 lladdr 0a:58:ac:1e:00:04 dev tbvx0 nud permanent" in lines
    assert "route replace 10.244.2.0/24 via 10.244.2.0 dev tbvx0 onlink" in lines
    assert netsetup.vxlan_fdb_batch(cfg, "w1") == [
        "fdb replace 0a:58:ac:1e:00:02 dev tbvx0 dst 172.30.0.2 self permanent",
        "fdb replace 0a:58:ac:1e:00:04 dev tbvx0 dst 172.30.0.4 self permanent",
    ]


def test_masquerade_only_in_island_mode():
    island = netsetup.masquerade_script(config())
    assert "ip saddr 10.244.0.0/16 ip daddr != 10.244.0.0/16" in island
    assert "masquerade" in island
    assert "masquerade" not in netsetup.masquerade_script(config(pod_network="flat"))
    assert island.startswith("table ip testbed-masq\ndelete table ip testbed-masq\n")


def test_default_conflist_uses_the_node_cidr_and_pod_mtu():
    conf = node_conflist(config("vxlan"), NODES[1])
    plugin = conf["plugins"][0]
    assert plugin["type"] == "testbed-cni" and plugin["mtu"] == 1450
    assert plugin["ipam"]["subnet"] == "10.244.1.0/24"


def test_custom_conflist_templates_are_filled_per_node():
    custom = {"cniVersion": "1.0.0", "name": "ref", "plugins": [{
        "type": "bridge", "mtu": "{{mtu}}",
        "ipam": {"type": "host-local", "ranges": [[{"subnet": "{{podCIDR}}",
                                                    "gateway": "{{podGateway}}"}]]}}]}
    conf = node_conflist(config(cni={"conflist": custom}), NODES[2])
    plugin = conf["plugins"][0]
    assert plugin["mtu"] == 1500
    assert plugin["ipam"]["ranges"] == [[{"subnet": "10.244.2.0/24", "gateway": "10.244.2.1"}]]
