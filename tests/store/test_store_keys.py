"""Tests of the pure key-layout helpers."""

from __future__ import annotations

import pytest

from testbed.store import keys
from testbed.store.keys import UnknownKind


def pod(name: str, namespace: str | None = "web") -> dict:
    meta = {"name": name} if namespace is None else {"name": name, "namespace": namespace}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta}


def test_kinds_table():
    assert keys.KINDS["NetworkPolicy"] == ("networkpolicies", True)
    assert keys.KINDS["Ingress"] == ("ingresses", True)
    assert keys.KINDS["Node"] == ("nodes", False)
    assert keys.KINDS["Namespace"] == ("namespaces", False)
    assert len(keys.KINDS) == 13
    assert keys.resource_for("EndpointSlice") == "endpointslices"
    assert keys.kind_for("statefulsets") == "StatefulSet"


def test_object_key():
    assert keys.object_key(pod("p1")) == "/registry/pods/web/p1"
    assert keys.object_key(pod("p1", None)) == "/registry/pods/default/p1"
    node = {"kind": "Node", "metadata": {"name": "worker-1", "namespace": "ignored"}}
    assert keys.object_key(node) == "/registry/nodes/worker-1"
    ns = {"kind": "Namespace", "metadata": {"name": "web"}}
    assert keys.object_key(ns) == "/registry/namespaces/web"
    with pytest.raises(ValueError, match="metadata.name"):
        keys.object_key({"kind": "Pod", "metadata": {}})
    with pytest.raises(ValueError):
        keys.object_key(pod("a/b"))


def test_unknown_kind_message():
    with pytest.raises(UnknownKind, match="unknown kind 'CronJob'.*known kinds: ConfigMap"):
        keys.object_key({"kind": "CronJob", "metadata": {"name": "x"}})
    with pytest.raises(UnknownKind):
        keys.status_key("Widget", "ns", "x")
    with pytest.raises(UnknownKind):
        keys.prefix("widgets")


def test_status_and_config_keys():
    assert keys.status_key("Pod", "web", "p1") == "/status/pods/web/p1"
    assert keys.status_key("Node", None, "n1") == "/status/nodes/n1"
    assert keys.status_key("pods", None, "p1") == "/status/pods/default/p1"
    assert keys.CONFIG_KEY == "/testbed/config"


def test_prefixes():
    assert keys.prefix("pods") == "/registry/pods/"
    assert keys.prefix("pods", "web") == "/registry/pods/web/"
    assert keys.prefix("Pod", "web") == "/registry/pods/web/"
    assert keys.prefix("nodes") == "/registry/nodes/"
    assert keys.status_prefix("pods", "web") == "/status/pods/web/"
    with pytest.raises(ValueError, match="cluster-scoped"):
        keys.prefix("nodes", "web")
    assert keys.object_key(pod("p1")).startswith(keys.prefix("pods", "web"))
    assert not keys.object_key(pod("p1", "web2")).startswith(keys.prefix("pods", "web"))


@pytest.mark.parametrize(
    "key, parsed",
    [
        ("/registry/pods/web/p1", ("pods", "web", "p1")),
        ("/registry/nodes/n1", ("nodes", None, "n1")),
        ("/status/pods/default/p1", ("pods", "default", "p1")),
        ("/status/nodes/n1", ("nodes", None, "n1")),
    ],
)
def test_parse_key(key, parsed):
    assert keys.parse_key(key) == parsed


@pytest.mark.parametrize(
    "key",
    ["/registry/pods/p1", "/registry/nodes/ns/n1", "/other/pods/a/b", "registry/pods/a/b", "/x"],
)
def test_parse_key_rejects(key):
    with pytest.raises(ValueError):
        keys.parse_key(key)


def test_parse_key_round_trip():
    for obj in [pod("p"), {"kind": "Node", "metadata": {"name": "n"}}]:
        resource, ns, name = keys.parse_key(keys.object_key(obj))
        assert keys.kind_for(resource) == obj["kind"]
        assert name == obj["metadata"]["name"]
