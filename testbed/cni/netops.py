"""Thin network operations: pure builders of ``ip -batch`` commands plus one executor.

Builders return lists of commands (each a list of tokens, as one ``ip -batch`` line);
:func:`run_batch` is the single place where processes are spawned. Spawning uses
``os.posix_spawn`` rather than :mod:`subprocess` to keep plugin start-up cheap.
Host-side reads (link existence, MACs, bridge membership) go through ``/sys``.
"""

from __future__ import annotations

import os
import zlib

from testbed.cni.errors import INTERNAL, CniError

SYS_NET = "/sys/class/net"
IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"
NETNS_DIRS = ("/run/netns", "/var/run/netns")
_SBIN = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")


class NetOpsError(CniError):
    """An ``ip`` batch failed; ``details`` carries its stderr."""

    def __init__(self, what: str, stderr: str, status: int) -> None:
        super().__init__(INTERNAL, f"{what} failed (exit {status})", stderr.strip())
        self.status = status


def host_veth_name(container_id: str, ifname: str) -> str:
    """Stable host-side veth name: ``veth`` + 8 hex chars of crc32(containerID:ifname)."""
    return f"veth{zlib.crc32(f'{container_id}:{ifname}'.encode()):08x}"


# --- pure command builders -------------------------------------------------------------


def bridge_create_cmds(bridge: str, mtu: int, mac: str) -> list[list[str]]:
    """Create the bridge with a fixed MAC (so it never follows its ports' MACs)."""
    return [["link", "add", "name", bridge, "address", mac, "mtu", str(mtu), "type", "bridge"]]


def bridge_ensure_cmds(bridge: str, mtu: int, gateway_cidr: str | None) -> list[list[str]]:
    """Idempotently bring the bridge up with ``mtu`` and (if gateway) the gateway address."""
    cmds = [["link", "set", "dev", bridge, "mtu", str(mtu), "up"]]
    if gateway_cidr:
        cmds.append(["addr", "replace", gateway_cidr, "dev", bridge])
    return cmds


def veth_cmds(
    host_if: str, ifname: str, mtu: int, container_mac: str, netns: str, bridge: str, hairpin: bool
) -> list[list[str]]:
    """Create the veth pair (peer straight into ``netns``) and enslave the host end."""
    cmds = [
        [
            "link",
            "add",
            "name",
            host_if,
            "mtu",
            str(mtu),
            "type",
            "veth",
            "peer",
            "name",
            ifname,
            "mtu",
            str(mtu),
            "address",
            container_mac,
            "netns",
            netns,
        ],
        ["link", "set", "dev", host_if, "master", bridge, "up"],
    ]
    if hairpin:
        cmds.append(["link", "set", "dev", host_if, "type", "bridge_slave", "hairpin", "on"])
    return cmds


def container_cmds(
    ifname: str, address_cidr: str, routes: list[tuple[str, str]]
) -> list[list[str]]:
    """Inside the netns: ``lo`` up, address, interface up, ``(dst, via)`` routes."""
    cmds = [
        ["link", "set", "dev", "lo", "up"],
        ["addr", "add", address_cidr, "dev", ifname],
        ["link", "set", "dev", ifname, "up"],
    ]
    for dst, via in routes:
        cmds.append(["route", "replace", dst, "via", via, "dev", ifname])
    return cmds


def check_cmds(ifname: str) -> list[list[str]]:
    """Inside the netns (with ``-j``): the interface's addresses and routes."""
    return [["addr", "show", "dev", ifname], ["route", "show", "dev", ifname]]


def delete_cmds(links: list[str]) -> list[list[str]]:
    """Delete links (deleting a host veth also removes its peer)."""
    return [["link", "del", "dev", name] for name in links]


def batch_text(cmds: list[list[str]]) -> str:
    """Render commands as ``ip -batch`` input (quoting tokens with blanks)."""

    def tok(t: str) -> str:
        if any(c.isspace() or c in '"\\#' for c in t):
            return '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return t

    return "".join(" ".join(tok(t) for t in cmd) + "\n" for cmd in cmds)


def netns_name(netns_path: str) -> str | None:
    """If ``netns_path`` is a named netns (``/run/netns/X``), return ``X`` for ``ip -n``."""
    head, name = os.path.split(netns_path)
    if name and os.path.realpath(head) in NETNS_DIRS:
        return name
    return None


def ip_argv(
    ip: str,
    netns_path: str | None = None,
    json: bool = False,
    nsenter: str = "nsenter",
    force: bool = False,
) -> list[str]:
    """argv for ``ip -batch -``, optionally inside a netns (``-n`` or via ``nsenter``).

    ``force`` keeps going after a failing line (exit status still reports the failure).
    """
    opts = (["-j"] if json else []) + (["-force"] if force else [])
    tail = [*opts, "-batch", "-"]
    if not netns_path:
        return [ip, *tail]
    name = netns_name(netns_path)
    if name is not None:
        return [ip, "-n", name, *tail]
    return [nsenter, f"--net={netns_path}", ip, *tail]


