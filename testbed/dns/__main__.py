"""``python3 -m testbed.dns``: run the cluster DNS server against the testbed's etcd.

Example::

    python3 -m testbed.dns --store 172.18.0.2:2379 --domain cluster.local \\
        --upstream 172.18.0.10 --listen 0.0.0.0 --port 53 --ttl 5 --metrics-port 9153
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from testbed.dns.records import POD_MODES
from testbed.dns.server import Config, DNSServer
from testbed.dns.wire import DEFAULT_MAX_UDP_SIZE


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of the server."""
    p = argparse.ArgumentParser(prog="python3 -m testbed.dns", description=__doc__.splitlines()[0])
    p.add_argument("--store", required=True, help="etcd endpoint HOST:PORT")
    p.add_argument("--domain", default="cluster.local", help="cluster domain")
    p.add_argument("--upstream", default=None,
                   help="resolver for other names, IP[:PORT] (none: REFUSED)")
    p.add_argument("--listen", default="0.0.0.0", help="address for DNS and metrics")
    p.add_argument("--port", type=int, default=53, help="DNS port (UDP and TCP)")
    p.add_argument("--ttl", type=int, default=5, help="TTL of cluster records and negative TTL")
    p.add_argument("--metrics-port", type=int, default=9153,
                   help="HTTP port for /metrics and /health (-1: off)")
    p.add_argument("--forward-timeout", type=float, default=2.0,
                   help="seconds per upstream attempt")
    p.add_argument("--forward-cache-ttl", type=int, default=30,
                   help="longest time a forwarded reply is cached, seconds (0: no cache)")
    p.add_argument("--max-udp-size", type=int, default=DEFAULT_MAX_UDP_SIZE,
                   help="largest UDP reply even if EDNS0 clients allow more")
    p.add_argument("--pods", choices=POD_MODES, default="insecure",
                   help="a-b-c-d.<ns>.pod records: any IP, only pod IPs, or none")
    p.add_argument("--lameduck", type=float, default=2.0,
                   help="seconds to keep answering after SIGTERM (CoreDNS's health lameduck): "
                        "clients the proxy still sends here are answered until it stops")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    """Serve until SIGTERM/SIGINT."""
    from testbed.store import EtcdStore

    store = EtcdStore.from_endpoint(args.store)
    config = Config(domain=args.domain, ttl=args.ttl, upstream=args.upstream,
                    listen=args.listen, port=args.port,
                    metrics_port=None if args.metrics_port < 0 else args.metrics_port,
                    forward_timeout=args.forward_timeout, max_udp_size=args.max_udp_size,
                    forward_cache_ttl=args.forward_cache_ttl,
                    pod_mode=args.pods)
    server = DNSServer(config, store)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await server.start()
    try:
        await stop.wait()
        if args.lameduck > 0:
            server.drain()
            await asyncio.sleep(args.lameduck)
    finally:
        await server.close()
        store.close()


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
