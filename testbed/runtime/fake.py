"""An in-memory runtime for unit tests: records calls, answers exec from scripted handlers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from testbed.runtime.base import (
    ContainerInfo,
    ContainerSpec,
    ExecResult,
    NetworkInfo,
    NetworkSpec,
    RuntimeFailure,
)

ExecHandler = Callable[[str, list[str]], ExecResult | None]


def _matches(have: dict[str, str], want: dict[str, str]) -> bool:
    return all(have.get(k) == v for k, v in want.items())


@dataclass
class FakeRuntime:
    """Keeps networks, volumes and containers in dicts; exec calls go to `handlers`."""

    networks_: dict[str, NetworkInfo] = field(default_factory=dict)
    volumes_: dict[str, dict[str, str]] = field(default_factory=dict)
    containers_: dict[str, tuple[ContainerSpec, ContainerInfo]] = field(default_factory=dict)
    images: set[str] = field(default_factory=set)
    handlers: list[ExecHandler] = field(default_factory=list)
    calls: list[tuple] = field(default_factory=list)
    fail_on: set[str] = field(default_factory=set)
    host_rules: set[str] = field(default_factory=set)

    def create_network(self, spec: NetworkSpec) -> NetworkInfo:
        self.calls.append(("create_network", spec.name))
        if spec.name in self.networks_:
            raise RuntimeFailure(f"network {spec.name} exists")
        info = NetworkInfo(f"id-{spec.name}", spec.name, spec.subnet, "br-fake", spec.labels)
        self.networks_[spec.name] = info
        return info

    def create_volume(self, name: str, labels: dict[str, str]) -> None:
        self.calls.append(("create_volume", name))
        self.volumes_[name] = labels

    def run_container(self, spec: ContainerSpec) -> ContainerInfo:
        self.calls.append(("run_container", spec.name))
        if spec.name in self.fail_on:
            raise RuntimeFailure(f"starting container {spec.name}: injected failure")
        if spec.network not in self.networks_:
            raise RuntimeFailure(f"network {spec.network} not found")
        info = ContainerInfo(f"id-{spec.name}", spec.name, "running", spec.labels,
                             spec.ipv4_address)
        self.containers_[spec.name] = (spec, info)
        return info

    def exec(self, container, command, stdin=None, environment=None) -> ExecResult:
        self.calls.append(("exec", container, tuple(command)))
        for handler in self.handlers:
            result = handler(container, list(command))
            if result is not None:
                return result
        return ExecResult(tuple(command), 0, "", "")

    def containers(self, labels: dict[str, str]) -> list[ContainerInfo]:
        return sorted(
            (info for _, info in self.containers_.values() if _matches(info.labels, labels)),
            key=lambda c: c.name,
        )

    def networks(self, labels: dict[str, str] | None = None) -> list[NetworkInfo]:
        return [n for n in self.networks_.values() if _matches(n.labels, labels or {})]

    def volumes(self, labels: dict[str, str]) -> list[str]:
        return sorted(n for n, lab in self.volumes_.items() if _matches(lab, labels))

    def remove_containers(self, labels: dict[str, str]) -> int:
        gone = [n for n, (_, i) in self.containers_.items() if _matches(i.labels, labels)]
        for name in gone:
            del self.containers_[name]
        return len(gone)

    def remove_networks(self, labels: dict[str, str]) -> int:
        gone = [n for n, i in self.networks_.items() if _matches(i.labels, labels)]
        for name in gone:
            del self.networks_[name]
        return len(gone)

    def remove_volumes(self, labels: dict[str, str]) -> int:
        gone = self.volumes(labels)
        for name in gone:
            del self.volumes_[name]
        return len(gone)

    def allow_bridge_traffic(self, bridge: str, testbed: str) -> None:
        self.calls.append(("allow_bridge_traffic", bridge, testbed))
        self.host_rules.add(testbed)

    def remove_host_rules(self, testbed: str) -> int:
        found = testbed in self.host_rules
        self.host_rules.discard(testbed)
        return int(found)

    def disconnect(self, container: str, network: str) -> None:
        self.calls.append(("disconnect", container, network))

    def connect(self, container: str, network: str, ipv4_address: str) -> None:
        self.calls.append(("connect", container, network, ipv4_address))

    def pause(self, container: str) -> None:
        self.calls.append(("pause", container))

    def unpause(self, container: str) -> None:
        self.calls.append(("unpause", container))

    def logs(self, container: str) -> str:
        return ""

    def copy_from(self, container: str, path: str) -> bytes:
        return b""

    def image_exists(self, tag: str) -> bool:
        return tag in self.images
