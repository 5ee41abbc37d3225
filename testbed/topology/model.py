"""The topology schema: pydantic models for the ``Topology`` file format.

These models check the *shape* of a topology (types, names, syntax of each
value). Checks that relate several fields to each other (unique names, one
control plane, subnets that fit and do not overlap) live in
:mod:`testbed.topology.checks`, so that each problem can be reported at the
exact field it concerns; the loaders (and ``with_overrides``) run both.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from .errors import show

API_VERSION = "testbed.dev/v1alpha1"
KIND = "Topology"
KUBE_PROXY_MODES = ("iptables", "nftables", "ipvs", "ebpf")
ROUTING_MODES = ("routed", "vxlan")
POD_NETWORKS = ("island", "flat")
ROLES = ("control-plane", "worker")
CNI_TYPES = ("testbed", "custom")
MTU_RANGE = (1280, 9000)
# metadata.name is prefixed to Docker container and network names, which must
# stay short enough to leave room for node names.
MAX_TOPOLOGY_NAME = 40

KubeProxyMode = Literal["iptables", "nftables", "ipvs", "ebpf"]
RoutingMode = Literal["routed", "vxlan"]
PodNetwork = Literal["island", "flat"]
Role = Literal["control-plane", "worker"]
CniType = Literal["testbed", "custom"]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def is_dns_label(value: str, max_len: int = 63) -> bool:
    """True if ``value`` is an RFC 1123 label (as Kubernetes names nodes)."""
    return len(value) <= max_len and _DNS_LABEL.fullmatch(value) is not None


def is_dns_subdomain(value: str) -> bool:
    """True if ``value`` is dot-separated RFC 1123 labels, at most 253 characters."""
    return len(value) <= 253 and all(is_dns_label(part) for part in value.split("."))


def _name(max_len: int) -> Any:
    def check(value: str) -> str:
        if not is_dns_label(value, max_len):
            raise ValueError(
                f"{show(value)} is not a valid name; expected lowercase letters, digits and '-', "
                f"starting and ending with a letter or digit, at most {max_len} characters"
            )
        return value

    return AfterValidator(check)


def _label_key(value: str) -> str:
    prefix, slash, name = value.rpartition("/")
    ok = len(name) <= 63 and _LABEL_NAME.fullmatch(name) is not None
    if slash:
        ok = ok and bool(prefix) and is_dns_subdomain(prefix)
    if not ok:
        raise ValueError(
            f"{show(value)} is not a valid label key; expected an optional DNS subdomain "
            "prefix and '/', then at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return value


def _label_value(value: str) -> str:
    if value and not (len(value) <= 63 and _LABEL_NAME.fullmatch(value)):
        raise ValueError(
            f"{show(value)} is not a valid label value; expected at most 63 letters, digits, "
            "'-', '_' or '.', starting and ending with a letter or digit (or empty)"
        )
    return value


def _dns_domain(value: str) -> str:
    if not is_dns_subdomain(value):
        raise ValueError(f"{show(value)} is not a valid DNS domain; expected e.g. cluster.local")
    return value


def _cidr(value: object) -> IPv4Network:
    # Parsed here rather than by pydantic so that integers are not silently
    # taken as /32 networks and so the message says *why* a CIDR is wrong.
    if isinstance(value, IPv4Network):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected an IPv4 CIDR such as 10.244.0.0/16, got {show(value)}")
    if "/" not in value:
        raise ValueError(f"{show(value)} is not a CIDR; expected address/prefix, e.g. 10.0.0.0/16")
    try:
        return IPv4Network(value, strict=True)
    except ValueError as err:
        reason = " ".join(str(err).split())[:120]
        raise ValueError(f"{show(value)} is not a valid IPv4 CIDR: {reason}") from None


def _address(value: object) -> IPv4Address:
    if isinstance(value, IPv4Address):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected an IPv4 address such as 8.8.8.8, got {show(value)}")
    try:
        return IPv4Address(value)
    except ValueError:
        raise ValueError(f"{show(value)} is not a valid IPv4 address") from None


def _mtu(value: int) -> int:
    low, high = MTU_RANGE
    if not low <= value <= high:
        raise ValueError(f"{show(value)} is out of range; expected {low}..{high}")
    return value


def _manifest_entry(value: object) -> object:
    # Checked up front so a bad entry yields one clear message instead of one
    # per member of the str | dict union.
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, dict):
        return value
    raise ValueError(
        f"expected a manifest file path or an inline Kubernetes object, got {show(value)}"
    )


def _strict_int(value: object) -> object:
    # YAML "true" must not become MTU 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {show(value)}")
    return value


DnsLabel = Annotated[str, _name(63)]
TopologyName = Annotated[str, _name(MAX_TOPOLOGY_NAME)]
LabelKey = Annotated[str, AfterValidator(_label_key)]
LabelValue = Annotated[str, AfterValidator(_label_value)]
Cidr = Annotated[IPv4Network, BeforeValidator(_cidr)]
Address = Annotated[IPv4Address, BeforeValidator(_address)]
ManifestEntry = Annotated[str | dict[str, Any], BeforeValidator(_manifest_entry)]
Mtu = Annotated[int, BeforeValidator(_strict_int), AfterValidator(_mtu)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Metadata(_Model):
    """``metadata``: the topology's name, used as a prefix for Docker objects."""

    name: TopologyName = "default"


class CniConfig(_Model):
    """``spec.networking.cni``: the built-in CNI plugin or a custom one.

    For ``type: custom`` both ``conflist`` and ``binDir`` are required; they are
    paths relative to the topology file (resolved ones are on
    :class:`~testbed.topology.LoadedTopology`).
    """

    type: CniType = "testbed"
    conflist: str | None = None
    bin_dir: str | None = Field(default=None, alias="binDir")


class Networking(_Model):
    """``spec.networking``: address ranges and data-plane choices."""

    node_subnet: Cidr | None = Field(default=None, alias="nodeSubnet")
    pod_subnet: Cidr = Field(default=IPv4Network("10.244.0.0/16"), alias="podSubnet")
    service_subnet: Cidr = Field(default=IPv4Network("10.96.0.0/16"), alias="serviceSubnet")
    kube_proxy_mode: KubeProxyMode = Field(default="iptables", alias="kubeProxyMode")
    routing: RoutingMode = "routed"
    pod_network: PodNetwork = Field(default="island", alias="podNetwork")
    dns_domain: Annotated[str, AfterValidator(_dns_domain)] = Field(
        default="cluster.local", alias="dnsDomain"
    )
    mtu: Mtu = 1500
    load_balancer_pool: Cidr | None = Field(default=None, alias="loadBalancerPool")
    dns_upstream: Address | None = Field(default=None, alias="dnsUpstream")
    cni: CniConfig = Field(default_factory=CniConfig)


class Node(_Model):
    """A Kubernetes node, run as one container."""

    name: DnsLabel
    role: Role = "worker"
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)


class ExternalHost(_Model):
    """A container on the node network that is not part of the cluster."""

    name: DnsLabel


class Spec(_Model):
    """``spec``: networking, nodes, external hosts and manifests to apply."""

    networking: Networking = Field(default_factory=Networking)
    nodes: list[Node] = Field(min_length=1)
    external_hosts: list[ExternalHost] = Field(default_factory=list, alias="externalHosts")
    manifests: list[ManifestEntry] = Field(default_factory=list)


class Topology(_Model):
    """A whole topology file (``kind: Topology``)."""

    api_version: Literal["testbed.dev/v1alpha1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["Topology"] = KIND
    metadata: Metadata = Field(default_factory=Metadata)
    spec: Spec
