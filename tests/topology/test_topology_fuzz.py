"""Fuzzing: no input makes loading fail with anything but TopologyError."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testbed.topology import LoadedTopology, TopologyError, load_topology, load_topology_text
from testbed.topology.loader import INTERNAL_ERROR

from .helpers import FIXTURES

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FIELD_NAMES = [
    "apiVersion", "kind", "metadata", "name", "spec", "networking", "nodes", "externalHosts",
    "manifests", "nodeSubnet", "podSubnet", "serviceSubnet", "kubeProxyMode", "routing",
    "podNetwork", "dnsDomain", "mtu", "loadBalancerPool", "dnsUpstream", "cni", "type",
    "conflist", "binDir", "role", "labels", "items", "image", "extraMounts", "ipFamily",
]  # fmt: skip
VALUES = [
    "testbed.dev/v1alpha1", "Topology", "Cluster", "kind.x-k8s.io/v1alpha4", "List",
    "control-plane", "worker", "iptables", "ipvs", "none", "vxlan", "flat", "custom",
    "10.244.0.0/16", "10.96.0.0/16", "172.30.0.0/24", "172.30.0.240/28", "10.0.0.1/8",
    "manifests/single.yaml", "manifests/broken.yaml", "cni/bin", "cni/10-test.conflist",
    "ipv6", "cp", "worker1", "", "a" * 70,
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**80), max_value=10**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(VALUES),
    st.text(max_size=20),
)
keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=10))
nested = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=25,
)


def node_like() -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {},
        optional={
            "name": st.one_of(st.sampled_from(VALUES), nested),
            "role": st.one_of(st.sampled_from(["control-plane", "worker", "master"]), nested),
            "labels": st.one_of(st.dictionaries(keys, st.one_of(scalars, nested), max_size=3)),
        },
    )


networking = st.fixed_dictionaries(
    {},
    optional={
        key: st.one_of(st.sampled_from(VALUES), scalars, nested)
        for key in [
            "nodeSubnet",
            "podSubnet",
            "serviceSubnet",
            "kubeProxyMode",
            "routing",
            "podNetwork",
            "dnsDomain",
            "mtu",
            "loadBalancerPool",
            "dnsUpstream",
            "cni",
            "ipFamily",
            "disableDefaultCNI",
        ]
    },  # fmt: skip
)
topology_like = st.fixed_dictionaries(
    {},
    optional={
        "apiVersion": st.sampled_from(["testbed.dev/v1alpha1", "kind.x-k8s.io/v1alpha4", "x"]),
        "kind": st.sampled_from(["Topology", "Cluster", "Other"]),
        "name": nested,
        "metadata": st.one_of(st.fixed_dictionaries({"name": scalars}), nested),
        "networking": networking,
        "nodes": st.lists(st.one_of(node_like(), nested), max_size=5),
        "spec": st.fixed_dictionaries(
            {},
            optional={
                "networking": st.one_of(networking, nested),
                "nodes": st.one_of(st.lists(st.one_of(node_like(), nested), max_size=5), nested),
                "externalHosts": st.lists(st.one_of(node_like(), nested), max_size=3),
                "manifests": st.lists(
                    st.one_of(st.sampled_from(VALUES), nested, st.text(max_size=15)), max_size=3
                ),
            },
        ),
    },
)


def check(text: str) -> None:
    try:
        result = load_topology_text(text, "fuzz.yaml", base_dir=FIXTURES)
    except TopologyError as err:
        assert err.problems
        for problem in err.problems:
            line = str(problem)
            assert "\n" not in line and "\r" not in line
            assert INTERNAL_ERROR not in line, line
            assert problem.line is None or problem.line >= 1
    else:
        assert isinstance(result, LoadedTopology)


def dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


@FUZZ
@given(st.text())
def test_arbitrary_text(text: str) -> None:
    check(text)


@FUZZ
@given(nested)
def test_arbitrary_nested_data(data: Any) -> None:
    check(dump(data))


@FUZZ
@given(topology_like)
def test_topology_shaped_data(data: Any) -> None:
    check(dump(data))


@FUZZ
@given(st.text(alphabet="{}[]:-,&*!|>'\"#%@`?\n abc0123456789.\t", max_size=80))
def test_yaml_punctuation(text: str) -> None:
    check(text)


_TMP = Path(tempfile.mkdtemp(prefix="topology-fuzz-"))


@FUZZ
@given(st.binary(max_size=200))
def test_arbitrary_bytes_file(data: bytes) -> None:
    path = _TMP / "fuzz.yaml"
    path.write_bytes(data)
    try:
        load_topology(path)
    except TopologyError as err:
        assert all(INTERNAL_ERROR not in str(p) for p in err.problems), str(err)
