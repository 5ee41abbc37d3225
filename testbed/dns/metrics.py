"""Server metrics in the Prometheus text format, and a tiny asyncio HTTP endpoint.

``GET /metrics`` returns :meth:`Metrics.render`; ``GET /health`` (also ``/ready``)
returns 200 once the server's first list from the store has loaded, 503 before.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections import Counter
from collections.abc import Callable

#: Latency histogram bucket upper bounds, in seconds.
BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
           0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """Counters of the DNS server (plain attributes; only the event loop writes them)."""

    def __init__(self) -> None:
        self.queries: Counter[tuple[str, str, str]] = Counter()  # (proto, type, rcode)
        self.cache_hits = 0
        self.cache_misses = 0
        self.forwarded = 0
        self.forward_cache_hits = 0
        self.forward_failures = 0
        self.zone_builds = 0
        self.store_events = 0
        self.relists = 0
        self.malformed = 0
        self.truncated = 0
        self._bucket_counts = [0] * (len(BUCKETS) + 1)
        self._latency_sum = 0.0
        self.gauges: dict[str, Callable[[], float]] = {}

    def observe(self, proto: str, qtype: str, rcode: str, seconds: float) -> None:
        """Count one answered query and its latency."""
        self.observe_key((proto, qtype, rcode), seconds)

    def observe_key(self, key: tuple[str, str, str], seconds: float) -> None:
        """:meth:`observe` with a prepared ``(proto, type, rcode)`` key."""
        self.queries[key] += 1
        self._bucket_counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self._latency_sum += seconds

    @property
    def total(self) -> int:
        """Queries answered so far."""
        return sum(self.queries.values())

    def render(self) -> str:
        """All metrics in the Prometheus text exposition format (version 0.0.4)."""
        out = ["# HELP testbed_dns_queries_total Queries answered, by transport, type and rcode.",
               "# TYPE testbed_dns_queries_total counter"]
        for (proto, qtype, rcode), n in sorted(self.queries.items()):
            out.append(f'testbed_dns_queries_total{{proto="{proto}",type="{qtype}",'
                       f'rcode="{rcode}"}} {n}')
        counters = {
            "cache_hits_total": (self.cache_hits, "Answers served from the response cache."),
            "cache_misses_total": (self.cache_misses, "Queries that missed the response cache."),
            "forward_requests_total": (self.forwarded, "Queries forwarded upstream."),
            "forward_cache_hits_total": (self.forward_cache_hits,
                                         "Forwarded names answered from the forward cache."),
            "forward_failures_total": (self.forward_failures, "Forwards answered SERVFAIL."),
            "zone_builds_total": (self.zone_builds, "Rebuilds of the cluster zone."),
            "store_events_total": (self.store_events, "Watch events applied."),
            "store_relists_total": (self.relists, "Lists of a store prefix (first and re-lists)."),
            "malformed_total": (self.malformed, "Messages that could not be parsed."),
            "truncated_total": (self.truncated, "UDP replies sent with the TC bit."),
        }
        for name, (value, help_text) in counters.items():
            out += [f"# HELP testbed_dns_{name} {help_text}",
                    f"# TYPE testbed_dns_{name} counter", f"testbed_dns_{name} {value}"]
        for name, fn in sorted(self.gauges.items()):
            out += [f"# TYPE testbed_dns_{name} gauge", f"testbed_dns_{name} {fn()}"]
        out += ["# HELP testbed_dns_request_duration_seconds Time to answer a query.",
                "# TYPE testbed_dns_request_duration_seconds histogram"]
        running = 0
        for bound, n in zip((*BUCKETS, float("inf")), self._bucket_counts, strict=True):
            running += n
            le = "+Inf" if bound == float("inf") else repr(bound)
            out.append(f'testbed_dns_request_duration_seconds_bucket{{le="{le}"}} {running}')
        out += [f"testbed_dns_request_duration_seconds_sum {self._latency_sum:.6f}",
                f"testbed_dns_request_duration_seconds_count {running}"]
        return "\n".join(out) + "\n"


async def serve_http(metrics: Metrics, ready: Callable[[], bool], host: str,
                     port: int) -> asyncio.Server:
    """Start the ``/metrics`` + ``/health`` HTTP endpoint; returns the asyncio server."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request = await reader.readline()
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
            parts = request.decode("latin-1").split()
            path = parts[1].split("?")[0] if len(parts) >= 2 else ""
            if path == "/metrics":
                status, body = "200 OK", metrics.render()
                ctype = "text/plain; version=0.0.4; charset=utf-8"
            elif path in ("/health", "/healthz", "/ready"):
                ok = ready()
                status, body = ("200 OK", "ok\n") if ok else ("503 Service Unavailable",
                                                            "not ready\n")
                ctype = "text/plain"
            else:
                status, body, ctype = "404 Not Found", "not found\n", "text/plain"
            data = body.encode()
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: "
                         f"{len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
            await writer.drain()
        except (OSError, TimeoutError, UnicodeDecodeError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    return await asyncio.start_server(handle, host, port)


__all__ = ["BUCKETS", "Metrics", "serve_http"]
