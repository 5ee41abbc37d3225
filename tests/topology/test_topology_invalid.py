"""Rejected topologies (schema and cross-field checks): each problem names file, line, field.

Line numbers count from the top of the document; ``doc`` bodies start on line 6.
"""

from __future__ import annotations

import pytest

from .helpers import NODES, doc, problems_of

CASES = [
    pytest.param(
        doc("  networking:\n    kubeProxyMode: iptabels\n" + NODES),
        7,
        "spec.networking.kubeProxyMode",
        '"iptabels" is not a mode; expected one of iptables, nftables, ipvs, ebpf',
        id="bad-mode",
    ),
    pytest.param(
        doc("  networking:\n    routing: bgp\n" + NODES),
        7,
        "spec.networking.routing",
        '"bgp" is not a routing mode; expected one of routed, vxlan',
        id="bad-routing",
    ),
    pytest.param(
        doc("  networking:\n    podNetwork: mesh\n" + NODES),
        7,
        "spec.networking.podNetwork",
        "expected one of island, flat",
        id="bad-pod-network",
    ),
    pytest.param(
        doc("  networking:\n    foo: 1\n" + NODES),
        7,
        "spec.networking.foo",
        "unknown field",
        id="unknown-networking-field",
    ),
    pytest.param(
        doc("  networking:\n    podSubnett: 10.0.0.0/16\n" + NODES),
        7,
        "spec.networking.podSubnett",
        "unknown field (did you mean podSubnet?)",
        id="unknown-field-suggestion",
    ),
    pytest.param(
        doc(NODES + "  extra: true\n"),
        10,
        "spec.extra",
        "unknown field",
        id="unknown-spec-field",
    ),
    pytest.param(
        doc("  networking:\n    pod_subnet: 10.0.0.0/16\n" + NODES),
        7,
        "spec.networking.pod_subnet",
        "unknown field (did you mean podSubnet?)",
        id="snake-case-key-in-file",
    ),
    pytest.param(
        "bogus: 1\n" + doc(NODES),
        1,
        "bogus",
        "unknown field",
        id="unknown-top-field",
    ),
    pytest.param(
        doc(NODES + "    - name: worker1\n"),
        10,
        "spec.nodes[2].name",
        'duplicate name "worker1" (node and external host names must be unique)',
        id="duplicate-node",
    ),
    pytest.param(
        doc(NODES + "  externalHosts:\n    - name: cp\n"),
        11,
        "spec.externalHosts[0].name",
        'duplicate name "cp"',
        id="duplicate-across-hosts",
    ),
    pytest.param(
        doc("  nodes:\n    - name: a\n    - name: b\n"),
        6,
        "spec.nodes",
        "exactly one node must have role control-plane",
        id="no-control-plane",
    ),
    pytest.param(
        doc(NODES + "    - name: cp2\n      role: control-plane\n"),
        11,
        "spec.nodes[2].role",
        'exactly one node must have role control-plane, and "cp" already has it',
        id="two-control-planes",
    ),
    pytest.param(
        doc("  nodes: []\n"),
        6,
        "spec.nodes",
        "at least one node is required",
        id="empty-nodes",
    ),
    pytest.param(
        doc("  networking: {}\n"),
        5,
        "spec.nodes",
        "required field is missing",
        id="missing-nodes-points-at-parent",
    ),
    pytest.param(
        doc("  nodes:\n    - role: control-plane\n"),
        7,
        "spec.nodes[0].name",
        "required field is missing",
        id="missing-name",
    ),
    pytest.param(
        doc("  nodes:\n    - name: Control_Plane\n      role: control-plane\n"),
        7,
        "spec.nodes[0].name",
        "is not a valid name",
        id="bad-node-name",
    ),
    pytest.param(
        doc("  nodes:\n    - name: " + "a" * 64 + "\n      role: control-plane\n"),
        7,
        "spec.nodes[0].name",
        "at most 63 characters",
        id="long-node-name",
    ),
    pytest.param(
        doc(NODES).replace("name: t", "name: " + "a" * 41),
        4,
        "metadata.name",
        "at most 40 characters",
        id="long-topology-name",
    ),
    pytest.param(
        doc("  nodes:\n    - name: cp\n      role: master\n"),
        8,
        "spec.nodes[0].role",
        '"master" is not a role; expected one of control-plane, worker',
        id="bad-role",
    ),
    pytest.param(
        doc(NODES + "      labels:\n        zone: 1\n"),
        11,
        "spec.nodes[1].labels.zone",
        "expected a string, got 1 (put it in quotes)",
        id="label-value-not-string",
    ),
    pytest.param(
        doc(NODES + "      labels:\n        -bad: x\n"),
        11,
        'spec.nodes[1].labels["-bad"]',
        "is not a valid label key",
        id="bad-label-key",
    ),
    pytest.param(
        doc(NODES + "      labels:\n        Example.com/zone: x\n"),
        11,
        'spec.nodes[1].labels["Example.com/zone"]',
        "is not a valid label key",
        id="bad-label-prefix",
    ),
    pytest.param(
        doc(NODES + "      labels:\n        zone: 'a b'\n"),
        11,
        "spec.nodes[1].labels.zone",
        "is not a valid label value",
        id="bad-label-value",
    ),
    pytest.param(
        doc("  networking:\n    podSubnet: 10.244.0.1/16\n" + NODES),
        7,
        "spec.networking.podSubnet",
        "has host bits set",
        id="cidr-host-bits",
    ),
    pytest.param(
        doc("  networking:\n    serviceSubnet: 10.96.0.0\n" + NODES),
        7,
        "spec.networking.serviceSubnet",
        "is not a CIDR; expected address/prefix",
        id="cidr-without-prefix",
    ),
    pytest.param(
        doc("  networking:\n    nodeSubnet: 300.1.0.0/24\n" + NODES),
        7,
        "spec.networking.nodeSubnet",
        "is not a valid IPv4 CIDR",
        id="cidr-bad-octet",
    ),
    pytest.param(
        doc("  networking:\n    podSubnet: 5\n" + NODES),
        7,
        "spec.networking.podSubnet",
        "expected an IPv4 CIDR",
        id="cidr-int",
    ),
    pytest.param(
        doc("  networking:\n    nodeSubnet: 10.96.1.0/24\n" + NODES),
        7,
        "spec.networking.nodeSubnet",
        "overlaps serviceSubnet 10.96.0.0/16",
        id="node-service-overlap",
    ),
    pytest.param(
        doc("  networking:\n    serviceSubnet: 10.244.128.0/20\n" + NODES),
        6,  # podSubnet is not in the file: its parent mapping's line
        "spec.networking.podSubnet",
        "overlaps serviceSubnet 10.244.128.0/20",
        id="pod-service-overlap",
    ),
    pytest.param(
        doc("  networking:\n    podSubnet: 10.244.0.0/25\n" + NODES),
        7,
        "spec.networking.podSubnet",
        "expected a prefix of /24 or shorter",
        id="pod-subnet-prefix",
    ),
    pytest.param(
        doc("  networking:\n    podSubnet: 10.244.0.0/24\n" + NODES),
        7,
        "spec.networking.podSubnet",
        "holds only 1 node /24s but there are 2 nodes",
        id="pod-subnet-capacity",
    ),
    pytest.param(
        doc("  networking:\n    serviceSubnet: 10.96.0.0/29\n" + NODES),
        7,
        "spec.networking.serviceSubnet",
        "expected a prefix of /28 or shorter",
        id="service-subnet-small",
    ),
    pytest.param(
        doc("  networking:\n    nodeSubnet: 172.30.0.0/30\n" + NODES),
        7,
        "spec.networking.nodeSubnet",
        "has 2 usable addresses but needs 3",
        id="node-subnet-small",
    ),
    pytest.param(
        doc(
            "  networking:\n    nodeSubnet: 172.30.0.0/29\n"
            "    loadBalancerPool: 172.30.0.4/30\n"
            + NODES
            + "  externalHosts:\n    - name: a\n    - name: b\n"
        ),
        7,
        "spec.networking.nodeSubnet",
        "has 3 usable addresses outside loadBalancerPool but needs 5",
        id="node-subnet-small-with-pool",
    ),
    pytest.param(
        doc(
            "  networking:\n    nodeSubnet: 172.30.0.0/24\n"
            "    loadBalancerPool: 172.31.0.0/28\n" + NODES
        ),
        8,
        "spec.networking.loadBalancerPool",
        "must lie inside nodeSubnet 172.30.0.0/24",
        id="pool-outside",
    ),
    pytest.param(
        doc(
            "  networking:\n    nodeSubnet: 172.30.0.0/24\n"
            "    loadBalancerPool: 172.30.0.0/28\n" + NODES
        ),
        8,
        "spec.networking.loadBalancerPool",
        "contains the gateway address 172.30.0.1",
        id="pool-has-gateway",
    ),
    pytest.param(
        doc("  networking:\n    loadBalancerPool: 172.30.0.0/28\n" + NODES),
        7,
        "spec.networking.loadBalancerPool",
        "needs an explicit nodeSubnet",
        id="pool-without-node-subnet",
    ),
    pytest.param(
        doc("  networking:\n    mtu: 100\n" + NODES),
        7,
        "spec.networking.mtu",
        "expected 1280..9000",
        id="mtu-range",
    ),
    pytest.param(
        doc("  networking:\n    mtu: '1500'\n" + NODES),
        7,
        "spec.networking.mtu",
        "expected an integer",
        id="mtu-string",
    ),
    pytest.param(
        doc("  networking:\n    mtu: " + "9" * 400 + "\n" + NODES),
        7,
        "spec.networking.mtu",
        "expected 1280..9000",
        id="mtu-huge-int",
    ),
    pytest.param(
        doc("  networking:\n    dnsUpstream: 8.8.8\n" + NODES),
        7,
        "spec.networking.dnsUpstream",
        "is not a valid IPv4 address",
        id="bad-dns-upstream",
    ),
    pytest.param(
        doc("  networking:\n    dnsDomain: Cluster..local\n" + NODES),
        7,
        "spec.networking.dnsDomain",
        "is not a valid DNS domain",
        id="bad-dns-domain",
    ),
    pytest.param(
        doc("  networking:\n    cni:\n      type: custom\n" + NODES),
        7,
        "spec.networking.cni.conflist",
        "required when type is custom",
        id="custom-cni-needs-conflist",
    ),
    pytest.param(
        doc(
            "  networking:\n    cni:\n      type: custom\n      conflist: cni/10-test.conflist\n"
            + NODES
        ),
        7,
        "spec.networking.cni.binDir",
        "required when type is custom",
        id="custom-cni-needs-bin-dir",
    ),
    pytest.param(
        doc("  networking:\n    cni:\n      conflist: x.conflist\n" + NODES),
        8,
        "spec.networking.cni.conflist",
        "only allowed when type is custom",
        id="conflist-without-custom",
    ),
    pytest.param(
        doc("  networking:\n    cni:\n      type: calico\n" + NODES),
        8,
        "spec.networking.cni.type",
        '"calico" is not a CNI type; expected one of testbed, custom',
        id="bad-cni-type",
    ),
    pytest.param(
        doc(
            "  networking:\n    cni:\n      type: custom\n      conflist: manifests/single.yaml\n"
            "      binDir: cni/bin\n" + NODES
        ),
        9,
        "spec.networking.cni.conflist",
        "not valid JSON",
        id="conflist-not-json",
    ),
    pytest.param(
        doc(
            "  networking:\n    cni:\n      type: custom\n      conflist: cni/10-test.conflist\n"
            "      binDir: cni/10-test.conflist\n" + NODES
        ),
        10,
        "spec.networking.cni.binDir",
        "not a directory",
        id="bin-dir-not-dir",
    ),
    pytest.param(
        doc("  networking: [1, 2]\n" + NODES),
        6,
        "spec.networking",
        "expected a mapping, got a list",
        id="networking-not-mapping",
    ),
    pytest.param(
        doc("  nodes: {name: cp}\n"),
        6,
        "spec.nodes",
        "expected a list",
        id="nodes-not-list",
    ),
]


@pytest.mark.parametrize(("text", "line", "field", "message"), CASES)
def test_rejected(text: str, line: int, field: str, message: str) -> None:
    problems = problems_of(text)
    where = f"t.yaml:{line}: {field}: " if field else f"t.yaml:{line}: "
    matching = [p for p in problems if p.startswith(where) and message in p]
    assert matching, f"expected {where!r}...{message!r} in:\n" + "\n".join(problems)
