"""Object builders and a threaded harness running the DNS servers for the tests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable

from dnslib import EDNS0, QTYPE, DNSRecord

from testbed.dns.server import Config, DNSServer
from testbed.dns.upstream import UpstreamServer
from testbed.store import keys


def service(name: str, ns: str = "default", cluster_ip: str | None = "10.96.0.10",
            ports: list[dict] | None = None, **spec: object) -> dict:
    """A v1 Service (``cluster_ip="None"``: headless)."""
    s: dict = {"type": "ClusterIP", "ports": ports or []}
    if cluster_ip is not None:
        s["clusterIP"] = cluster_ip
    s.update(spec)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns}, "spec": s}


def endpoint(ip: str, ready: bool | None = True, hostname: str | None = None,
             pod: str | None = None) -> dict:
    """One EndpointSlice endpoint."""
    ep: dict = {"addresses": [ip]}
    if ready is not None:
        ep["conditions"] = {"ready": ready}
    if hostname:
        ep["hostname"] = hostname
    if pod:
        ep["targetRef"] = {"kind": "Pod", "name": pod, "namespace": "default"}
    return ep


def endpoint_slice(service_name: str, endpoints: list[dict], ns: str = "default",
                   ports: list[dict] | None = None, name: str | None = None,
                   address_type: str = "IPv4") -> dict:
    """A discovery.k8s.io/v1 EndpointSlice owned by ``service_name``."""
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name or f"{service_name}-abcde", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": address_type, "endpoints": endpoints, "ports": ports or []}


def put(store, obj: dict) -> None:
    """Write a Kubernetes-shaped object at its key."""
    store.put(keys.object_key(obj), obj)


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (for a server that must be absent)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Harness:
    """Runs an :class:`UpstreamServer` and a :class:`DNSServer` on a private event loop."""

    def __init__(self, store=None, upstream: bool = True, upstream_port: int | None = None,
                 **config: object) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.upstream: UpstreamServer | None = None
        if upstream:
            self.upstream = UpstreamServer("example.test", "127.0.0.1", 0)
            self.call(self.upstream.start())
            upstream_port = self.upstream.port
        cfg = Config(listen="127.0.0.1", port=0, metrics_port=0, forward_timeout=0.5,
                     **config)  # type: ignore[arg-type]
        if upstream_port is not None:
            cfg.upstream = f"127.0.0.1:{upstream_port}"
        self.server = DNSServer(cfg, store)
        self.call(self.server.start())

    def call(self, coro, timeout: float = 10.0):
        """Run a coroutine on the harness loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def on_loop(self, fn: Callable[[], object]) -> object:
        """Run a plain function on the loop thread."""
        async def run() -> object:
            return fn()
        return self.call(run())

    @property
    def port(self) -> int:
        """The DNS server's port."""
        return self.server.port

    def wait_ready(self, timeout: float = 5.0) -> None:
        """Wait until the server has listed the store."""
        wait_for(lambda: self.on_loop(lambda: self.server.ready), timeout)

    def close(self) -> None:
        """Stop both servers and the loop."""
        self.call(self.server.close())
        if self.upstream is not None:
            self.call(self.upstream.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def wait_for(cond: Callable[[], object], timeout: float = 5.0, interval: float = 0.02) -> None:
    """Poll ``cond`` until truthy; AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def make_query(name: str, qtype: str = "A", edns: int | None = None, do: bool = False,
               qid: int | None = None) -> DNSRecord:
    """A query, with an OPT record advertising ``edns`` bytes if given."""
    q = DNSRecord.question(name, qtype)
    if qid is not None:
        q.header.id = qid
    if edns is not None:
        q.add_ar(EDNS0(udp_len=edns, flags="do" if do else ""))
    return q


def send_raw(port: int, data: bytes, tcp: bool = False, timeout: float = 3.0) -> bytes:
    """Send wire bytes over UDP or TCP to 127.0.0.1:``port``; the raw reply."""
    if tcp:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(len(data).to_bytes(2, "big") + data)
            buf = b""
            while len(buf) < 2 or len(buf) < 2 + int.from_bytes(buf[:2], "big"):
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionError("closed")
                buf += chunk
            return buf[2:]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(data, ("127.0.0.1", port))
        return s.recvfrom(65535)[0]


def ask(port: int, name: str, qtype: str = "A", tcp: bool = False, **kw: object) -> DNSRecord:
    """Query 127.0.0.1:``port`` and parse the reply."""
    q = make_query(name, qtype, **kw)  # type: ignore[arg-type]
    reply = DNSRecord.parse(send_raw(port, q.pack(), tcp))
    assert reply.header.id == q.header.id
    return reply


def rdatas(reply: DNSRecord, qtype: str | None = None) -> list[str]:
    """Answer rdata as strings (optionally only one type)."""
    return [str(rr.rdata) for rr in reply.rr
            if qtype is None or QTYPE[rr.rtype] == qtype]
