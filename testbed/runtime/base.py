"""Runtime seam: the data types and the interface every container runtime implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

LABEL_NAME = "testbed.name"
LABEL_ROLE = "testbed.role"
LABEL_NODE = "testbed.node"
LABEL_TOPOLOGY_HASH = "testbed.topology-hash"
LABEL_MODE = "testbed.mode"


class RuntimeFailure(Exception):
    """A runtime operation failed; the message says which object and why."""


@dataclass(frozen=True)
class ExecResult:
    """Outcome of one command: exit code, stdout and stderr (text), and the command itself."""

    command: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def check(self) -> ExecResult:
        """Return self, or raise CommandFailed carrying the command and its output."""
        if self.rc != 0:
            raise CommandFailed(self)
        return self


class CommandFailed(Exception):
    """A command exited non-zero; the message carries the command and its output."""

    def __init__(self, result: ExecResult, where: str = "") -> None:
        self.result = result
        cmd = " ".join(result.command)
        place = f" on {where}" if where else ""
        super().__init__(
            f"command failed{place} (rc={result.rc}): {cmd}\n"
            f"stdout: {result.stdout.strip()[-2000:]}\nstderr: {result.stderr.strip()[-2000:]}"
        )


@dataclass(frozen=True)
class NetworkSpec:
    """An internal bridge network for one testbed."""

    name: str
    subnet: str
    gateway: str
    ip_range: str | None
    labels: dict[str, str]
    mtu: int = 1500
    internal: bool = True


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to create one node or external-host container."""

    name: str
    image: str
    hostname: str
    network: str
    ipv4_address: str
    labels: dict[str, str]
    environment: dict[str, str] = field(default_factory=dict)
    cap_add: tuple[str, ...] = ("ALL",)
    cap_drop: tuple[str, ...] = ("SYS_RESOURCE",)
    security_opt: tuple[str, ...] = ("seccomp=unconfined", "apparmor=unconfined")
    volumes: dict[str, str] = field(default_factory=dict)  # volume name -> mount path
    binds: dict[str, str] = field(default_factory=dict)  # host path -> container path (read-only)
    tmpfs: dict[str, str] = field(default_factory=dict)
    sysctls: dict[str, str] = field(default_factory=dict)
    cgroupns: str = "private"
    entrypoint: list[str] | None = None


@dataclass(frozen=True)
class ContainerInfo:
    """What the runtime knows about a running container."""

    id: str
    name: str
    status: str
    labels: dict[str, str]
    ipv4_address: str | None


@dataclass(frozen=True)
class NetworkInfo:
    """What the runtime knows about a testbed network."""

    id: str
    name: str
    subnet: str | None
    bridge: str
    labels: dict[str, str]


class Runtime(Protocol):
    """The only way the rest of the testbed talks to containers."""

    def create_network(self, spec: NetworkSpec) -> NetworkInfo: ...
    def create_volume(self, name: str, labels: dict[str, str]) -> None: ...
    def run_container(self, spec: ContainerSpec) -> ContainerInfo: ...
    def exec(
        self, container: str, command: list[str], stdin: bytes | None = None,
        environment: dict[str, str] | None = None,
    ) -> ExecResult: ...
    def containers(self, labels: dict[str, str]) -> list[ContainerInfo]: ...
    def networks(self, labels: dict[str, str] | None = None) -> list[NetworkInfo]: ...
    def volumes(self, labels: dict[str, str]) -> list[str]: ...
    def remove_containers(self, labels: dict[str, str]) -> int: ...
    def remove_networks(self, labels: dict[str, str]) -> int: ...
    def remove_volumes(self, labels: dict[str, str]) -> int: ...
    def logs(self, container: str) -> str: ...
    def allow_bridge_traffic(self, bridge: str, testbed: str) -> None: ...
    def remove_host_rules(self, testbed: str) -> int: ...
    def image_exists(self, tag: str) -> bool: ...
    def copy_from(self, container: str, path: str) -> bytes: ...
