"""The cluster DNS server: asyncio UDP + TCP on one port, answers from the store's watch.

Per query (:meth:`DNSServer.answer`): parse the header and question by hand, look the
ready reply bytes up in the cache keyed by (lowercase qname, qtype, qclass, EDNS,
DO bit, size limit) and patch the ID, flags and question spelling into them. On a
miss, the :class:`~testbed.dns.records.Zone` answers cluster names (and PTRs of
cluster IPs); the encoded reply, truncated with TC when it exceeds the client's
UDP size (512 without EDNS0), is cached. Every other name goes to the upstream
(:class:`~testbed.dns.forward.Forwarder`), SERVFAIL when it fails; its replies are kept for
their TTL, at most ``forward_cache_ttl`` s (:class:`~testbed.dns.fwdcache.ForwardCache`).
In front
of that cache, a dict keyed by the exact query bytes after the ID holds reply tails, so
a repeated query costs one lookup and a concatenation. Every list and watch event
updates the zone (:class:`~testbed.dns.index.ClusterIndex`) and drops both caches (not
the forward cache: store events say nothing about names outside the cluster).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections.abc import Awaitable
from dataclasses import dataclass

from dnslib import QTYPE, RCODE, DNSHeader, DNSQuestion, DNSRecord

from testbed.dns import wire
from testbed.dns.forward import Forwarder, parse_hostport
from testbed.dns.fwdcache import DEFAULT_MAX_TTL, ForwardCache
from testbed.dns.index import ClusterIndex
from testbed.dns.metrics import Metrics, serve_http
from testbed.dns.records import NOTIMP, REFUSED, SERVFAIL, Answer, Zone
from testbed.dns.source import StoreSource
from testbed.dns.wire import CLASS_ANY, CLASS_IN, TCP_LIMIT, Malformed, Query, parse_query
from testbed.store import Store

log = logging.getLogger(__name__)
_QTYPE_NAMES: dict[int, str] = {}


@dataclass
class Config:
    """Server settings (see ``python -m testbed.dns --help``)."""

    domain: str = "cluster.local"
    ttl: int = 5
    upstream: str | None = None
    listen: str = "0.0.0.0"
    port: int = 53
    metrics_port: int | None = None
    forward_timeout: float = 2.0
    forward_attempts: int = 2
    max_udp_size: int = wire.DEFAULT_MAX_UDP_SIZE
    pod_mode: str = "insecure"
    cache_size: int = 100_000
    tcp_idle_timeout: float = 10.0
    forward_cache_ttl: int = DEFAULT_MAX_TTL  # 0: forwarded replies are not cached


def _type_name(qtype: int) -> str:
    name = _QTYPE_NAMES.get(qtype)
    if name is None:
        name = _QTYPE_NAMES[qtype] = QTYPE.forward.get(qtype) or f"TYPE{qtype}"
    return name


class _UDPListener:
    """A non-blocking UDP socket read straight from the selector, in batches.

    Cheaper than an asyncio datagram transport: one wake-up drains up to ``batch``
    datagrams and answers cached ones with a direct ``sendto``.
    """

    def __init__(self, server: DNSServer, host: str, port: int, batch: int = 64) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            self.sock.bind((host, port))
        except OSError:
            self.sock.close()
            raise
        self.sock.setblocking(False)
        self.server, self.batch = server, batch
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(self.sock.fileno(), self._readable)
        self.closed = False

    @property
    def port(self) -> int:
        """The bound port."""
        return self.sock.getsockname()[1]

    def _readable(self) -> None:
        recv, send, answer = self.sock.recvfrom, self.sock.sendto, self.server.answer
        for _ in range(self.batch):
            try:
                data, addr = recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. ICMP errors queued on the socket
                continue
            out = answer(data, "udp")
            if out.__class__ is bytes:
                try:  # noqa: SIM105 - suppress() costs ~1 µs per reply on this path
                    send(out, addr)
                except OSError:
                    pass
            elif out is not None:
                self.server._spawn(self._later(out, addr))

    async def _later(self, pending: Awaitable[bytes], addr: tuple) -> None:
        reply = await pending
        if not self.closed:
            with contextlib.suppress(OSError):
                self.sock.sendto(reply, addr)

    def close(self) -> None:
        """Stop reading and close the socket."""
        if not self.closed:
            self.closed = True
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()


class DNSServer:
    """Cluster DNS server; give it a store, or a fixed zone with :meth:`set_zone`."""

    def __init__(self, config: Config | None = None, store: Store | None = None) -> None:
        self.config = config or Config()
        self.store = store
        self.metrics = Metrics()
        self.forwarder = None
        self.forward_cache = ForwardCache(self.config.forward_cache_ttl, self.config.cache_size)
        if self.config.upstream:
            host, port = parse_hostport(self.config.upstream)
            self.forwarder = Forwarder(host, port, self.config.forward_timeout,
                                       self.config.forward_attempts)
        self.source: StoreSource | None = None
        self.draining = False
        self.index = ClusterIndex(self.config.domain, self.config.ttl, self.config.pod_mode)
        self._zone: Zone | None = None
        self._cache: dict[tuple, bytes] = {}
        # In front of it: reply tails by the exact query bytes after the ID (one dict
        # lookup per repeated query; a different spelling/EDNS option is another entry).
        # Forwarded replies age, so theirs carry the monotonic time they stay right until.
        self._exact: dict[str, dict[bytes, tuple[bytes, tuple[str, str, str], float | None]]] = {
            "udp": {}, "tcp": {}}
        self._tasks: set[asyncio.Task] = set()
        self._udp: _UDPListener | None = None
        self._tcp: asyncio.Server | None = None
        self._http: asyncio.Server | None = None
        self.port = self.config.port
        self.metrics_port = self.config.metrics_port
        self.metrics.gauges["cache_entries"] = lambda: len(self._cache)
        self.metrics.gauges["cache_exact_entries"] = lambda: sum(map(len, self._exact.values()))
        self.metrics.gauges["forward_cache_entries"] = lambda: len(self.forward_cache)
        self.metrics.gauges["ready"] = lambda: int(self.ready)

    # -- lifecycle ---------------------------------------------------------
    async def start(self) -> None:
        """Bind UDP and TCP (port 0: a free port shared by both), start watches and metrics."""
        loop = asyncio.get_running_loop()
        cfg = self.config
        for attempt in range(20):
            self._udp = _UDPListener(self, cfg.listen, cfg.port)
            self.port = self._udp.port
            try:
                self._tcp = await asyncio.start_server(self._tcp_client, cfg.listen, self.port,
                                                       reuse_address=True)
                break
            except OSError:
                self._udp.close()
                if cfg.port or attempt == 19:
                    raise
        if self.store is not None:
            self.source = StoreSource(self.store, loop, self.index, self.invalidate)
            self.source.start()
        if cfg.metrics_port is not None:
            self._http = await serve_http(self.metrics, lambda: self.ready, cfg.listen,
                                          cfg.metrics_port)
            self.metrics_port = self._http.sockets[0].getsockname()[1]
        log.info("cluster DNS for %s on %s:%d (upstream %s)", cfg.domain, cfg.listen,
                 self.port, cfg.upstream)

    async def close(self) -> None:
        """Stop serving, the watches and the forwarder."""
        if self.source is not None:
            await asyncio.to_thread(self.source.stop)
        for srv in (self._tcp, self._http):
            if srv is not None:
                srv.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(srv.wait_closed(), 1)
        if self._udp is not None:
            self._udp.close()
        for task in list(self._tasks):
            task.cancel()
        if self.forwarder is not None:
            self.forwarder.close()

    async def __aenter__(self) -> DNSServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def drain(self) -> None:
        """Lame duck: keep answering, but report not ready (on /health) from now on."""
        self.draining = True

    @property
    def ready(self) -> bool:
        """True once the zone can be built: every prefix listed once (or a zone was set),
        and not draining."""
        if self.draining:
            return False
        if self.source is None:
            return self._zone is not None
        return self.index.ready

    # -- zone --------------------------------------------------------------
    def set_zone(self, zone: Zone) -> None:
        """Serve a fixed zone (no store); drops the cache."""
        self._zone = zone
        self.clear_cache()

    def clear_cache(self) -> None:
        """Drop every cached reply."""
        self._cache.clear()
        for exact in self._exact.values():
            exact.clear()

    def invalidate(self, reason: str = "event") -> None:
        """Drop every cached answer (called after each list and watch event)."""
        if reason == "list":
            self.metrics.relists += 1
        else:
            self.metrics.store_events += 1
        self.clear_cache()

    def zone(self) -> Zone | None:
        """The zone being served (None until the store has been listed)."""
        if self.source is None:
            return self._zone
        zone = self.index.zone()
        self.metrics.zone_builds = self.index.full_builds
        return zone

    # -- query path --------------------------------------------------------
    def answer(self, data: bytes, proto: str = "udp") -> bytes | Awaitable[bytes] | None:
        """Reply to one message: bytes, an awaitable of bytes (forwarding), or None (drop)."""
        t0 = time.perf_counter()
        hit = self._exact[proto].get(data[2:])
        if hit is not None and (hit[2] is None or time.monotonic() < hit[2]):
            self.metrics.cache_hits += 1
            self.metrics.observe_key(hit[1], time.perf_counter() - t0)
            return data[:2] + hit[0]
        try:
            q = parse_query(data)
        except Malformed as exc:
            self.metrics.malformed += 1
            return exc.reply
        limit = TCP_LIMIT if proto == "tcp" else q.udp_limit(self.config.max_udp_size)
        key = (q.qname_wire.lower(), q.qtype, q.qclass, q.edns, q.do, limit)
        if not (q.flags & 0x7800 or q.edns_version):
            cached = self._cache.get(key)
            if cached is not None:
                self.metrics.cache_hits += 1
                return self._remember(data, wire.patch(cached, data, q), q, proto, t0)
        self.metrics.cache_misses += 1
        return self._miss(q, data, proto, limit, key, t0)

    def _done(self, reply: bytes, q: Query, proto: str, t0: float) -> bytes:
        rcode = RCODE.forward.get(reply[3] & 0xF) or str(reply[3] & 0xF)
        self.metrics.observe(proto, _type_name(q.qtype), rcode, time.perf_counter() - t0)
        return reply

    def _remember(self, data: bytes, reply: bytes, q: Query, proto: str, t0: float,
                  valid_until: float | None = None) -> bytes:
        exact = self._exact[proto]
        if len(exact) >= self.config.cache_size:
            exact.clear()
        rcode = RCODE.forward.get(reply[3] & 0xF) or str(reply[3] & 0xF)
        exact[data[2:]] = (reply[2:], (proto, _type_name(q.qtype), rcode), valid_until)
        return self._done(reply, q, proto, t0)

    def _miss(self, q: Query, data: bytes, proto: str, limit: int, key: tuple,
              t0: float) -> bytes | Awaitable[bytes]:
        cfg = self.config
        if q.opcode != 0:
            return self._done(wire.patch(wire.rcode_reply(q, NOTIMP), data, q), q, proto, t0)
        if q.edns_version:
            reply = wire.rcode_reply(q, wire.BADVERS, cfg.max_udp_size)
            return self._done(wire.patch(reply, data, q), q, proto, t0)
        zone, name = self.zone(), q.name
        if zone is None:
            if self.store is None or not in_domain(name, cfg.domain):
                return self._forward(q, data, proto, t0, key)
            return self._done(wire.patch(wire.rcode_reply(q, SERVFAIL), data, q), q, proto, t0)
        if q.qclass not in (CLASS_IN, CLASS_ANY):
            if zone.in_zone(name):
                return self._done(wire.patch(wire.rcode_reply(q, REFUSED), data, q), q, proto,
                                  t0)
            return self._forward(q, data, proto, t0, key)
        ans = zone.lookup(name, q.qtype_name)
        if ans is None:
            return self._forward(q, data, proto, t0, key)
        last = ans.answers[-1] if ans.answers else None
        if (last is not None and last.rtype == "CNAME" and self.forwarder is not None
                and q.qtype_name not in ("CNAME", "ANY") and not zone.in_zone(str(last.data))):
            return self._chase(q, data, proto, limit, ans, t0)
        reply = wire.build_response(q, ans, limit, server_max=cfg.max_udp_size)
        if reply[2] & 0x02:
            self.metrics.truncated += 1
        if len(self._cache) >= cfg.cache_size:
            self._cache.clear()
        self._cache[key] = reply
        return self._remember(data, wire.patch(reply, data, q), q, proto, t0)

    def _forward(self, q: Query, data: bytes, proto: str, t0: float,
                 key: tuple) -> bytes | Awaitable[bytes]:
        if self.forwarder is None:
            return self._done(wire.patch(wire.rcode_reply(q, REFUSED), data, q), q, proto, t0)
        cacheable = not q.edns_version and self.config.forward_cache_ttl > 0
        fkey = (*key, q.flags & 0x0010)  # the CD bit changes what a validating upstream says
        if cacheable:
            found = self.forward_cache.lookup(fkey)
            if found is not None:
                self.metrics.forward_cache_hits += 1
                return self._remember(data, wire.patch(found[0], data, q), q, proto, t0,
                                      found[1])
        return self._forward_upstream(q, data, proto, t0, fkey if cacheable else None)

    async def _forward_upstream(self, q: Query, data: bytes, proto: str, t0: float,
                                fkey: tuple | None) -> bytes:
        self.metrics.forwarded += 1
        reply = await self.forwarder.query(data)
        if reply is None:
            self.metrics.forward_failures += 1
            reply = wire.patch(wire.rcode_reply(q, SERVFAIL, self.config.max_udp_size), data, q)
        else:
            if proto == "udp":
                limit = q.udp_limit(TCP_LIMIT)
                if len(reply) > limit:
                    self.metrics.truncated += 1
                    reply = wire.patch(wire.fit(reply, q, limit, self.config.max_udp_size),
                                       data, q)
            if fkey is not None:
                self.forward_cache.put(fkey, reply)
        return self._done(reply, q, proto, t0)

    async def _chase(self, q: Query, data: bytes, proto: str, limit: int, ans: Answer,
                     t0: float) -> bytes:
        """Answer an ExternalName CNAME plus the target's records from upstream (uncached)."""
        assert self.forwarder is not None
        target = str(ans.answers[-1].data)
        sub = DNSRecord(DNSHeader(rd=1), q=DNSQuestion(target, q.qtype))
        self.metrics.forwarded += 1
        reply = await self.forwarder.query(sub.pack())
        extra, rcode = [], ans.rcode
        if reply is None:
            self.metrics.forward_failures += 1
        else:
            try:
                parsed = DNSRecord.parse(reply)
                extra, rcode = parsed.rr, parsed.header.rcode
            except Exception:  # noqa: BLE001 - a bad upstream reply: keep the CNAME only
                log.debug("unparsable upstream reply for %s", target)
        out = wire.build_response(q, Answer(rcode, ans.answers), limit, extra_answers=extra,
                                  server_max=self.config.max_udp_size)
        return self._done(wire.patch(out, data, q), q, proto, t0)

    def _spawn(self, coro: Awaitable[bytes] | Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _tcp_client(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                async with asyncio.timeout(self.config.tcp_idle_timeout):
                    (size,) = struct.unpack("!H", await reader.readexactly(2))
                    data = await reader.readexactly(size)
                out = self.answer(data, "tcp")
                if out is None:
                    break
                if not isinstance(out, bytes):
                    out = await out
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def in_domain(name: str, domain: str) -> bool:
    """True if the text ``name`` (FQDN) is ``domain`` or below it."""
    domain = domain.strip(".").lower() + "."
    return name == domain or name.endswith("." + domain)


__all__ = ["Config", "DNSServer"]
