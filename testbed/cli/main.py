"""The `testbed` command line."""

from __future__ import annotations

from pathlib import Path

import typer

from testbed.cli.common import console, err_console, fail, one_line_errors, open_testbed

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="A containerized multi-node testbed for Kubernetes networking.")
images_app = typer.Typer(no_args_is_help=True, help="Build the node image.")
export_app = typer.Typer(no_args_is_help=True, help="Export logs and state.")
app.add_typer(images_app, name="images")
app.add_typer(export_app, name="export")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
RESOURCE_ALIASES = {
    "node": "nodes", "no": "nodes", "pod": "pods", "po": "pods", "svc": "services",
    "service": "services", "deploy": "deployments", "deployment": "deployments",
    "sts": "statefulsets", "statefulset": "statefulsets", "ns": "namespaces",
    "namespace": "namespaces", "endpointslice": "endpointslices", "netpol": "networkpolicies",
    "networkpolicy": "networkpolicies", "ing": "ingresses", "ingress": "ingresses",
}


def default_topology() -> Path:
    local = Path("topologies/default.yaml")
    return local if local.exists() else PROJECT_ROOT / "topologies" / "default.yaml"


def _build_image(runtime, force: bool = False) -> str:
    from testbed.runtime.images import ImageBuilder, node_tag

    tag = node_tag()
    if not force and runtime.image_exists(tag):
        return tag
    with err_console.status(f"building {tag} (first build takes ~2 min)") as status:
        return ImageBuilder(runtime, log=lambda line: status.update(line[:100])).ensure_node(force)


@images_app.command("build")
@one_line_errors
def images_build(force: bool = typer.Option(False, "--force", help="Rebuild even if present.")):
    """Build the node image (skipped when its content hash is already built)."""
    from testbed.cli.common import get_runtime

    tag = _build_image(get_runtime(), force)
    console.print(f"node image: {tag}")


@app.command()
@one_line_errors
def up(
    file: Path = typer.Option(None, "-f", "--file", help="Topology file."),
    name: str = typer.Option(None, "--name", help="Testbed name (default: the topology's)."),
    mode: str = typer.Option(None, "--mode", help="Override kubeProxyMode."),
    recreate: bool = typer.Option(False, "--recreate", help="Replace a differing testbed."),
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds to wait for readiness."),
):
    """Bring a testbed up (idempotent) and wait until every node and pod is ready."""
    from testbed.cli.common import get_runtime, store_for
    from testbed.cluster.steps import Steps
    from testbed.cluster.up import up as do_up
    from testbed.topology import load_topology, with_overrides

    lt = with_overrides(load_topology(file or default_topology()), name=name, mode=mode)
    runtime = get_runtime()
    steps = Steps(err_console)
    with steps.step("node image"):
        image = _build_image(runtime)
    result = do_up(lt, runtime, image, store_for, steps, recreate=recreate, timeout=timeout)
    total = sum(steps.timings.values())
    err_console.print(f"testbed [bold]{result.name}[/bold] ready in {total:.1f}s")
    get("nodes", name=result.name, output="table", namespace=None, all_namespaces=False)


@app.command()
@one_line_errors
def down(
    name: str = typer.Option(None, "--name"),
    all_: bool = typer.Option(False, "--all", help="Remove every testbed on this engine."),
):
    """Remove everything a testbed made (idempotent; also after a crashed `up`)."""
    from testbed.cli.common import get_runtime, resolve_name
    from testbed.cluster.down import down as do_down
    from testbed.cluster.state import testbed_names

    runtime = get_runtime()
    names = testbed_names(runtime) if all_ else [resolve_name(runtime, name)]
    for tb in names:
        r = do_down(runtime, tb)
        console.print(f"removed testbed {tb}: {r.containers} containers, {r.networks} networks, "
                      f"{r.volumes} volumes, {r.host_rules} host rules")
    if all_ and not names:
        console.print("no testbeds running")


