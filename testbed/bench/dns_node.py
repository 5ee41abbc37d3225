"""Runs inside a node: dnsperf against one testbed resolver and, in the same run, dnsmasq
serving the same names from a hosts file; prints JSON. Servers listen on loopback only and
are stopped by PID.

With two CPUs or more, the servers run on the last CPU and dnsperf on the others (both
servers alike): left to the scheduler, the load generator and the server it measures take
turns on the same core, and the figures say more about that than about the server (on a
2-core node: ~25k vs ~50k qps for the same resolver). Each server gets a short warm-up run
before the measured ones."""

from __future__ import annotations

import json
import os
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
# p99 at half rate is at this VM's scheduling noise floor (a bare 1 ms sleep loop sees 4-5 ms
# stalls about once a second): three runs, the one with the median p99 is reported.
HALF_RATE_RUNS = 3


def median_run(runs: list[dict]) -> dict:
    """The run whose p99 is the median of ``runs`` (odd count; lost-heavy runs sort last)."""
    ranked = sorted(runs, key=lambda r: r.get("p99_ms", float("inf")))
    return ranked[len(ranked) // 2]


def cpu_split(cpus: set[int] | None = None) -> tuple[list[int], list[int]]:
    """(CPUs for the servers, CPUs for dnsperf); both all CPUs when there is only one."""
    cpus = sorted(cpus if cpus is not None else os.sched_getaffinity(0))
    if len(cpus) < 2:
        return cpus, cpus
    return cpus[-1:], cpus[:-1]


def pinned(argv: list[str], cpus: list[int]) -> list[str]:
    """``argv`` run on ``cpus`` (through taskset)."""
    return ["taskset", "-c", ",".join(map(str, cpus)), *argv]


def dnsperf(port: int, name: str, seconds: int, rate: int | None = None,
            cpus: list[int] | None = None) -> dict:
    """One dnsperf run for a single name; QPS and latency percentiles from its histogram."""
    with tempfile.TemporaryDirectory(prefix="tbbench-dnsperf-") as work:
        queries, output = Path(work) / "queries.txt", Path(work) / "out.txt"
        queries.write_text(f"{name} A\n")
        cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries),
               "-l", str(seconds), "-c", "8", "-q", "256", "-v"]
        if rate:
            cmd += ["-Q", str(rate)]
        if cpus:
            cmd = pinned(cmd, cpus)
        # -v prints a line per query: into a file, so nobody reads a pipe during the run.
        with output.open("w") as sink:
            proc = subprocess.run(cmd, stdout=sink, stderr=subprocess.PIPE, text=True,
                                  timeout=seconds + 30)
        out = output.read_text()
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


def _store_events() -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{HEALTH_PORT}/metrics", timeout=1) as r:
            text = r.read().decode()
    except OSError:
        return None
    found = re.search(r"^testbed_dns_store_events_total (\d+)", text, re.MULTILINE)
    return int(found.group(1)) if found else None


def wait_settled(quiet: float = 1.5, timeout: float = 90.0) -> None:
    """Until our server is up and has seen no store event for ``quiet`` seconds: the bench
    services were just created, and the controller's status writes for them arrive as
    events (each drops the answer caches) for a while."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        now = _store_events()
        if now is None or now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.25)
    raise RuntimeError("the DNS server did not come up, or store events never settled")


def start(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    store, n, upstream, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    work = Path(tempfile.mkdtemp(prefix="tbbench-dns-"))
    hosts = work / "hosts"
    write_dnsmasq_hosts(hosts, n)
    with hosts.open("a") as f:
        f.write(f"192.0.2.10 {FORWARDED}\n")
    server_cpus, client_cpus = cpu_split()
    os.sched_setaffinity(0, client_cpus)  # this process too stays off the servers' CPU
    ours = start(pinned(["python3", "-m", "testbed.dns", "--store", store, "--listen", "127.0.0.1",
                  "--port", str(OURS_PORT), "--metrics-port", str(HEALTH_PORT),
                  "--upstream", upstream, "--lameduck", "0"], server_cpus))
    dnsmasq = start(pinned(["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
                     f"--addn-hosts={hosts}", "--listen-address=127.0.0.1",
                     "--bind-interfaces", f"--port={DNSMASQ_PORT}", "--cache-size=10000",
                     "--user=root"], server_cpus))
    try:
        wait_settled()
        cluster_name = service_fqdn(0)
        results: dict = {"services": n, "seconds_per_run": seconds,
                         "cpus": {"servers": server_cpus, "dnsperf": client_cpus}}
        servers = (("testbed-dns", OURS_PORT), ("dnsmasq", DNSMASQ_PORT))
        for label, name in (("cluster_name", cluster_name), ("forwarded_name", FORWARDED)):
            peaks, halves = {}, {}
            for server, port in servers:
                dnsperf(port, name, 1, cpus=client_cpus)  # warm-up, not recorded
                peaks[server] = dnsperf(port, name, seconds, cpus=client_cpus)
            # Interleaved, so both servers meet the same spells of noise.
            for _ in range(HALF_RATE_RUNS):
                for server, port in servers:
                    halves.setdefault(server, []).append(dnsperf(
                        port, name, seconds, rate=max(1, peaks[server]["qps"] // 2),
                        cpus=client_cpus))
            for server, _ in servers:
                results.setdefault(server, {})[label] = {
                    "max": peaks[server], "half_rate": median_run(halves[server]),
                    "half_rate_p99_ms_runs": [h.get("p99_ms") for h in halves[server]]}
        for label in ("cluster_name", "forwarded_name"):
            mine, base = results["testbed-dns"][label], results["dnsmasq"][label]
            results[f"qps_ratio_{label}"] = round(
                mine["max"]["qps"] / max(1, base["max"]["qps"]), 2)
            results[f"half_rate_p99_ratio_{label}"] = round(
                mine["half_rate"]["p99_ms"] / max(0.001, base["half_rate"]["p99_ms"]), 2)
        print(json.dumps(results))
    finally:
        for proc in (ours, dnsmasq):
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
