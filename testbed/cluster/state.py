"""Finding running testbeds from Docker labels: there is no state file to go stale."""

from __future__ import annotations

from dataclasses import dataclass

from testbed.runtime.args import ROLE_CONTROL_PLANE, ROLE_EXTERNAL, ROLE_NETWORK
from testbed.runtime.base import (
    LABEL_MODE,
    LABEL_NAME,
    LABEL_NODE,
    LABEL_ROLE,
    LABEL_TOPOLOGY_HASH,
    ContainerInfo,
    NetworkInfo,
)


class NotFound(Exception):
    """No testbed with that name is running."""


@dataclass(frozen=True)
class TestbedRef:
    """A testbed as Docker sees it: its network and containers."""

    name: str
    network: NetworkInfo | None
    containers: list[ContainerInfo]

    __test__ = False  # not a pytest test class

    @property
    def topology_hash(self) -> str | None:
        return self.network.labels.get(LABEL_TOPOLOGY_HASH) if self.network else None

    @property
    def mode(self) -> str | None:
        return self.network.labels.get(LABEL_MODE) if self.network else None

    @property
    def control_plane(self) -> ContainerInfo:
        for c in self.containers:
            if c.labels.get(LABEL_ROLE) == ROLE_CONTROL_PLANE:
                return c
        raise NotFound(f"testbed {self.name!r} has no control-plane container")

    def node(self, name: str) -> ContainerInfo:
        """The container of a cluster node (not an external host) by node name."""
        for c in self.containers:
            if c.labels.get(LABEL_NODE) == name and c.labels.get(LABEL_ROLE) != ROLE_EXTERNAL:
                return c
        known = ", ".join(self.node_names()) or "none"
        raise NotFound(f"testbed {self.name!r} has no node {name!r} (nodes: {known})")

    def host(self, name: str) -> ContainerInfo:
        for c in self.containers:
            if c.labels.get(LABEL_NODE) == name and c.labels.get(LABEL_ROLE) == ROLE_EXTERNAL:
                return c
        raise NotFound(f"testbed {self.name!r} has no external host {name!r}")

    def node_names(self) -> list[str]:
        return [c.labels[LABEL_NODE] for c in self.containers
                if c.labels.get(LABEL_ROLE) != ROLE_EXTERNAL and LABEL_NODE in c.labels]

    @property
    def healthy(self) -> bool:
        return self.network is not None and bool(self.containers) and all(
            c.status == "running" for c in self.containers
        )


def testbed_names(runtime) -> list[str]:
    """Every testbed name with any labelled object left (network, container or volume)."""
    names = {n.labels[LABEL_NAME] for n in runtime.networks({LABEL_ROLE: ROLE_NETWORK})
             if LABEL_NAME in n.labels}
    for c in runtime.containers({}):
        if LABEL_NAME in c.labels:
            names.add(c.labels[LABEL_NAME])
    return sorted(names)


def find_testbed(runtime, name: str) -> TestbedRef | None:
    nets = runtime.networks({LABEL_NAME: name, LABEL_ROLE: ROLE_NETWORK})
    containers = runtime.containers({LABEL_NAME: name})
    if not nets and not containers:
        return None
    return TestbedRef(name, nets[0] if nets else None, containers)


def require_testbed(runtime, name: str) -> TestbedRef:
    ref = find_testbed(runtime, name)
    if ref is None:
        running = ", ".join(testbed_names(runtime)) or "none"
        raise NotFound(f"no testbed named {name!r} is running (running: {running})")
    return ref