@app.command()
@one_line_errors
def status(name: str = typer.Option(None, "--name")):
    """Show running testbeds and their containers."""
    from rich.table import Table

    from testbed.cli.common import get_runtime
    from testbed.cluster.state import find_testbed, testbed_names

    runtime = get_runtime()
    names = [name] if name else testbed_names(runtime)
    if not names:
        console.print("no testbeds running")
        return
    table = Table(box=None, header_style="bold")
    for col in ("TESTBED", "MODE", "SUBNET", "CONTAINER", "ROLE", "IP", "STATE"):
        table.add_column(col)
    for tb in names:
        ref = find_testbed(runtime, tb)
        if ref is None:
            continue
        for c in ref.containers:
            table.add_row(tb, ref.mode or "?", ref.network.subnet if ref.network else "-",
                          c.name, c.labels.get("testbed.role", ""), c.ipv4_address or "",
                          c.status)
    console.print(table)


@app.command()
@one_line_errors
def get(
    resource: str = typer.Argument(..., help="nodes, pods, services, deployments, ..."),
    name: str = typer.Option(None, "--name"),
    output: str = typer.Option("table", "-o", "--output", help="table|wide|json|yaml"),
    namespace: str = typer.Option(None, "-n", "--namespace"),
    all_namespaces: bool = typer.Option(False, "-A", "--all-namespaces"),
    node: str = typer.Option(None, "--node", help="for `get rules` and `get bpf`"),
):
    """List objects, kubectl style (`-o json` gives a Kubernetes List); `get rules|bpf --node N`
    shows a node's netfilter rules or eBPF maps."""
    from testbed.cli import views
    from testbed.cli.output import print_objects
    from testbed.store.keys import RESOURCES, is_namespaced

    resource = RESOURCE_ALIASES.get(resource, resource)
    if resource in ("rules", "bpf"):
        from testbed.cli.podcmds import show_bpf, show_rules

        if not node:
            fail(f"`get {resource}` needs --node NODE")
        (show_rules if resource == "rules" else show_bpf)(node, name)
        return
    if resource not in RESOURCES:
        fail(f"unknown resource {resource!r}; expected one of {', '.join(sorted(RESOURCES))}")
    _, _, store = open_testbed(name)
    ns = None if all_namespaces or not is_namespaced(resource) else (namespace or None)
    items = views.merged(store, resource, ns)
    if resource == "nodes":
        print_objects(items, output, views.NODE_COLUMNS, views.NODE_WIDE)
    elif resource == "pods":
        print_objects(items, output, views.POD_COLUMNS, views.POD_WIDE)
    else:
        print_objects(items, output, views.GENERIC_COLUMNS)


def _read_manifests(file: Path) -> list[dict]:
    """Objects in a manifest file, or TopologyError naming file, line and field."""
    from testbed.topology import Problem, TopologyError
    from testbed.topology.manifests import load_manifest_file

    problems: list[Problem] = []

    def report(path, message: str) -> None:
        problems.append(Problem(str(file), None, "", message))

    objects, found = load_manifest_file(file, str(file), report)
    problems += found
    if problems:
        raise TopologyError(problems)
    return objects


@app.command()
@one_line_errors
def apply(file: Path = typer.Option(..., "-f", "--file"), name: str = typer.Option(None, "--name")):
    """Create or update the objects in a manifest file."""
    from testbed.cluster.apply import apply_objects

    objects = _read_manifests(file)
    _, _, store = open_testbed(name)
    for key, what in apply_objects(store, objects):
        console.print(f"{key.split('/', 2)[2]} {what}")


@app.command()
@one_line_errors
def delete(
    file: Path = typer.Option(..., "-f", "--file"), name: str = typer.Option(None, "--name"),
):
    """Delete the objects in a manifest file."""
    from testbed.cluster.apply import delete_objects

    objects = _read_manifests(file)
    _, _, store = open_testbed(name)
    for key, what in delete_objects(store, objects):
        console.print(f"{key.split('/', 2)[2]} {what}")


def main() -> None:
    from testbed.cli import (  # noqa: F401  (register their commands)
        benchcmds,
        dnscmds,
        podcmds,
        policycmds,
    )

    app(prog_name="testbed")

