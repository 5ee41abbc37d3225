"""The cluster config written to the store at `up`: topology plus the realised address plan."""

from __future__ import annotations

import hashlib
import json
from ipaddress import IPv4Network

from testbed.store.keys import CONFIG_KEY
from testbed.topology import LoadedTopology
from testbed.topology.plan import address_plan, node_pod_cidrs

__all__ = ["CONFIG_KEY", "cluster_config", "topology_hash"]


def topology_hash(lt: LoadedTopology) -> str:
    """A stable hash of everything `up` realises: topology and manifest objects."""
    doc = {"topology": lt.topology.model_dump(mode="json", by_alias=True), "objects": lt.objects}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def default_lb_pool(node_subnet: IPv4Network, used: int) -> IPv4Network | None:
    """The last /28 of the node subnet, when the topology names no pool and it is free."""
    if node_subnet.prefixlen > 26:
        return None
    pool = IPv4Network(f"{node_subnet.broadcast_address - 15}/28")
    return pool if used + 2 < node_subnet.num_addresses - 16 else None


def cluster_config(lt: LoadedTopology, node_subnet: IPv4Network) -> dict:
    """What every in-cluster component needs to know about the cluster (pure, JSON-able)."""
    topo = lt.topology
    plan = address_plan(topo, node_subnet)
    cidrs = node_pod_cidrs(topo)
    net = topo.spec.networking
    networking = net.model_dump(mode="json", by_alias=True) | {"nodeSubnet": str(node_subnet)}
    if net.load_balancer_pool is None:
        pool = default_lb_pool(node_subnet, len(plan.nodes) + len(plan.hosts))
        networking["loadBalancerPool"] = str(pool) if pool else None
    return {
        "name": topo.metadata.name,
        "topologyHash": topology_hash(lt),
        "networking": networking,
        "gateway": str(plan.gateway),
        "nodes": [
            {
                "name": n.name,
                "role": n.role,
                "labels": dict(n.labels),
                "ip": str(plan.nodes[n.name]),
                "podCIDR": str(cidrs[n.name]),
            }
            for n in topo.spec.nodes
        ],
        "cni": {"conflist": json.loads(lt.cni_conflist_path.read_text())
                if lt.cni_conflist_path else None},
        "externalHosts": [{"name": h.name, "ip": str(plan.hosts[h.name])}
                          for h in topo.spec.external_hosts],
    }
