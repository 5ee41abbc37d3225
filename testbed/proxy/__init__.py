"""Service proxy (kube-proxy's role): one model, several data-plane backends.

Node agent usage::

    from testbed.proxy import NodeContext, build_model, get_backend, sync

    backend = get_backend("nftables", require_available=True)   # or "iptables"
    ctx = NodeContext(node_name, node_ip, cluster_cidr="10.244.0.0/16", node_ips=...)
    model = build_model(services, endpoint_slices, node_name)
    how = sync(backend, last_applied_model_or_None, model, ctx)  # "full"/"incremental"/...
"""

from testbed.proxy.base import (
    Availability,
    Backend,
    NotAvailable,
    get_backend,
    modes,
    register_backend,
    sync,
)
from testbed.proxy.model import (
    Endpoint,
    NodeContext,
    ProxyModel,
    ServicePortInfo,
    build_model,
    diff,
)
from testbed.proxy.runner import CmdResult, CommandError, Runner

__all__ = [
    "Availability",
    "Backend",
    "CmdResult",
    "CommandError",
    "Endpoint",
    "NodeContext",
    "NotAvailable",
    "ProxyModel",
    "Runner",
    "ServicePortInfo",
    "build_model",
    "diff",
    "get_backend",
    "modes",
    "register_backend",
    "sync",
]
