"""Helpers for the netexec tests: start the server as a subprocess on loopback, talk to it."""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NetexecProcess:
    """``python -m testbed.workloads.netexec`` on 127.0.0.1 with free HTTP/UDP ports."""

    def __init__(self, tmp_path: Path, *extra: str, udp: bool = True, wait: bool = True) -> None:
        self.http_port = free_port()
        self.udp_port = free_port(socket.SOCK_DGRAM) if udp else -1
        self.stdout_path = tmp_path / f"netexec-{self.http_port}.out"
        self.stderr_path = tmp_path / f"netexec-{self.http_port}.err"
        self.args = ["netexec", f"--http-port={self.http_port}", "--udp-port", str(self.udp_port),
                     "--listen-address=127.0.0.1", *extra]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.started = time.monotonic()
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "testbed.workloads.netexec", *self.args],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=ROOT, env=env)
        self.startup_seconds = self.wait_listening() if wait else None

    def wait_listening(self, timeout: float = 15.0) -> float:
        """Block until the HTTP port accepts connections; returns seconds since spawn."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"netexec exited with {self.proc.returncode}: {self.stderr()}")
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.http_port), timeout=0.5):
                return time.monotonic() - self.started
            time.sleep(0.005)
        raise TimeoutError("netexec did not start listening")

    def stdout(self) -> str:
        """Everything the server logged to stdout so far."""
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        """Everything the server wrote to stderr so far."""
        return self.stderr_path.read_text(errors="replace")

    def rss_kib(self) -> int:
        """Resident set size of the server process in KiB (from ``/proc``)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def request(self, path: str, method: str = "GET", body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 15.0
                ) -> tuple[int, dict[str, str], bytes]:
        """One request on a fresh connection: ``(status, lower-cased headers, body)``."""
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def get(self, path: str) -> str:
        """GET ``path`` expecting 200; returns the body text."""
        status, _, body = self.request(path)
        assert status == 200, (status, body)
        return body.decode()

    def udp(self, payload: bytes, timeout: float = 2.0) -> bytes | None:
        """Send one datagram to the UDP port; the reply, or ``None`` on timeout."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(payload, ("127.0.0.1", self.udp_port))
            try:
                return s.recv(65536)
            except TimeoutError:
                return None

    def wait_exit(self, timeout: float = 10.0) -> int:
        """Wait for the process to exit; returns its exit status."""
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        """Kill the process if it is still running."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