# --- execution ---------------------------------------------------------------------------


def which(tool: str) -> str:
    """Locate a tool on PATH or in the usual sbin directories."""
    dirs = os.environ.get("PATH", "").split(":") + list(_SBIN)
    for d in dirs:
        path = os.path.join(d or ".", tool)
        if os.access(path, os.X_OK):
            return path
    raise CniError(INTERNAL, f"{tool} not found in PATH or {':'.join(_SBIN)}")


class Spawned:
    """A started child whose stdin is still open (see :func:`start`)."""

    def __init__(self, argv: list[str]) -> None:
        in_r, self.stdin = os.pipe()
        self.out, out_w = os.pipe()
        self.err, err_w = os.pipe()
        try:
            self.pid = os.posix_spawn(
                argv[0],
                argv,
                os.environ,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, in_r, 0),
                    (os.POSIX_SPAWN_DUP2, out_w, 1),
                    (os.POSIX_SPAWN_DUP2, err_w, 2),
                ],
            )
        finally:
            for fd in (in_r, out_w, err_w):
                os.close(fd)

    def finish(self, stdin: str = "") -> tuple[int, str, str]:
        """Feed ``stdin`` (must fit a 64 KiB pipe buffer), collect output, reap."""
        import select

        try:
            if stdin:
                os.write(self.stdin, stdin.encode())
        except BrokenPipeError:
            pass
        finally:
            os.close(self.stdin)
        chunks: dict[int, list[bytes]] = {self.out: [], self.err: []}
        poller = select.poll()
        for fd in chunks:
            poller.register(fd, select.POLLIN)
        remaining = 2
        while remaining:
            for fd, _ in poller.poll():
                data = os.read(fd, 65536)
                if data:
                    chunks[fd].append(data)
                else:
                    poller.unregister(fd)
                    remaining -= 1
        os.close(self.out)
        os.close(self.err)
        _, status = os.waitpid(self.pid, 0)
        return (
            os.waitstatus_to_exitcode(status),
            b"".join(chunks[self.out]).decode(),
            b"".join(chunks[self.err]).decode("utf-8", "replace"),
        )


def spawn(argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    """Run ``argv`` feeding ``stdin``; return ``(exit status, stdout, stderr)``."""
    return Spawned(argv).finish(stdin)


class Batch:
    """An ``ip -batch -`` process started ahead of time: exec/startup cost overlaps
    with earlier work; commands are sent by :meth:`run` (an empty run just ends it)."""

    def __init__(
        self, netns_path: str | None = None, json: bool = False, force: bool = False
    ) -> None:
        argv = ip_argv(which("ip"), netns_path, json, "nsenter", force)
        if argv[0] == "nsenter":
            argv[0] = which("nsenter")
        self._proc = Spawned(argv)

    def run(self, cmds: list[list[str]], what: str = "ip batch") -> str:
        """Send the commands, wait; raise :class:`NetOpsError` on failure."""
        status, out, err = self._proc.finish(batch_text(cmds))
        if status != 0:
            raise NetOpsError(what, err or out, status)
        return out


def run_batch(
    cmds: list[list[str]],
    netns_path: str | None = None,
    json: bool = False,
    what: str = "ip batch",
    force: bool = False,
) -> str:
    """Execute commands with one ``ip -batch`` process; raise :class:`NetOpsError`."""
    return Batch(netns_path, json, force).run(cmds, what)


# --- host state via /sys and /proc -----------------------------------------------------


def link_exists(name: str) -> bool:
    """Whether a host-netns link exists."""
    return os.path.exists(f"{SYS_NET}/{name}")


def read_mac(name: str) -> str:
    """A host link's MAC address ('' if unknown)."""
    try:
        with open(f"{SYS_NET}/{name}/address") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def link_master(name: str) -> str | None:
    """Name of the link's master (bridge), if any."""
    try:
        return os.path.basename(os.readlink(f"{SYS_NET}/{name}/master"))
    except OSError:
        return None


def bridge_ports(bridge: str) -> list[str]:
    """Links enslaved to ``bridge``."""
    try:
        return sorted(os.listdir(f"{SYS_NET}/{bridge}/brif"))
    except OSError:
        return []


def ensure_ip_forward(path: str | None = None) -> None:
    """Set ``net.ipv4.ip_forward=1`` unless already on."""
    with open(path or IP_FORWARD, "r+") as fh:
        if fh.read().strip() != "1":
            fh.seek(0)
            fh.write("1")
