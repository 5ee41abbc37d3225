"""Runs inside a node: dnsperf against one testbed resolver and, in the same run, dnsmasq
serving the same names from a hosts file; prints JSON. Servers listen on loopback only and
are stopped by PID."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from testbed.dns.bench_support import service_fqdn, write_dnsmasq_hosts

OURS_PORT, DNSMASQ_PORT, HEALTH_PORT = 5354, 5355, 19153
FORWARDED = "www.example.test"


def dnsperf(port: int, name: str, seconds: int, rate: int | None = None) -> dict:
    """One dnsperf run for a single name; QPS and latency percentiles from its histogram."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(f"{name} A\n")
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", f.name, "-l", str(seconds),
           "-c", "8", "-q", "256", "-v"]
    if rate:
        cmd += ["-Q", str(rate)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
    out = proc.stdout
    found = re.search(r"Queries per second:\s+([\d.]+)", out)
    if not found:
        raise RuntimeError(f"dnsperf failed: {proc.stderr.strip()[-500:]} {out[-500:]}")
    qps = float(found.group(1))
    lost = int(re.search(r"Queries lost:\s+(\d+)", out).group(1))
    return {"qps": round(qps), "lost": lost, **percentiles(out)}


def percentiles(out: str) -> dict:
    """p50/p99 in ms from dnsperf -v's per-query lines (`> RCODE name type latency`)."""
    # Lost queries print as "> T name type" with no latency: they count as the slowest.
    lines = [line.split() for line in out.splitlines() if line.startswith("> ")]
    latencies = sorted(float(w[-1]) if re.fullmatch(r"[\d.]+", w[-1]) else float("inf")
                       for w in lines)
    result = {}
    if latencies:
        for label, q in (("p50_ms", 0.5), ("p99_ms", 0.99)):
            result[label] = round(latencies[min(len(latencies) - 1,
                                                int(q * len(latencies)))] * 1000, 3)
    avg = re.search(r"Average Latency \(s\):\s+([\d.]+)", out)
    if avg:
        result["avg_ms"] = round(float(avg.group(1)) * 1000, 3)
    return result


def start(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    store, n, upstream, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    work = Path(tempfile.mkdtemp(prefix="tbbench-dns-"))
    hosts = work / "hosts"
    write_dnsmasq_hosts(hosts, n)
    with hosts.open("a") as f:
        f.write(f"192.0.2.10 {FORWARDED}\n")
    ours = start(["python3", "-m", "testbed.dns", "--store", store, "--listen", "127.0.0.1",
                  "--port", str(OURS_PORT), "--metrics-port", str(HEALTH_PORT),
                  "--upstream", upstream])
    dnsmasq = start(["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
                     f"--addn-hosts={hosts}", "--listen-address=127.0.0.1",
                     "--bind-interfaces", f"--port={DNSMASQ_PORT}", "--cache-size=10000",
                     "--user=root"])
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{HEALTH_PORT}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        cluster_name = service_fqdn(0)
        results: dict = {"services": n, "seconds_per_run": seconds}
        for server, port in (("testbed-dns", OURS_PORT), ("dnsmasq", DNSMASQ_PORT)):
            for label, name in (("cluster_name", cluster_name), ("forwarded_name", FORWARDED)):
                peak = dnsperf(port, name, seconds)
                half = dnsperf(port, name, seconds, rate=max(1, peak["qps"] // 2))
                results.setdefault(server, {})[label] = {"max": peak, "half_rate": half}
        for label in ("cluster_name", "forwarded_name"):
            results[f"qps_ratio_{label}"] = round(
                results["testbed-dns"][label]["max"]["qps"]
                / max(1, results["dnsmasq"][label]["max"]["qps"]), 2)
        print(json.dumps(results))
    finally:
        for proc in (ours, dnsmasq):
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
