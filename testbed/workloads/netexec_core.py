"""Shared state and small helpers of the agnhost-compatible ``netexec`` server.

Only the standard library is used here (and nothing heavy is imported at module
import time) because the server is started once per pod and must start fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import sys
import time

_DURATION_RE = re.compile(r"([+-]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)")
_DURATION_PART_RE = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
}


class Options:
    """Command-line options, named and defaulted like agnhost's ``netexec`` flags."""

    def __init__(self) -> None:
        self.http_port = 8080
        self.udp_port = 8081
        self.sctp_port = -1
        self.http_override = ""
        self.udp_listen_addresses = ""
        self.delay_shutdown = 0
        self.tls_cert_file = ""
        self.tls_private_key_file = ""
        # Testbed extension (not an agnhost flag): address the HTTP and default UDP
        # listeners bind to; empty means every address, like agnhost.
        self.listen_address = ""


def log(msg: str) -> None:
    """Write one Go-``log``-style line (``YYYY/MM/DD HH:MM:SS msg``) to stdout and flush."""
    try:
        sys.stdout.write(time.strftime("%Y/%m/%d %H:%M:%S ") + msg + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass


def warn(msg: str) -> None:
    """Write a warning line to stderr."""
    try:
        sys.stderr.write("netexec: warning: " + msg + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def unmap_ip(ip: str) -> str:
    """Turn an IPv4-mapped IPv6 address (``::ffff:1.2.3.4``) into plain IPv4, as Go does."""
    if ip.startswith("::ffff:") and "." in ip:
        return ip[7:]
    return ip


def fmt_addr(addr: tuple | None) -> str:
    """Format a socket address the way Go's ``net.Addr.String`` does (``[v6]:port``)."""
    if not addr:
        return ""
    host = unmap_ip(str(addr[0]))
    if ":" in host:
        return f"[{host}]:{addr[1]}"
    return f"{host}:{addr[1]}"


def go_quote(s: str) -> str:
    """Approximate Go's ``%q`` formatting of a string."""
    import json

    return json.dumps(s, ensure_ascii=False)


def go_json(obj: object) -> str:
    """Serialise like Go's ``json.Marshal``: compact, sorted map keys, HTML-safe escapes."""
    import json

    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def parse_go_duration(text: str) -> float:
    """Parse a Go ``time.Duration`` string (``1.5s``, ``2m3s``, ``0``) into seconds.

    Raises ``ValueError`` for anything Go's ``time.ParseDuration`` would reject.
    """
    if text in ("0", "+0", "-0"):
        return 0.0
    m = _DURATION_RE.fullmatch(text)
    if not m:
        raise ValueError(f"time: invalid duration {go_quote(text)}")
    total = sum(float(num) * _UNIT_SECONDS[unit]
                for num, unit in _DURATION_PART_RE.findall(m.group(2)))
    return -total if m.group(1) == "-" else total


def go_time_now(start_monotonic: float) -> str:
    """Render the current time like Go's ``time.Now().String()`` (with ``m=+`` reading)."""
    ns = time.time_ns()
    secs, frac = divmod(ns, 1_000_000_000)
    lt = time.localtime(secs)
    frac_s = f".{frac:09d}".rstrip("0") if frac else ""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", lt) + frac_s
    zone = time.strftime("%z %Z", lt)
    return f"{stamp} {zone} m=+{time.monotonic() - start_monotonic:.9f}"


class App:
    """Process-wide state: options, readiness, SIGTERM flag, in-flight requests, servers."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.started = time.monotonic()
        self.server_ready = False  # set once a UDP (or SCTP) server is listening
        self.sigterm_received = False
        self.active_requests = 0
        self.servers: list = []  # asyncio servers and datagram transports to close on exit
        self.hostname = socket.gethostname()

    def exit(self, code: int) -> None:
        """Flush output and terminate the process immediately with ``code``."""
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code & 0xFF)

    def stop_listening(self) -> None:
        """Close every listening socket (existing connections keep running)."""
        for srv in self.servers:
            with contextlib.suppress(Exception):  # best effort during shutdown
                srv.close()

    async def graceful_exit(self, code: int, timeout: float) -> None:
        """Stop accepting, wait up to ``timeout`` s for in-flight requests, then exit."""
        self.stop_listening()
        deadline = time.monotonic() + max(timeout, 0.0)
        while self.active_requests > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        log(f"Graceful shutdown completed, exiting with {code}")
        self.exit(code)

    async def on_sigterm(self) -> None:
        """SIGTERM: report not-ready on ``/readyz``, keep serving ``delay_shutdown`` s, exit 0."""
        if self.sigterm_received:
            return
        self.sigterm_received = True
        delay = self.opts.delay_shutdown
        if delay > 0:
            log(f"Sleeping {delay} seconds before terminating...")
            await asyncio.sleep(delay)
        self.exit(0)
