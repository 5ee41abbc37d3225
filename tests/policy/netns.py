"""A real two-node topology in throw-away network namespaces, for the ``root`` tests.

Each "node" netns has a bridge ``tb0`` (bridge-nf-call-iptables=1, so bridged pod traffic
crosses the node's forward hook, like in the testbed's nodes); each "pod" netns hangs off
it with a veth. The two nodes are joined by a veth pair with routes to each other's pod
subnet. Servers are started and stopped by PID; every netns is deleted on close.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable

from testbed.policy import ContainerPort, Pod
from testbed.testing.rootnet import netns_problem

TIMEOUT = 0.5
SERVER = r"""
import socket, sys, threading
def tcp(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(64)
    def serve(c):
        with c:
            while (data := c.recv(4096)):
                c.sendall(data)
    while True:
        c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port))
    while True:
        data, peer = s.recvfrom(4096); s.sendto(data, peer)
for p in (80, 81):
    threading.Thread(target=tcp, args=(p,), daemon=True).start()
threading.Thread(target=udp, args=(80,), daemon=True).start()
import time; time.sleep(0.2); print("ready", flush=True); threading.Event().wait()
"""
PROBE = r"""
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
T = float(sys.argv[2])
def one(t):
    host, port, proto = t
    try:
        if proto == "UDP":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(T); s.sendto(b"ping", (host, port)); s.recvfrom(100); return True
        with socket.create_connection((host, port), timeout=T):
            return True
    except OSError:
        return False
with ThreadPoolExecutor(32) as ex:
    print(json.dumps(list(ex.map(one, json.loads(sys.argv[1])))))
"""
CLIENT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1.0)
print("connected", flush=True)
for line in sys.stdin:
    try:
        s.sendall(line.encode()); ok = s.recv(4096) == line.encode()
    except OSError:
        ok = False
    print("ok" if ok else "fail", flush=True)
"""

POD_PORTS = (ContainerPort(80, "serve-80"), ContainerPort(81, "serve-81"),
             ContainerPort(80, "dns-ish", "UDP"))


def sh(*argv: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
    res = subprocess.run(list(argv), capture_output=True, text=True, input=stdin, timeout=60)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {res.stderr.strip()}")
    return res


def skip_reason() -> str | None:
    """Why these tests cannot run here (None if they can)."""

    def bridge_nf(probe: str) -> str | None:
        sysctl = sh("ip", "netns", "exec", probe, "sysctl", "-w",
                    "net.bridge.bridge-nf-call-iptables=1", check=False)
        if sysctl.returncode != 0:
            return f"bridge-nf-call-iptables unavailable in a netns: {sysctl.stderr.strip()}"
        return None

    return netns_problem("creates network namespaces, bridges and netfilter rules",
                         ("ip", "nft", "iptables-restore", "iptables-save"), "tbpol",
                         in_probe=bridge_nf)


class Topology:
    """Two nodes (n1: 10.99.1.0/24, n2: 10.99.2.0/24) and the given pods."""

    def __init__(self, tag: str) -> None:
        self.base = f"tbpol-{tag}-{os.getpid()}"
        self.netns: list[str] = []
        self.procs: list[subprocess.Popen] = []
        self.pods: list[Pod] = []
        self.pod_ns: dict[str, str] = {}

    def node_ns(self, node: str) -> str:
        return f"{self.base}-{node}"

    def exec_prefix(self, node: str) -> list[str]:
        return ["ip", "netns", "exec", self.node_ns(node)]

    def _add_ns(self, name: str) -> str:
        sh("ip", "netns", "add", name)
        self.netns.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def build(self, pods: Iterable[tuple[str, str, dict, str]]) -> None:
        """``pods``: (namespace, name, labels, node) with node in n1/n2."""
        for i, node in ((1, "n1"), (2, "n2")):
            ns = self._add_ns(self.node_ns(node))
            for cmd in (["link", "add", "tb0", "type", "bridge"],
                        ["addr", "add", f"10.99.{i}.1/24", "dev", "tb0"],
                        ["link", "set", "tb0", "up"]):
                sh("ip", "-n", ns, *cmd)
            for key in ("net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1"):
                sh("ip", "netns", "exec", ns, "sysctl", "-qw", key)
        n1, n2 = self.node_ns("n1"), self.node_ns("n2")
        sh("ip", "-n", n1, "link", "add", "nl", "type", "veth", "peer", "name", "nl", "netns", n2)
        for ns, me, other in ((n1, "10.99.0.1", "10.99.2.0/24"), (n2, "10.99.0.2", "10.99.1.0/24")):
            sh("ip", "-n", ns, "addr", "add", f"{me}/30", "dev", "nl")
            sh("ip", "-n", ns, "link", "set", "nl", "up")
            peer = "10.99.0.2" if me == "10.99.0.1" else "10.99.0.1"
            sh("ip", "-n", ns, "route", "add", other, "via", peer)
        counters = {"n1": 2, "n2": 2}
        for k, (namespace, name, labels, node) in enumerate(pods):
            subnet = 1 if node == "n1" else 2
            ip = f"10.99.{subnet}.{counters[node]}"
            counters[node] += 1
            ns = self._add_ns(f"{self.base}-p{k}")
            host = f"tbp{k}"
            sh("ip", "-n", self.node_ns(node), "link", "add", host, "type", "veth",
               "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", self.node_ns(node), "link", "set", host, "master", "tb0", "up")
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "route", "add", "default", "via", f"10.99.{subnet}.1")
            pod = Pod(namespace, name, labels, ip, node, POD_PORTS)
            self.pods.append(pod)
            self.pod_ns[pod.key] = ns
        for ns in self.pod_ns.values():
            proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SERVER],
                                    stdout=subprocess.PIPE, text=True)
            self.procs.append(proc)
            if proc.stdout is None or proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"server in {ns} did not start")

    def probe(self, netns: str, targets: list[tuple[str, int, str]]) -> list[bool]:
        """Connect from ``netns`` to each (ip, port, proto); True = connected/answered."""
        out = sh("ip", "netns", "exec", netns, sys.executable, "-c", PROBE,
                 json.dumps(targets), str(TIMEOUT)).stdout
        return json.loads(out)

    def observed_matrix(self, port: int, proto: str) -> dict[tuple[str, str], bool]:
        """Reachability between all pods, measured with real packets."""
        result = {}
        for src in self.pods:
            row = self.probe(self.pod_ns[src.key], [(d.ip, port, proto) for d in self.pods])
            result.update({(src.key, d.key): ok for d, ok in zip(self.pods, row, strict=True)})
        return result

    def client(self, src: str, dst_ip: str, port: int) -> subprocess.Popen:
        """A long-lived TCP client in pod ``src``; write a line, read ``ok``/``fail``."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.pod_ns[src], sys.executable, "-c", CLIENT, dst_ip,
             str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "connected"
        return proc

    def close(self) -> None:
        """Stop every process we started (by PID) and delete every netns we created."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
        for ns in reversed(self.netns):
            sh("ip", "netns", "del", ns, check=False)
        self.netns.clear()


def roundtrip(client: subprocess.Popen) -> bool:
    """Send one line over an established client connection; True if echoed."""
    assert client.stdin is not None and client.stdout is not None
    client.stdin.write("hello\n")
    client.stdin.flush()
    return client.stdout.readline().strip() == "ok"
