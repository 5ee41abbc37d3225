"""The shared proxy model (one `ServicePortInfo`) → this backend's `SvcPlan` (pure).

The endpoint pools come from the model (kube-proxy's CategorizeEndpoints lives there); this
module only decides which frontend sees which pool:
- ClusterIP, socket scope: `internal_endpoints` (internalTrafficPolicy Local → this node's).
- node IP:NodePort, externalIPs, LoadBalancer IPs reached from inside the node (socket
  scope): `cluster_endpoints`, kube-proxy's short-circuit for in-cluster clients.
- the same addresses reached from outside through the uplink (tc scope):
  `external_endpoints`; externalTrafficPolicy Local also means no SNAT (client IP kept).
An empty pool renders count 0: connect()/sendmsg() fail with ECONNREFUSED, tc drops.
"""

from __future__ import annotations

from testbed.proxy.ebpf import layout as L
from testbed.proxy.ebpf.render import Frontend, Group, SvcPlan


def ident_of(svc) -> str:
    """Stable identity of a service port: `ns/name:port-name/PROTOCOL`."""
    return f"{svc.port_key}/{svc.protocol}"


def _addrs(endpoints) -> tuple[tuple[str, int], ...]:
    return tuple(sorted({(e.ip, e.port) for e in endpoints}))


def plan_of(svc, ctx) -> SvcPlan | None:
    """The plan for one service port on this node (None if there is nothing to program)."""
    if svc.protocol not in L.PROTOS or not svc.cluster_ip:
        return None
    groups = [Group((Frontend(svc.cluster_ip, svc.port),), _addrs(svc.internal_endpoints))]
    extra = tuple(dict.fromkeys((*svc.external_ips, *svc.load_balancer_ips)))
    inside = [Frontend(ip, svc.port) for ip in extra]
    outside = [Frontend(ip, svc.port, L.SCOPE_EXT) for ip in extra]
    if svc.node_port and ctx.node_ip:
        inside.append(Frontend(ctx.node_ip, svc.node_port))
        outside.append(Frontend(ctx.node_ip, svc.node_port, L.SCOPE_EXT))
    if inside:
        groups.append(Group(tuple(inside), _addrs(svc.cluster_endpoints)))
        groups.append(Group(tuple(outside), _addrs(svc.external_endpoints),
                            no_snat=svc.external_policy_local))
    return SvcPlan(ident_of(svc), svc.protocol, tuple(groups), svc.affinity_timeout or 0)
