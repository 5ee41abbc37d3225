"""Rejected topologies: every problem names file, line, field and expectation."""

from __future__ import annotations


from pathlib import Path

import pytest

from .helpers import FIXTURES, problems_of

HEAD = """\
apiVersion: testbed.dev/v1alpha1
kind: Topology
metadata:
  name: t
spec:
"""
# Line numbers below count from the top of HEAD + body (body starts on line 6).
NODES = """\
  nodes:
    - name: cp
      role: control-plane
    - name: worker1
"""


def doc(body: str) -> str:
    return HEAD + body


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
    pytest.param(
        doc(NODES).replace("kind: Topology", "kind: Topo"),
        2,
        "kind",
        '"Topo" is not a supported kind; expected one of Topology',
        id="bad-kind",
    ),
    pytest.param(
        doc(NODES).replace("testbed.dev/v1alpha1", "testbed.dev/v2"),
        1,
        "apiVersion",
        "expected one of testbed.dev/v1alpha1",
        id="bad-api-version",
    ),
    pytest.param(
        doc(NODES + "  manifests:\n    - does/not/exist.yaml\n"),
        11,
        "spec.manifests[0]",
        "does/not/exist.yaml: file not found",
        id="manifest-missing",
    ),
    pytest.param(
        doc(NODES + "  manifests:\n    - manifests\n"),
        11,
        "spec.manifests[0]",
        "not a regular file",
        id="manifest-is-directory",
    ),
    pytest.param(
        doc(NODES + "  manifests:\n    - kind: Namespace\n      metadata: {name: x}\n"),
        11,
        "spec.manifests[0].apiVersion",
        "missing; every Kubernetes object needs kind, apiVersion and metadata.name",
        id="inline-manifest-no-api-version",
    ),
    pytest.param(
        doc(
            NODES + "  manifests:\n    - apiVersion: v1\n      kind: Namespace\n"
            "      metadata:\n        labels: {}\n"
        ),
        13,
        "spec.manifests[0].metadata.name",
        "missing",
        id="inline-manifest-no-name",
    ),
    pytest.param(
        doc(NODES + "  manifests:\n    - 42\n"),
        11,
        "spec.manifests[0]",
        "expected a manifest file path or an inline Kubernetes object, got 42",
        id="manifest-wrong-type",
    ),
    pytest.param(
        doc(NODES + "  manifests:\n    - apiVersion: v1\n      kind: List\n      items: 3\n"),
        13,
        "spec.manifests[0].items",
        "expected a list of Kubernetes objects",
        id="list-items-not-list",
    ),
    pytest.param(
        doc(NODES + "  nodes: []\n"),
        10,
        "spec.nodes",
        "duplicate key (first on line 6)",
        id="duplicate-yaml-key",
    ),
    pytest.param(
        doc(NODES + "    - name: [\n"),
        11,
        "",
        "invalid YAML",
        id="yaml-syntax",
    ),
    pytest.param(
        doc(NODES + "  1: x\n"),
        10,
        "spec",
        'key "1" is not a string; put it in quotes',
        id="non-string-key",
    ),
    pytest.param(
        doc(NODES + "  externalHosts: !custom [a]\n"),
        10,
        "spec.externalHosts",
        "unsupported YAML tag !custom",
        id="custom-tag",
    ),
]


@pytest.mark.parametrize(("text", "line", "field", "message"), CASES)
def test_rejected(text: str, line: int, field: str, message: str) -> None:
    problems = problems_of(text)
    where = f"t.yaml:{line}: {field}: " if field else f"t.yaml:{line}: "
    matching = [p for p in problems if p.startswith(where) and message in p]
    assert matching, f"expected {where!r}...{message!r} in:\n" + "\n".join(problems)


def test_several_problems_reported_at_once() -> None:
    text = doc(
        "  networking:\n    kubeProxyMode: bpf\n    routing: bgp\n"
        "  nodes:\n    - name: BAD\n      role: control-plane\n"
        "  manifests:\n    - nope.yaml\n"
    )
    problems = problems_of(text)
    assert [p.split(": ")[0] for p in problems] == [
        "t.yaml:7",
        "t.yaml:8",
        "t.yaml:10",
        "t.yaml:13",
    ]


def test_manifest_file_problems_name_the_manifest_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES.parent.parent)
    text = (FIXTURES / "bad_manifests.yaml").read_text()
    problems = problems_of(text, "fx/bad.yaml", base_dir=Path("topology/fixtures"))
    assert problems == [
        "fx/bad.yaml:7: spec.manifests[1]: topology/fixtures/manifests/missing.yaml: file not found",
        "fx/bad.yaml:9: spec.manifests[3].apiVersion: missing; every Kubernetes object "
        "needs kind, apiVersion and metadata.name",
        "topology/fixtures/manifests/broken.yaml:7: kind: missing; every Kubernetes object needs kind, "
        "apiVersion and metadata.name",
        "topology/fixtures/manifests/broken.yaml:13: metadata.name: missing; every Kubernetes object needs "
        "kind, apiVersion and metadata.name",
        "topology/fixtures/manifests/unparsable.yaml:5: invalid YAML: expected ',' or ']', but got '<stream end>' "
        "(while parsing a flow sequence on line 4)",
    ]


def test_file_paths_shown_relative_to_topology_file() -> None:
    from testbed.topology import TopologyError, load_topology

    with pytest.raises(TopologyError) as info:
        load_topology(FIXTURES / "bad_manifests.yaml")
    shown = {p.file for p in info.value.problems}
    assert str(FIXTURES / "manifests/broken.yaml") in shown
    assert str(FIXTURES / "bad_manifests.yaml") in shown


def test_bad_syntax_fixture_reports_line() -> None:
    problems = problems_of((FIXTURES / "bad_syntax.yaml").read_text(), "bad_syntax.yaml")
    assert len(problems) == 1
    assert problems[0].startswith("bad_syntax.yaml:6: invalid YAML")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("# just a comment\n", "empty file"),
        ("- a\n- b\n", "not a mapping"),
        ("just a string", "not a mapping"),
        ("\x00\x01", "unacceptable character"),
        ("a: &a [*a]\n", "recursive YAML alias"),
        ("---\nspec: {}\n---\nspec: {}\n", "expected a single document"),
    ],
)
def test_whole_file_problems(text: str, message: str) -> None:
    problems = problems_of(text)
    assert len(problems) == 1 and message in problems[0], problems


def test_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    problems = problems_of("\n".join(lines) + "\n")
    assert problems == ["t.yaml:1: document too large after expanding aliases (over 200000 values)"]


def test_deep_nesting_is_refused() -> None:
    problems = problems_of("spec: " + "[" * 5000 + "]" * 5000 + "\n")
    assert len(problems) == 1
