"""`testbed up`: an ordered list of small actions, torn down on failure or Ctrl-C."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from ipaddress import IPv4Network, ip_network

from testbed.cluster.config import CONFIG_KEY, cluster_config, topology_hash
from testbed.cluster.down import down
from testbed.cluster.state import TestbedRef, find_testbed
from testbed.cluster.steps import Steps
from testbed.cluster.system import system_objects
from testbed.runtime import args as rargs
from testbed.topology import LoadedTopology, Problem, TopologyError
from testbed.topology.plan import address_plan, pick_free_subnet


class UpConflict(Exception):
    """A testbed of that name runs with another topology or mode."""


@dataclass(frozen=True)
class UpResult:
    """What `up` did: whether it created the testbed, and its config."""

    name: str
    created: bool
    config: dict


def used_subnets(runtime, exclude_name: str | None = None) -> list[tuple[str, IPv4Network]]:
    """Subnets of every Docker network on this engine (other testbeds and everything else)."""
    out = []
    for net in runtime.networks():
        if net.subnet and net.labels.get("testbed.name") != exclude_name:
            try:
                out.append((net.name, ip_network(net.subnet, strict=False)))
            except ValueError:
                continue
    return out


def choose_subnet(lt: LoadedTopology, runtime) -> IPv4Network:
    """The topology's nodeSubnet, checked against existing networks, or a free one."""
    used = used_subnets(runtime, exclude_name=lt.topology.metadata.name)
    wanted = lt.topology.spec.networking.node_subnet
    if wanted is None:
        return pick_free_subnet([n for _, n in used])
    for name, net in used:
        if net.overlaps(wanted):
            raise TopologyError([Problem(
                str(lt.source or "<topology>"), None, "spec.networking.nodeSubnet",
                f"{wanted} overlaps Docker network {name!r} ({net}); pick another subnet "
                "or omit nodeSubnet to get a free one",
            )])
    return wanted


def _conflict_message(ref: TestbedRef, lt: LoadedTopology) -> str:
    mode = lt.topology.spec.networking.kube_proxy_mode
    return (
        f"testbed {ref.name!r} is already running with a different topology or mode "
        f"(running: mode {ref.mode}, topology {ref.topology_hash}; requested: mode {mode}, "
        f"topology {topology_hash(lt)}); nothing changed — use --recreate to replace it"
    )


def up(
    lt: LoadedTopology, runtime, image: str, store_factory, steps: Steps,
    recreate: bool = False, timeout: float = 300.0, on_failure=None,
) -> UpResult:
    """Bring the topology up (idempotent): returns once every node and pod is ready."""
    from testbed.cluster.apply import apply_objects
    from testbed.cluster.ready import wait_ready

    name = lt.topology.metadata.name
    ref = find_testbed(runtime, name)
    if ref is not None:
        same = ref.topology_hash == topology_hash(lt) and ref.healthy
        if same:
            store = store_factory(ref.control_plane.ipv4_address)
            config = store.get(CONFIG_KEY)
            if config is not None:
                steps.info(f"testbed {name!r} is already running; nothing to do")
                return UpResult(name, False, config.value)
        if ref.healthy and not recreate:
            raise UpConflict(_conflict_message(ref, lt))
        with steps.step(f"removing the previous testbed {name!r}"):
            down(runtime, name)

    try:
        return _create(lt, runtime, image, store_factory, steps, timeout,
                       apply_objects, wait_ready)
    except BaseException:
        if on_failure is not None:
            try:  # e.g. export logs while the containers still exist
                on_failure(name)
            except Exception as exc:  # noqa: BLE001 - never mask the real failure
                steps.info(f"on-failure hook failed: {exc}")
        # Anything made so far is labelled; down removes it whatever step failed.
        steps.info(f"[yellow]up failed: removing what was created for {name!r}[/yellow]")
        down(runtime, name)
        raise


def _create(lt, runtime, image, store_factory, steps, timeout, apply_objects, wait_ready):
    topo = lt.topology
    name = topo.metadata.name
    net = topo.spec.networking
    subnet = choose_subnet(lt, runtime)
    plan = address_plan(topo, subnet)
    config = cluster_config(lt, subnet)
    cp = next(n for n in topo.spec.nodes if n.role == "control-plane")
    store_ip = str(plan.nodes[cp.name])

    with steps.step(f"creating network {rargs.network_name(name)} ({subnet}, internal)"):
        info = runtime.create_network(rargs.network_spec(
            name, str(subnet), str(plan.gateway),
            str(plan.docker_ip_range) if plan.docker_ip_range else None,
            net.mtu, topology_hash(lt), net.kube_proxy_mode,
        ))
        if net.routing == "routed" or net.pod_network == "flat":
            runtime.allow_bridge_traffic(info.bridge, name)

    specs = []
    binds = {}
    if lt.cni_bin_dir is not None:
        binds[str(lt.cni_bin_dir)] = "/opt/cni/custom-bin"
    for node in topo.spec.nodes:
        role = rargs.ROLE_CONTROL_PLANE if node.role == "control-plane" else rargs.ROLE_WORKER
        specs.append(rargs.node_container_spec(
            name, node.name, role, image, str(plan.nodes[node.name]), store_ip, binds))
    for host in topo.spec.external_hosts:
        specs.append(rargs.node_container_spec(
            name, host.name, rargs.ROLE_EXTERNAL, image, str(plan.hosts[host.name]), store_ip))

    with steps.step(f"starting {len(specs)} containers"):
        runtime.create_volume(rargs.store_volume_name(name),
                              rargs.labels(name, rargs.ROLE_STORE_VOLUME))
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(runtime.run_container, specs))

    with steps.step("waiting for the store (etcd)"):
        store = store_factory(store_ip)
        store.wait_ready(timeout=60)
        store.put(CONFIG_KEY, config)
    with steps.step(f"applying {len(lt.objects)} manifest objects and cluster DNS"):
        apply_objects(store, system_objects(config) + lt.objects)
    with steps.step("waiting for nodes and pods to be ready"):
        wait_ready(store, config, timeout=timeout)
    return UpResult(name, True, config)
