"""A small authoritative DNS server for a test zone (the testbed's "internet" resolver).

Run on the external host::

    python3 -m testbed.dns.upstream --zone example.test --listen 0.0.0.0 --port 53

Records (:func:`zone_records`, a plain dict so tests can compare against it)::

    www.<zone>     A      192.0.2.10
    alias.<zone>   CNAME  www.<zone>          (A/AAAA queries also get www's A)
    big.<zone>     A      192.0.2.100 .. 192.0.2.139   (40 records: truncates over UDP)
    whoami.<zone>  TXT    "<client ip>"       (the address the query came from)

Other names in the zone: NXDOMAIN; existing names without the type: NODATA; both
with the zone's SOA. Names outside the zone: REFUSED. UDP replies larger than 512
bytes (or the client's EDNS0 size) come back truncated with TC.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import struct

from dnslib import QTYPE, RR

from testbed.dns.names import fqdn, split_under
from testbed.dns.records import NOERROR, NXDOMAIN, REFUSED, Answer, Record
from testbed.dns.wire import TCP_LIMIT, Malformed, build_response, parse_query, patch, to_rr

log = logging.getLogger(__name__)
WHOAMI = "{client}"
TTL = 300


def zone_records(zone: str = "example.test") -> dict[str, list[tuple[str, str]]]:
    """The test zone's data: owner FQDN -> [(type, rdata)]; ``{client}`` is the querier."""
    z = fqdn(zone)
    return {
        f"www.{z}": [("A", "192.0.2.10")],
        f"alias.{z}": [("CNAME", f"www.{z}")],
        f"big.{z}": [("A", f"192.0.2.{100 + i}") for i in range(40)],
        f"whoami.{z}": [("TXT", WHOAMI)],
    }


class UpstreamServer:
    """Authoritative server for :func:`zone_records` over UDP and TCP on one port."""

    def __init__(self, zone: str = "example.test", listen: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.zone = fqdn(zone)
        self.records = zone_records(zone)
        self.listen, self.port = listen, port
        self.queries = 0
        self.tcp_queries = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    def soa(self) -> Record:
        """The zone's SOA."""
        return Record(self.zone, "SOA", TTL, (f"ns1.{self.zone}", f"hostmaster.{self.zone}",
                                               1, 3600, 600, 86400, 60))

    def lookup(self, name: str, qtype: str, client: str = "") -> Answer:
        """Answer ``name``/``qtype`` from the zone data."""
        name = fqdn(name)
        if split_under(name, self.zone) is None:
            return Answer(REFUSED)
        if name == self.zone:
            hits = (self.soa(),) if qtype in ("SOA", "ANY") else ()
            return Answer(NOERROR, hits, () if hits else (self.soa(),))
        answers: list[Record] = []
        for _ in range(8):
            data = self.records.get(name)
            if data is None:
                return Answer(NXDOMAIN if not answers else NOERROR, tuple(answers), (self.soa(),))
            recs = [Record(name, t, TTL, v.replace(WHOAMI, client)) for t, v in data]
            hits = [r for r in recs if qtype in (r.rtype, "ANY")]
            if hits:
                return Answer(NOERROR, tuple(answers + hits))
            cname = next((r for r in recs if r.rtype == "CNAME"), None)
            if cname is None:
                return Answer(NOERROR, tuple(answers), (self.soa(),))
            answers.append(cname)
            name = str(cname.data)
            if split_under(name, self.zone) is None:
                break
        return Answer(NOERROR, tuple(answers))

    def handle(self, data: bytes, client: str, proto: str) -> bytes | None:
        """Reply bytes for one message (None: drop)."""
        try:
            q = parse_query(data)
        except Malformed as exc:
            return exc.reply
        self.queries += 1
        self.tcp_queries += proto == "tcp"
        ans = self.lookup(q.name, QTYPE.forward.get(q.qtype) or "", client)
        limit = TCP_LIMIT if proto == "tcp" else q.udp_limit(4096)
        reply = build_response(q, ans, limit, aa=ans.rcode != REFUSED, ra=False, server_max=4096)
        return patch(reply, data, q)

    async def start(self) -> None:
        """Bind UDP and TCP (port 0: a free port shared by both)."""
        loop = asyncio.get_running_loop()
        server = self

        class Proto(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: tuple) -> None:
                reply = server.handle(data, addr[0], "udp")
                if reply is not None:
                    self.transport.sendto(reply, addr)  # type: ignore[attr-defined]

        for attempt in range(20):
            self._udp, _ = await loop.create_datagram_endpoint(
                Proto, local_addr=(self.listen, self.port))
            port = self._udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._tcp_client, self.listen, port)
                self.port = port
                return
            except OSError:
                self._udp.close()
                if self.port or attempt == 19:
                    raise

    async def _tcp_client(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        client = (writer.get_extra_info("peername") or ("",))[0]
        try:
            while True:
                async with asyncio.timeout(10):
                    (size,) = struct.unpack("!H", await reader.readexactly(2))
                    data = await reader.readexactly(size)
                reply = self.handle(data, client, "tcp")
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def close(self) -> None:
        """Stop serving."""
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp.wait_closed(), 1)
        if self._udp is not None:
            self._udp.close()

    async def __aenter__(self) -> UpstreamServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def expected_rrs(records: dict[str, list[tuple[str, str]]], name: str) -> list[RR]:
    """dnslib RRs of one owner in ``records`` (for tests)."""
    return [to_rr(Record(fqdn(name), t, TTL, v)) for t, v in records[fqdn(name)]]


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python3 -m testbed.dns.upstream``."""
    p = argparse.ArgumentParser(prog="python3 -m testbed.dns.upstream",
                                description="authoritative DNS server for a test zone")
    p.add_argument("--zone", default="example.test")
    p.add_argument("--listen", default="0.0.0.0")
    p.add_argument("--port", type=int, default=53)
    args = p.parse_args(argv)
    logging.basicConfig(level="INFO")

    async def run() -> None:
        async with UpstreamServer(args.zone, args.listen, args.port) as srv:
            log.info("serving %s on %s:%d", srv.zone, args.listen, srv.port)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


__all__ = ["UpstreamServer", "expected_rrs", "zone_records"]

if __name__ == "__main__":
    main()
