"""A tiny Prometheus-text metrics registry and HTTP endpoint (node IP only, like kube-proxy's
:10249/metrics), so the host can read sync latencies without touching pod or service IPs."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """Histograms and gauges, rendered in the Prometheus text format."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.histograms: dict[str, list] = {}
        self.gauges: dict[str, float] = {}

    def observe(self, name: str, value: float) -> None:
        with self.lock:
            counts, total = self.histograms.setdefault(name, [[0] * len(BUCKETS), [0, 0.0]])
            for i, bound in enumerate(BUCKETS):
                if value <= bound:
                    counts[i] += 1
            total[0] += 1
            total[1] += value

    def set(self, name: str, value: float) -> None:
        with self.lock:
            self.gauges[name] = value

    def render(self) -> str:
        lines = []
        with self.lock:
            for name, (counts, (count, total)) in sorted(self.histograms.items()):
                lines.append(f"# TYPE {name} histogram")
                for bound, c in zip(BUCKETS, counts, strict=True):
                    lines.append(f'{name}_bucket{{le="{bound}"}} {c}')
                lines.append(f'{name}_bucket{{le="+Inf"}} {count}')
                lines += [f"{name}_sum {total}", f"{name}_count {count}"]
            for name, value in sorted(self.gauges.items()):
                lines += [f"# TYPE {name} gauge", f"{name} {value}"]
        return "\n".join(lines) + "\n"


def serve_metrics(metrics: Metrics, port: int) -> ThreadingHTTPServer:
    """Serve /metrics in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            body = metrics.render().encode() if self.path == "/metrics" else b"not found\n"
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            return

    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
