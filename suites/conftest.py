"""Shared helpers for conformance suites (mode-agnostic: they only use the Cluster handle)."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture(scope="module")
def module_namespace(cluster):
    """One namespace for a whole suite module (pods are slow to make, tests are not)."""
    name = f"s-{uuid.uuid4().hex[:8]}"
    cluster.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}])
    yield name
    pods = cluster.pods(name)
    cluster.delete([{"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": p.name, "namespace": name}} for p in pods])
    cluster.delete([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}])
