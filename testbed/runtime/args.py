"""Pure builders of Docker object specs for a testbed (names, labels, node containers)."""

from __future__ import annotations

from testbed.runtime.base import (
    LABEL_MODE,
    LABEL_NAME,
    LABEL_NODE,
    LABEL_ROLE,
    LABEL_TOPOLOGY_HASH,
    ContainerSpec,
    NetworkSpec,
)

STORE_PORT = 2379
ROLE_CONTROL_PLANE = "control-plane"
ROLE_WORKER = "worker"
ROLE_EXTERNAL = "external-host"
ROLE_NETWORK = "network"
ROLE_STORE_VOLUME = "store"
# Sysctls Docker applies at creation: /proc/sys is read-only inside a non-privileged container.
NODE_SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
    "net.ipv4.conf.all.forwarding": "1",
}


def network_name(testbed: str) -> str:
    return f"testbed-{testbed}"


def container_name(testbed: str, node: str) -> str:
    """Docker name of a node: `<testbed>-<node>`, like kind's `<cluster>-control-plane`."""
    return f"{testbed}-{node}"


def store_volume_name(testbed: str) -> str:
    return f"testbed-{testbed}-etcd"


def labels(testbed: str, role: str, node: str | None = None) -> dict[str, str]:
    """Labels every Docker object of a testbed carries; cleanup finds objects by them."""
    out = {LABEL_NAME: testbed, LABEL_ROLE: role}
    if node:
        out[LABEL_NODE] = node
    return out


def network_spec(
    testbed: str, subnet: str, gateway: str, ip_range: str | None, mtu: int,
    topology_hash: str, mode: str,
) -> NetworkSpec:
    """The testbed's node network: an internal bridge, so no traffic can leave the host."""
    lab = labels(testbed, ROLE_NETWORK) | {LABEL_TOPOLOGY_HASH: topology_hash, LABEL_MODE: mode}
    return NetworkSpec(
        name=network_name(testbed), subnet=subnet, gateway=gateway, ip_range=ip_range,
        labels=lab, mtu=mtu, internal=True,
    )


def node_container_spec(
    testbed: str, node: str, role: str, image: str, ip: str, store_ip: str,
    binds: dict[str, str] | None = None,
) -> ContainerSpec:
    """A node (or external host) container; PID 1 is the testbed supervisor."""
    volumes = {}
    if role == ROLE_CONTROL_PLANE:
        volumes[store_volume_name(testbed)] = "/var/lib/etcd"
    env = {
        "TESTBED_NAME": testbed,
        "TESTBED_NODE": node,
        "TESTBED_ROLE": role,
        "TESTBED_NODE_IP": ip,
        "TESTBED_STORE": f"{store_ip}:{STORE_PORT}",
    }
    return ContainerSpec(
        name=container_name(testbed, node),
        image=image,
        hostname=node,
        network=network_name(testbed),
        ipv4_address=ip,
        labels=labels(testbed, role, node),
        environment=env,
        volumes=volumes,
        binds=dict(binds or {}),
        tmpfs={"/run": "rw,exec,mode=755", "/tmp": "rw,exec,mode=1777"},
        sysctls=dict(NODE_SYSCTLS),
    )
