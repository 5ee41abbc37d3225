"""`exec`, `logs` and `export logs`: commands that reach into nodes, hosts and pods."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from testbed.cli.common import console, fail, one_line_errors, open_testbed
from testbed.cli.main import app, export_app

NODE_STATE_COMMANDS = {
    "iptables-save.txt": ["iptables-save"],
    "nft-ruleset.txt": ["nft", "list", "ruleset"],
    "ip-addr.txt": ["ip", "-d", "addr"],
    "ip-route.txt": ["ip", "route", "show", "table", "all"],
    "ip-neigh.txt": ["ip", "neigh"],
    "bridge-fdb.txt": ["bridge", "fdb", "show"],
    "netns.txt": ["ip", "netns", "list"],
    "ipam.txt": ["sh", "-c", "for f in $(find /var/lib/cni -type f); do echo \"== $f\"; "
                 "cat \"$f\"; echo; done"],
    "processes.txt": ["ps", "auxfww"],
    "conntrack.txt": ["conntrack", "-L"],
}


def _emit(result) -> None:
    sys.stdout.write(result.stdout)
    sys.stdout.flush()
    sys.stderr.write(result.stderr)
    raise typer.Exit(result.rc)


def find_pod(store, namespace: str, pod: str) -> tuple[dict, dict]:
    """(pod spec object, pod status) or a one-line error."""
    from testbed.store.keys import spec_key, status_key

    spec = store.get(spec_key("Pod", namespace, pod))
    if spec is None:
        fail(f"pod {namespace}/{pod} not found")
    st = store.get(status_key("Pod", namespace, pod))
    return spec.value, (st.value if st else {})


def pod_exec_command(status: dict, command: list[str]) -> list[str]:
    """The node-side command that runs `command` inside a pod's network namespace (pure)."""
    from testbed.agent.podspec import wrap_in_sandbox

    sandbox = status.get("sandbox") or {}
    if sandbox.get("hostNetwork"):
        return wrap_in_sandbox(list(command), None, "", sandbox.get("etcDir"))
    netns = sandbox.get("netns")
    if not netns:
        fail("pod has no network namespace yet (not started)")
    return ["ip", "netns", "exec", netns, *command]


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@one_line_errors
def exec(  # noqa: A001 - the command is called exec, like kubectl's
    args: list[str] = typer.Argument(None, help="[POD] -- COMMAND..."),
    node: str = typer.Option(None, "--node", help="Run on a node container."),
    host: str = typer.Option(None, "--host", help="Run on an external host container."),
    namespace: str = typer.Option("default", "-n", "--namespace"),
    name: str = typer.Option(None, "--name"),
):
    """Run a command on a node, an external host, or in a pod; exit code passes through."""
    args = list(args or [])
    runtime, ref, store = open_testbed(name)
    if node or host:
        if not args:
            fail("give a command after --")
        container = ref.node(node) if node else ref.host(host)
        _emit(runtime.exec(container.name, args))
    if len(args) < 2:
        fail("usage: testbed exec [-n NS] POD -- COMMAND...")
    pod, command = args[0], args[1:]
    spec, status = find_pod(store, namespace, pod)
    node_name = spec.get("spec", {}).get("nodeName")
    if not node_name:
        fail(f"pod {namespace}/{pod} is not scheduled yet")
    _emit(runtime.exec(ref.node(node_name).name, pod_exec_command(status, command)))


@app.command()
@one_line_errors
def logs(
    pod: str = typer.Argument(...),
    namespace: str = typer.Option("default", "-n", "--namespace"),
    container: str = typer.Option(None, "-c", "--container"),
    name: str = typer.Option(None, "--name"),
):
    """Print a pod container's log."""
    runtime, ref, store = open_testbed(name)
    spec, status = find_pod(store, namespace, pod)
    containers = [c["name"] for c in spec.get("spec", {}).get("containers", [])]
    cname = container or (containers[0] if containers else "")
    if cname not in containers:
        fail(f"pod {namespace}/{pod} has no container {cname!r} (containers: {containers})")
    log_dir = (status.get("sandbox") or {}).get("logDir")
    if not log_dir:
        fail(f"pod {namespace}/{pod} has not started yet")
    node = ref.node(spec["spec"]["nodeName"]).name
    _emit(runtime.exec(node, ["cat", f"{log_dir}/{cname}.log"]))


def show_rules(node: str, name: str | None) -> None:
    """Print the netfilter rules a node has applied (iptables and nftables)."""
    runtime, ref, _ = open_testbed(name)
    container = ref.node(node).name
    for title, command in (("iptables-save", ["iptables-save"]),
                           ("nft list ruleset", ["nft", "list", "ruleset"])):
        console.print(f"[bold]# {title}[/bold]")
        sys.stdout.write(runtime.exec(container, command).check().stdout)
        sys.stdout.flush()


def show_bpf(node: str, name: str | None) -> None:
    """Dump the eBPF proxy's service, backend and affinity maps on a node (ebpf mode)."""
    runtime, ref, _ = open_testbed(name)
    _emit(runtime.exec(ref.node(node).name, ["python3", "-m", "testbed.proxy.ebpf", "dump"]))


@export_app.command("logs")
@one_line_errors
def export_logs(directory: Path = typer.Argument(...), name: str = typer.Option(None, "--name")):
    """Collect every component's log, the node rules and maps, IPAM and all objects."""
    from testbed.cluster.export import export_testbed

    runtime, ref, store = open_testbed(name)
    count = export_testbed(runtime, ref, store, directory, NODE_STATE_COMMANDS)
    console.print(f"exported {count} files to {directory}")
