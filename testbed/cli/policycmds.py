"""`testbed policy matrix|explain`: observed reachability next to the oracle's verdicts."""

from __future__ import annotations

from pathlib import Path

import typer

from testbed.cli.common import console, fail, one_line_errors, open_testbed
from testbed.cli.main import app

policy_app = typer.Typer(no_args_is_help=True, help="NetworkPolicy tools.")
app.add_typer(policy_app, name="policy")


@policy_app.command("matrix")
@one_line_errors
def matrix_cmd(
    namespaces: list[str] = typer.Option(None, "-n", "--namespace", help="repeatable"),
    port: int = typer.Option(8080, "--port", help="a port the pods serve (netexec: 8080)"),
    protocol: str = typer.Option("TCP", "--protocol"),
    json_out: Path = typer.Option(None, "--json", help="write expected+observed as JSON"),
    html_out: Path = typer.Option(None, "--html", help="write the grid as an HTML page"),
    name: str = typer.Option(None, "--name"),
):
    """Probe every pod pair with real connections; print observed vs expected, mark
    mismatches; exit 1 when they differ."""
    from testbed.cluster.state import require_testbed
    from testbed.testing import reachability
    from testbed.testing.cluster import Cluster

    runtime, ref, store = open_testbed(name)
    cluster = Cluster(runtime, require_testbed(runtime, ref.name), store)
    pods = [p for p in cluster.pods() if p.netns and p.ip
            and (not namespaces or p.namespace in namespaces)]
    if not pods:
        fail("no pods with an IP in the selected namespaces")
    want = reachability.expected(store, namespaces or None, port, protocol.upper())
    want = {k: v for k, v in want.items()
            if k[0] in {str(p) for p in pods} and k[1] in {str(p) for p in pods}}
    got = reachability.observed(cluster, pods, port, protocol.upper())
    console.print(reachability.render(want, got), highlight=False)
    if json_out:
        json_out.write_text(reachability.to_json(want, got))
    if html_out:
        html_out.write_text(reachability.to_html(want, got, f"{protocol.upper()}/{port}"))
    bad = reachability.mismatches(want, got)
    console.print(f"{len(bad)} mismatches over {len(want)} pairs")
    raise typer.Exit(1 if bad else 0)


@policy_app.command("explain")
@one_line_errors
def explain_cmd(
    source: str = typer.Option(..., "--from", help="NS/POD"),
    target: str = typer.Option(..., "--to", help="NS/POD"),
    port: int = typer.Option(..., "--port"),
    protocol: str = typer.Option("TCP", "--protocol"),
    name: str = typer.Option(None, "--name"),
):
    """Which policy and rule allow or deny a flow (from the oracle)."""
    from testbed.policy import Oracle
    from testbed.testing.reachability import cluster_inputs

    _, _, store = open_testbed(name)
    pods, ns_labels, policies = cluster_inputs(store)
    by_key = {p.key: p for p in pods}
    for key in (source, target):
        if key not in by_key:
            fail(f"pod {key!r} not found (expected NS/POD of a running pod)")
    console.print(Oracle(pods, ns_labels, policies).explain(
        by_key[source], by_key[target], port, protocol.upper()), highlight=False)
