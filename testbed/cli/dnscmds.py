"""`testbed dns query NAME [TYPE] [--from NS/POD]`: dig inside a pod, through the cluster DNS."""

from __future__ import annotations

import typer

from testbed.cli.common import fail, one_line_errors, open_testbed
from testbed.cli.main import app

dns_app = typer.Typer(no_args_is_help=True, help="Cluster DNS tools.")
app.add_typer(dns_app, name="dns")


@dns_app.command("query")
@one_line_errors
def query(
    qname: str = typer.Argument(..., help="name to resolve (short names use the pod's search)"),
    qtype: str = typer.Argument("A"),
    source: str = typer.Option(None, "--from", help="NS/POD to ask from (default: any Ready "
                                                    "pod in `default`)"),
    name: str = typer.Option(None, "--name"),
):
    """Run `dig` in a pod (with its resolv.conf and search path) and print the answer."""
    from testbed.cli.podcmds import _emit, find_pod, pod_exec_command
    from testbed.cluster.objects import condition
    from testbed.store.keys import prefix

    runtime, ref, store = open_testbed(name)
    if source:
        ns, _, pod = source.partition("/")
        if not pod:
            fail(f"--from {source!r}: expected NS/POD")
    else:
        ns, pod = "default", None
        for kv in store.list(prefix("pods", "default"))[0]:
            candidate = kv.value["metadata"]["name"]
            status = find_pod(store, "default", candidate)[1]
            if condition(status, "Ready") and not status.get("sandbox", {}).get("hostNetwork"):
                pod = candidate
                break
        if pod is None:
            fail("no Ready pod in namespace default to query from; pass --from NS/POD")
    spec, status = find_pod(store, ns, pod)
    command = ["dig", "+search", "+noall", "+answer", "+authority", "+comments",
               qname, qtype.upper()]
    node = ref.node(spec["spec"]["nodeName"]).name
    _emit(runtime.exec(node, pod_exec_command(status, command)))
