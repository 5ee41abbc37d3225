"""Readiness/liveness probes: httpGet and tcpSocket from the node to the pod IP (as kubelet
does), exec inside the pod's network namespace."""

from __future__ import annotations

import http.client
import socket
import subprocess
from dataclasses import dataclass, field


@dataclass
class ProbeState:
    """Counters that turn single probe results into a ready/not-ready verdict."""

    successes: int = 0
    failures: int = 0
    ready: bool = False
    last_run: float = 0.0
    message: str = field(default="")

    def record(self, ok: bool, message: str, success_threshold: int, failure_threshold: int):
        if ok:
            self.successes += 1
            self.failures = 0
            if self.successes >= success_threshold:
                self.ready = True
        else:
            self.failures += 1
            self.successes = 0
            if self.failures >= failure_threshold or not self.ready:
                self.ready = False
        self.message = message


def resolve_port(port, container: dict) -> int:
    """A probe port: a number, or the name of one of the container's ports."""
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"probe port {port!r} is not a port of container {container.get('name')}")


def timing(probe: dict) -> tuple[float, float, float, int, int]:
    """(initialDelay, period, timeout, successThreshold, failureThreshold) with k8s defaults."""
    return (
        float(probe.get("initialDelaySeconds", 0)),
        float(probe.get("periodSeconds", 10)),
        float(probe.get("timeoutSeconds", 1)),
        int(probe.get("successThreshold", 1)),
        int(probe.get("failureThreshold", 3)),
    )


def run_probe(probe: dict, container: dict, pod_ip: str, netns: str | None) -> tuple[bool, str]:
    """Run one probe; returns (success, message)."""
    timeout = float(probe.get("timeoutSeconds", 1))
    try:
        if "httpGet" in probe:
            spec = probe["httpGet"]
            port = resolve_port(spec.get("port"), container)
            host = spec.get("host") or pod_ip
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
            headers = {h["name"]: h["value"] for h in spec.get("httpHeaders") or []}
            conn.request("GET", spec.get("path", "/"), headers=headers)
            status = conn.getresponse().status
            conn.close()
            return 200 <= status < 400, f"HTTP probe returned {status}"
        if "tcpSocket" in probe:
            port = resolve_port(probe["tcpSocket"].get("port"), container)
            with socket.create_connection((probe["tcpSocket"].get("host") or pod_ip, port),
                                          timeout=timeout):
                return True, "TCP probe connected"
        if "exec" in probe:
            cmd = list(probe["exec"].get("command") or [])
            argv = ["ip", "netns", "exec", netns, *cmd] if netns else cmd
            proc = subprocess.run(argv, capture_output=True, timeout=max(timeout, 1))
            return proc.returncode == 0, f"exec probe exited {proc.returncode}"
        return True, "no handler"
    except (OSError, ValueError, subprocess.TimeoutExpired, http.client.HTTPException) as exc:
        return False, f"probe failed: {exc}"
