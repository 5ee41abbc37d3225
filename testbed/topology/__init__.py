"""The topology file format: schema, loading, validation and defaults.

Pure code: nothing here touches Docker or the network. Typical use::

    lt = load_topology("topologies/default.yaml")   # raises TopologyError
    lt = with_overrides(lt, mode="ipvs")
    plan = address_plan(lt.topology, subnet)
"""

from .errors import Problem, TopologyError
from .loader import LoadedTopology, load_topology, load_topology_text, with_overrides
from .model import (
    CniConfig,
    ExternalHost,
    Metadata,
    Networking,
    Node,
    Spec,
    Topology,
)
from .plan import (
    AddressPlan,
    address_plan,
    control_plane,
    first_service_ip,
    node_pod_cidrs,
    pick_free_subnet,
    service_dns_ip,
)

__all__ = [
    "AddressPlan",
    "CniConfig",
    "ExternalHost",
    "LoadedTopology",
    "Metadata",
    "Networking",
    "Node",
    "Problem",
    "Spec",
    "Topology",
    "TopologyError",
    "address_plan",
    "control_plane",
    "first_service_ip",
    "load_topology",
    "load_topology_text",
    "node_pod_cidrs",
    "pick_free_subnet",
    "service_dns_ip",
    "with_overrides",
]
