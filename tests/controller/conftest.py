"""Fixtures for the controller tests: a MemoryStore holding a cluster config."""

from __future__ import annotations

import pytest

from testbed.store.memory import MemoryStore

from .helpers import FakeAgents, make_config, setup_store


@pytest.fixture
def config() -> dict:
    """Control plane plus two workers (worker1 zone=a, worker2 zone=b)."""
    return make_config(2, {"worker1": {"zone": "a"}, "worker2": {"zone": "b"}})


@pytest.fixture
def store(config):
    """A MemoryStore with ``config`` written at the config key."""
    s = MemoryStore()
    setup_store(s, config)
    yield s
    s.close()


@pytest.fixture
def agents(store, config) -> FakeAgents:
    """Fake node agents for ``store``."""
    return FakeAgents(store, config)
