"""`testbed bench ...`: benchmarks with their baselines measured in the same run; JSON + table."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from testbed.cli.common import console, err_console, get_runtime, one_line_errors, store_for
from testbed.cli.main import app, default_topology

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks (results as JSON).")
app.add_typer(bench_app, name="bench")
REPORTS = Path("reports") / "bench"


def emit(name: str, result: dict, out: Path | None) -> None:
    """Write the JSON result and print it as a flat table."""
    path = out or REPORTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    table = Table(title=f"bench {name}", header_style="bold")
    table.add_column("metric")
    table.add_column("value")

    def rows(prefix: str, value) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                rows(f"{prefix}.{k}" if prefix else k, v)
        else:
            table.add_row(prefix, str(value))

    rows("", result)
    console.print(table)
    err_console.print(f"results: {path}")


@bench_app.command("up")
@one_line_errors
def bench_up_cmd(
    file: Path = typer.Option(None, "-f", "--file"),
    rounds: int = typer.Option(3, "--rounds"),
    out: Path = typer.Option(None, "--out"),
):
    """Warm `up` of a topology vs `docker run` of as many bare containers (same run)."""
    from testbed.bench.lifecycle import bench_up
    from testbed.cli.main import _build_image
    from testbed.topology import load_topology, with_overrides

    lt = with_overrides(load_topology(file or default_topology()), name="bench-up")
    runtime = get_runtime()
    image = _build_image(runtime)
    emit("up", bench_up(lt, runtime, image, store_for, rounds), out)


@bench_app.command("cni")
@one_line_errors
def bench_cni_cmd(
    n: int = typer.Option(50, "-n"),
    name: str = typer.Option(None, "--name", help="a running testbed to measure on"),
    out: Path = typer.Option(None, "--out"),
):
    """CNI ADD+DEL per pod (median over n): testbed-cni vs the reference bridge plugin."""
    from testbed.cli.common import open_testbed

    runtime, ref, _ = open_testbed(name)
    node = ref.node(ref.node_names()[-1]).name
    result = runtime.exec(node, ["python3", "-m", "testbed.bench.cni_node", str(n)]).check()
    data = json.loads(result.stdout)
    data["ratio_add_del"] = round(
        (data["testbed-cni"]["median_add_ms"] + data["testbed-cni"]["median_del_ms"])
        / (data["reference-bridge"]["median_add_ms"] + data["reference-bridge"]["median_del_ms"]),
        2)
    emit("cni", data, out)


@bench_app.command("dns")
@one_line_errors
def bench_dns_cmd(
    services: int = typer.Option(1000, "--services"),
    seconds: int = typer.Option(5, "--seconds"),
    name: str = typer.Option(None, "--name", help="a running testbed to measure on"),
    out: Path = typer.Option(None, "--out"),
):
    """dnsperf QPS and p50/p99 for a cluster and a forwarded name: one testbed resolver vs
    dnsmasq with the same names in a hosts file, in the same run."""
    from testbed.cli.common import open_testbed
    from testbed.cluster.apply import apply_objects
    from testbed.cluster.system import dns_upstream
    from testbed.dns.bench_support import bench_services
    from testbed.store.keys import CONFIG_KEY

    runtime, ref, store = open_testbed(name)
    config = store.get(CONFIG_KEY).value
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}}
    apply_objects(store, [namespace, *bench_services(services)])
    node = ref.node(ref.node_names()[-1]).name
    store_ip = ref.control_plane.ipv4_address
    result = runtime.exec(node, ["python3", "-m", "testbed.bench.dns_node", f"{store_ip}:2379",
                                 str(services), dns_upstream(config) or "127.0.0.1",
                                 str(seconds)]).check()
    emit("dns", json.loads(result.stdout), out)


@bench_app.command("proxy")
@one_line_errors
def bench_proxy_cmd(
    modes: str = typer.Option("iptables nftables ebpf", "--modes"),
    dataplane: bool = typer.Option(True, "--dataplane/--no-dataplane",
                                   help="also measure pod->ClusterIP->pod vs pod->pod"),
    out: Path = typer.Option(None, "--out"),
):
    """Per mode, on one node: full sync of 1,000 and 10,000 services x 2 endpoints, one added
    service at 10,000; plus the data-plane cost of the ClusterIP path."""
    from testbed.bench.dataplane import measure
    from testbed.cli.main import _build_image
    from testbed.cluster.down import down
    from testbed.cluster.state import require_testbed
    from testbed.cluster.steps import Steps
    from testbed.cluster.up import up
    from testbed.testing.cluster import Cluster
    from testbed.topology import load_topology, with_overrides

    runtime = get_runtime()
    image = _build_image(runtime)
    suite = Path(__file__).resolve().parents[2] / "suites" / "topology.yaml"
    results: dict = {}
    for mode in modes.split():
        name = f"bench-{mode}"
        lt = with_overrides(load_topology(suite), name=name, mode=mode)
        err_console.print(f"[bold]{mode}[/bold]: bringing up {name}")
        up(lt, runtime, image, store_for, Steps(err_console), recreate=True)
        try:
            ref = require_testbed(runtime, name)
            node = ref.node(ref.node_names()[-1]).name
            if mode == "ebpf":
                cmds = [["python3", "-m", "testbed.proxy.ebpf.bench", "--services", str(n)]
                        for n in (1000, 10000)]
            else:
                cmds = [["python3", "-m", "testbed.proxy.bench", mode]]
            runs = [json.loads(runtime.exec(node, c).check().stdout) for c in cmds]
            results[mode] = {"sync": runs[0] if len(runs) == 1 else
                             {"1000": runs[0], "10000": runs[1]}}
            if dataplane:
                cluster = Cluster(runtime, ref, store_for(ref.control_plane.ipv4_address))
                results[mode]["dataplane"] = measure(cluster)
        finally:
            down(runtime, name)
    emit("proxy", results, out)


@bench_app.command("policy")
@one_line_errors
def bench_policy_cmd(
    mode: str = typer.Option("nftables", "--mode"),
    out: Path = typer.Option(None, "--out"),
):
    """Apply cost of 1,000 policies over 500 pods, and probe latency with/without them."""
    from testbed.bench.policy import probe_latency
    from testbed.cli.main import _build_image
    from testbed.cluster.down import down
    from testbed.cluster.state import require_testbed
    from testbed.cluster.steps import Steps
    from testbed.cluster.up import up
    from testbed.testing.cluster import Cluster
    from testbed.topology import load_topology, with_overrides

    runtime = get_runtime()
    image = _build_image(runtime)
    suite = Path(__file__).resolve().parents[2] / "suites" / "topology.yaml"
    name = f"bench-policy-{mode}"
    up(with_overrides(load_topology(suite), name=name, mode=mode), runtime, image, store_for,
       Steps(err_console), recreate=True)
    try:
        ref = require_testbed(runtime, name)
        node = ref.node(ref.node_names()[-1]).name
        programming = json.loads(runtime.exec(node, ["python3", "-m", "testbed.policy.bench",
                                                     "--pods", "500", "--policies", "1000"])
                                 .check().stdout)
        cluster = Cluster(runtime, ref, store_for(ref.control_plane.ipv4_address))
        emit("policy", {"mode": mode, "programming_1000_policies_500_pods": programming,
                        "probe_latency": probe_latency(cluster)}, out)
    finally:
        down(runtime, name)
