"""A throw-away one-node "cluster" in network namespaces, for the ``root`` proxy tests.

    ext (172.30.0.9) --- eth0 172.30.0.2 [node netns] vpN 10.244.1.(4N-3)/30 --- podN

Each pod runs a tiny TCP (8080) and UDP (5353) server that answers ``<pod name> <peer ip>``,
so a test sees which endpoint served it and which source address the endpoint saw (that is
how masquerading is checked). Everything lives in namespaces named ``tbpx<pid>-*``; all of
them and every server process (ended by PID) are removed on exit.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from testbed.testing.rootnet import netns_problem

NODE_IP = "172.30.0.2"
EXT_IP = "172.30.0.9"
SERVER = r"""
import socket, sys, threading
name = sys.argv[1]
def tcp():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 8080)); s.listen(64)
    while True:
        c, peer = s.accept(); c.sendall(f"{name} {peer[0]}".encode()); c.close()
def udp():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 5353))
    while True:
        _, peer = u.recvfrom(100); u.sendto(f"{name} {peer[0]}".encode(), peer)
threading.Thread(target=udp, daemon=True).start()
print("ready", flush=True)
tcp()
"""
CLIENT = r"""
import socket, sys
proto, ip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    if proto == "tcp":
        s = socket.create_connection((ip, port), timeout=2); print(s.recv(100).decode())
    else:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(2)
        u.sendto(b"hi", (ip, port)); print(u.recv(100).decode())
except ConnectionRefusedError:
    print("refused")
except OSError as e:
    print("error", type(e).__name__)
"""


def skip_reason() -> str | None:
    """Why the root tests cannot run here (None if they can)."""
    return netns_problem("creates network namespaces and loads iptables/nftables rules",
                         ("ip", "nft", "iptables-restore", "iptables-save"), "tbpx")


def sh(*argv: str, ns: str | None = None, check: bool = True) -> str:
    """Run a command (in netns ``ns``) and return stdout."""
    full = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
    res = subprocess.run(full, capture_output=True, text=True, timeout=60)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(full)}: {res.stderr.strip()}")
    return res.stdout


@dataclass
class Net:
    """Handles to the namespaces of one throw-away node."""

    node: str
    ext: str
    pods: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (netns, ip)
    procs: list[subprocess.Popen] = field(default_factory=list)

    def call(self, src: str, proto: str, ip: str, port: int) -> str:
        """One request from ``src`` (``node``, ``ext`` or a pod name) -> ``name peer``."""
        ns = self.pods[src][0] if src in self.pods else getattr(self, src)
        return sh(sys.executable, "-c", CLIENT, proto, ip, str(port), ns=ns).strip()


@contextlib.contextmanager
def one_node(pods: int = 2) -> Iterator[Net]:
    """Create the namespaces and pod servers; tear everything down afterwards."""
    tag = f"tbpx{os.getpid()}"
    net = Net(node=f"{tag}-node", ext=f"{tag}-ext")
    made: list[str] = []
    try:
        for ns in (net.node, net.ext):
            sh("ip", "netns", "add", ns)
            made.append(ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
        sh("ip", "link", "add", "eth0", "netns", net.node, "type", "veth", "peer", "name",
           "eth0", "netns", net.ext)  # fmt: skip
        sh("ip", "addr", "add", f"{NODE_IP}/24", "dev", "eth0", ns=net.node)
        sh("ip", "addr", "add", f"{EXT_IP}/24", "dev", "eth0", ns=net.ext)
        for ns in (net.node, net.ext):
            sh("ip", "link", "set", "eth0", "up", ns=ns)
        sh("ip", "route", "add", "default", "via", NODE_IP, ns=net.ext)
        # Service IPs must be routable before DNAT (as on any real node), or connect() fails
        # with "network unreachable" before the OUTPUT hook ever sees the packet.
        sh("ip", "route", "add", "default", "via", EXT_IP, ns=net.node)
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=net.node)
        for i in range(1, pods + 1):
            name, ns = f"pod{i}", f"{tag}-pod{i}"
            gw, ip = f"10.244.1.{4 * i - 3}", f"10.244.1.{4 * i - 2}"
            sh("ip", "netns", "add", ns)
            made.append(ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
            sh("ip", "link", "add", f"vp{i}", "netns", net.node, "type", "veth", "peer", "name",
               "eth0", "netns", ns)  # fmt: skip
            sh("ip", "addr", "add", f"{gw}/30", "dev", f"vp{i}", ns=net.node)
            sh("ip", "link", "set", f"vp{i}", "up", ns=net.node)
            sh("ip", "addr", "add", f"{ip}/30", "dev", "eth0", ns=ns)
            sh("ip", "link", "set", "eth0", "up", ns=ns)
            sh("ip", "route", "add", "default", "via", gw, ns=ns)
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, "-c", SERVER, name],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            net.procs.append(proc)
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            net.pods[name] = (ns, ip)
        yield net
    finally:
        for proc in net.procs:  # ours, by PID only
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            if proc.poll() is None:
                proc.kill()
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        time.sleep(0.1)  # let the kernel finish tearing down veths before the next test
