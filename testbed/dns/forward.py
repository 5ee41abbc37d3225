"""Forwarding of queries to an upstream resolver: UDP, with TCP when the reply is truncated.

One connected UDP socket carries every forwarded query; replies are matched by a
fresh 16-bit ID and the echoed question. A query that gets no reply within
``timeout`` is sent again (``attempts`` times in all); then :meth:`Forwarder.query`
returns None and the server answers SERVFAIL. An ICMP "port unreachable" fails the
queries in flight at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import struct

log = logging.getLogger(__name__)


def parse_hostport(value: str, default_port: int = 53) -> tuple[str, int]:
    """``"IP"``, ``"IP:PORT"`` or ``"[IPv6]:PORT"`` -> (host, port)."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if value.count(":") == 1:
        host, port = value.split(":")
        return host, int(port)
    return value, default_port


def _question(msg: bytes) -> bytes:
    """Lowercased question section (name + type + class) of a message, or b""."""
    off = 12
    try:
        while msg[off]:
            off += msg[off] + 1
    except IndexError:
        return b""
    return msg[12:off + 5].lower()


class _UpstreamProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: Forwarder) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.owner._received(data)

    def error_received(self, exc: Exception) -> None:
        self.owner._fail_all(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._lost()


class Forwarder:
    """Async client of one upstream server (``host``, ``port``)."""

    def __init__(self, host: str, port: int = 53, timeout: float = 2.0, attempts: int = 2) -> None:
        self.host, self.port = host, port
        self.timeout, self.attempts = timeout, max(1, attempts)
        self._transport: asyncio.DatagramTransport | None = None
        self._pending: dict[int, tuple[asyncio.Future[bytes], bytes]] = {}
        self._lock = asyncio.Lock()
        self.sent = 0
        self.failures = 0
        self.tcp_fallbacks = 0

    async def _udp(self) -> asyncio.DatagramTransport:
        async with self._lock:
            if self._transport is None or self._transport.is_closing():
                loop = asyncio.get_running_loop()
                self._transport, _ = await loop.create_datagram_endpoint(
                    lambda: _UpstreamProtocol(self), remote_addr=(self.host, self.port))
            return self._transport

    def _received(self, data: bytes) -> None:
        if len(data) < 12:
            return
        (qid,) = struct.unpack_from("!H", data)
        entry = self._pending.get(qid)
        if entry is None or _question(data) != entry[1]:
            return  # late, spoofed or mismatched reply
        fut = entry[0]
        if not fut.done():
            fut.set_result(data)

    def _fail_all(self, exc: Exception) -> None:
        for fut, _ in list(self._pending.values()):
            if not fut.done():
                fut.set_exception(exc)

    def _lost(self) -> None:
        self._transport = None
        self._fail_all(ConnectionError("upstream socket closed"))

    def _new_id(self) -> int:
        while True:
            qid = random.randrange(65536)
            if qid not in self._pending:
                return qid

    async def query(self, data: bytes) -> bytes | None:
        """Forward a query (wire bytes); the reply (query's ID, RA set), or None on failure."""
        self.sent += 1
        try:
            reply = await self._query_udp(data)
            if reply is not None and reply[2] & 0x02:  # TC: retry over TCP
                self.tcp_fallbacks += 1
                reply = await self.query_tcp(data)
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            log.debug("forward to %s:%d failed: %s", self.host, self.port, exc)
            reply = None
        if reply is None:
            self.failures += 1
            return None
        return data[:2] + reply[2:3] + bytes((reply[3] | 0x80,)) + reply[4:]  # RA: we recurse

    async def _query_udp(self, data: bytes) -> bytes | None:
        loop = asyncio.get_running_loop()
        question = _question(data)
        for _ in range(self.attempts):
            transport = await self._udp()
            qid = self._new_id()
            fut: asyncio.Future[bytes] = loop.create_future()
            self._pending[qid] = (fut, question)
            try:
                transport.sendto(struct.pack("!H", qid) + data[2:])
                return await asyncio.wait_for(fut, self.timeout)
            except TimeoutError:
                continue
            finally:
                self._pending.pop(qid, None)
        return None

    async def query_tcp(self, data: bytes) -> bytes:
        """One query over a fresh TCP connection (raises OSError/TimeoutError on failure)."""
        async with asyncio.timeout(self.timeout * self.attempts):
            reader, writer = await asyncio.open_connection(self.host, self.port)
            try:
                writer.write(struct.pack("!H", len(data)) + data)
                await writer.drain()
                (size,) = struct.unpack("!H", await reader.readexactly(2))
                reply = await reader.readexactly(size)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
        if reply[:2] != data[:2] or _question(reply) != _question(data):
            raise OSError("mismatched TCP reply from upstream")
        return reply

    def close(self) -> None:
        """Close the UDP socket and fail queries in flight."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self._fail_all(ConnectionError("forwarder closed"))


__all__ = ["Forwarder", "parse_hostport"]
