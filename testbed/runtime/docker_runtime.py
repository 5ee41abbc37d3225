"""The Docker implementation of the runtime seam: the only module that imports `docker`."""

from __future__ import annotations

import contextlib
import io
import socket
import tarfile
from concurrent.futures import ThreadPoolExecutor

import docker
import docker.errors
from docker.utils.socket import consume_socket_output, frames_iter

from testbed.runtime import hostfw
from testbed.runtime.base import (
    ContainerInfo,
    ContainerSpec,
    ExecResult,
    NetworkInfo,
    NetworkSpec,
    RuntimeFailure,
)


def _label_filter(labels: dict[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in labels.items()]


class DockerRuntime:
    """Runtime backed by the local Docker engine (docker SDK)."""

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        try:
            self.client = client or docker.from_env(timeout=120)
            self.client.ping()
        except docker.errors.DockerException as exc:
            raise RuntimeFailure(
                f"cannot reach the Docker engine ({exc}); run `make testbed` to install/start it"
            ) from exc
        self.api = self.client.api

    # -- networks and volumes -------------------------------------------------
    def create_network(self, spec: NetworkSpec) -> NetworkInfo:
        """Create an internal bridge network with a fixed subnet and gateway."""
        pool = docker.types.IPAMPool(
            subnet=spec.subnet, gateway=spec.gateway, iprange=spec.ip_range
        )
        try:
            net = self.client.networks.create(
                spec.name,
                driver="bridge",
                internal=spec.internal,
                ipam=docker.types.IPAMConfig(pool_configs=[pool]),
                labels=spec.labels,
                options={"com.docker.network.driver.mtu": str(spec.mtu)},
                check_duplicate=True,
            )
        except docker.errors.APIError as exc:
            raise RuntimeFailure(f"creating network {spec.name}: {exc.explanation}") from exc
        return self._network_info(self.api.inspect_network(net.id))

    def create_volume(self, name: str, labels: dict[str, str]) -> None:
        self.client.volumes.create(name=name, labels=labels)

    def networks(self, labels: dict[str, str] | None = None) -> list[NetworkInfo]:
        filters = {"label": _label_filter(labels)} if labels else None
        return [self._network_info(self.api.inspect_network(n["Id"]))
                for n in self.api.networks(filters=filters)]

    @staticmethod
    def _network_info(attrs: dict) -> NetworkInfo:
        configs = (attrs.get("IPAM") or {}).get("Config") or []
        subnet = configs[0].get("Subnet") if configs else None
        bridge = (attrs.get("Options") or {}).get(
            "com.docker.network.bridge.name", "br-" + attrs["Id"][:12]
        )
        if attrs.get("Name") in ("bridge",):
            bridge = "docker0"
        return NetworkInfo(attrs["Id"], attrs["Name"], subnet, bridge, attrs.get("Labels") or {})

    # -- containers ------------------------------------------------------------
    def run_container(self, spec: ContainerSpec) -> ContainerInfo:
        """Create and start a container attached to its network at a fixed address."""
        host_config = self.api.create_host_config(
            cap_add=list(spec.cap_add),
            cap_drop=list(spec.cap_drop),
            security_opt=list(spec.security_opt),
            binds=[f"{v}:{p}" for v, p in spec.volumes.items()]
            + [f"{h}:{c}:ro" for h, c in spec.binds.items()],
            tmpfs=spec.tmpfs or None,
            sysctls=spec.sysctls or None,
            network_mode=spec.network,
            cgroupns=spec.cgroupns,
            init=False,
        )
        networking = self.api.create_networking_config(
            {spec.network: self.api.create_endpoint_config(ipv4_address=spec.ipv4_address)}
        )
        try:
            created = self.api.create_container(
                spec.image,
                name=spec.name,
                hostname=spec.hostname,
                entrypoint=spec.entrypoint,
                labels=spec.labels,
                environment=spec.environment,
                host_config=host_config,
                networking_config=networking,
                detach=True,
            )
            self.api.start(created["Id"])
        except docker.errors.APIError as exc:
            raise RuntimeFailure(f"starting container {spec.name}: {exc.explanation}") from exc
        return ContainerInfo(created["Id"], spec.name, "running", spec.labels, spec.ipv4_address)

    def containers(self, labels: dict[str, str]) -> list[ContainerInfo]:
        out = []
        for c in self.api.containers(all=True, filters={"label": _label_filter(labels)}):
            nets = (c.get("NetworkSettings") or {}).get("Networks") or {}
            ip = next((n.get("IPAddress") for n in nets.values() if n.get("IPAddress")), None)
            name = c["Names"][0].lstrip("/") if c.get("Names") else c["Id"][:12]
            out.append(ContainerInfo(c["Id"], name, c["State"], c.get("Labels") or {}, ip))
        return sorted(out, key=lambda c: c.name)

    def exec(
        self, container: str, command: list[str], stdin: bytes | None = None,
        environment: dict[str, str] | None = None,
    ) -> ExecResult:
        """Run a command in a container; stdin (if given) is written then closed."""
        try:
            ex = self.api.exec_create(
                container, command, stdin=stdin is not None, environment=environment
            )
            if stdin is None:
                out = self.api.exec_start(ex["Id"], demux=True)
                stdout, stderr = out if isinstance(out, tuple) else (out, b"")
            else:
                sock = self.api.exec_start(ex["Id"], socket=True)
                raw = getattr(sock, "_sock", sock)
                raw.sendall(stdin)
                raw.shutdown(socket.SHUT_WR)
                stdout, stderr = consume_socket_output(frames_iter(sock, tty=False), demux=True)
                sock.close()
            rc = self.api.exec_inspect(ex["Id"])["ExitCode"]
        except docker.errors.APIError as exc:
            raise RuntimeFailure(f"exec in {container}: {exc.explanation}") from exc
        return ExecResult(
            tuple(command), rc if rc is not None else -1,
            (stdout or b"").decode(errors="replace"), (stderr or b"").decode(errors="replace"),
        )

    def disconnect(self, container: str, network: str) -> None:
        """Take a container off a network (its eth0 goes away)."""
        self.api.disconnect_container_from_network(container, network, force=True)

    def connect(self, container: str, network: str, ipv4_address: str) -> None:
        self.api.connect_container_to_network(container, network, ipv4_address=ipv4_address)

    def pause(self, container: str) -> None:
        """Freeze every process of a container (the node "goes away" but keeps its state)."""
        self.api.pause(container)

    def unpause(self, container: str) -> None:
        self.api.unpause(container)

    def logs(self, container: str) -> str:
        return self.api.logs(container, stdout=True, stderr=True).decode(errors="replace")

    def copy_from(self, container: str, path: str) -> bytes:
        """Return a tar archive of `path` inside the container."""
        stream, _ = self.api.get_archive(container, path)
        return b"".join(stream)

    def read_file(self, container: str, path: str) -> bytes:
        """Read one regular file out of a container."""
        with tarfile.open(fileobj=io.BytesIO(self.copy_from(container, path))) as tar:
            member = tar.next()
            f = tar.extractfile(member) if member else None
            return f.read() if f else b""

    # -- removal -----------------------------------------------------------------
    def remove_containers(self, labels: dict[str, str]) -> int:
        found = self.api.containers(all=True, filters={"label": _label_filter(labels)})

        def rm(cid: str) -> None:
            with contextlib.suppress(docker.errors.NotFound):
                self.api.remove_container(cid, force=True, v=True)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(rm, [c["Id"] for c in found]))
        return len(found)

    def remove_networks(self, labels: dict[str, str]) -> int:
        found = self.api.networks(filters={"label": _label_filter(labels)})
        for n in found:
            with contextlib.suppress(docker.errors.NotFound):
                self.api.remove_network(n["Id"])
        return len(found)

    def volumes(self, labels: dict[str, str]) -> list[str]:
        vols = self.api.volumes(filters={"label": _label_filter(labels)}).get("Volumes") or []
        return sorted(v["Name"] for v in vols)

    def remove_volumes(self, labels: dict[str, str]) -> int:
        names = self.volumes(labels)
        for name in names:
            with contextlib.suppress(docker.errors.NotFound):
                self.api.remove_volume(name, force=True)
        return len(names)

    # -- host firewall ---------------------------------------------------------------
    def allow_bridge_traffic(self, bridge: str, testbed: str) -> None:
        """Let pod traffic cross the testbed's own bridge (see hostfw)."""
        hostfw.add_bridge_rule(bridge, testbed)

    def remove_host_rules(self, testbed: str) -> int:
        return hostfw.remove_rules(testbed)

    # -- images ----------------------------------------------------------------------
    def image_exists(self, tag: str) -> bool:
        try:
            self.api.inspect_image(tag)
            return True
        except docker.errors.ImageNotFound:
            return False

    def pull(self, repository: str, tag: str) -> bool:
        """Try to pull an image; False (not an exception) when no registry answers."""
        try:
            self.api.pull(repository, tag=tag)
            return True
        except docker.errors.APIError:
            return False

    def tag(self, source: str, repository: str, tag: str) -> None:
        self.api.tag(source, repository, tag)

    def import_image(self, tar_path: str, repository: str, tag: str) -> None:
        """`docker import` of a root filesystem tarball."""
        self.api.import_image_from_file(tar_path, repository=repository, tag=tag)

    def build(self, context: str, tag: str, buildargs: dict[str, str], log) -> None:
        """Build an image from a context directory, streaming log lines to `log`."""
        for chunk in self.api.build(
            path=context, tag=tag, buildargs=buildargs, rm=True, forcerm=True, decode=True,
            labels={"testbed.image": "node"},
        ):
            if "stream" in chunk:
                log(chunk["stream"].rstrip("\n"))
            if "error" in chunk:
                raise RuntimeFailure(f"image build {tag} failed: {chunk['error'].strip()}")
