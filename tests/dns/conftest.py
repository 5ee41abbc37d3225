"""Fixtures for the DNS tests: a MemoryStore with a few services and running servers."""

from __future__ import annotations

import pytest

from testbed.store.memory import MemoryStore

from .helpers import Harness, endpoint, endpoint_slice, put, service


@pytest.fixture
def store():
    """A MemoryStore with a ClusterIP, a headless and an ExternalName service."""
    s = MemoryStore()
    put(s, service("kubernetes", cluster_ip="10.96.0.1",
                   ports=[{"name": "https", "protocol": "TCP", "port": 443}]))
    put(s, service("web", cluster_ip="None",
                   ports=[{"name": "http", "protocol": "TCP", "port": 80}]))
    put(s, endpoint_slice("web", [endpoint("10.244.1.5", hostname="web-0"),
                                  endpoint("10.244.2.6")],
                          ports=[{"name": "http", "protocol": "TCP", "port": 8080}]))
    put(s, service("ext", cluster_ip=None, type="ExternalName",
                   externalName="alias.example.test"))
    yield s
    s.close()


@pytest.fixture
def harness(store):
    """DNS server on the store, forwarding to the test upstream; both on free ports."""
    h = Harness(store)
    h.wait_ready()
    yield h
    h.close()
