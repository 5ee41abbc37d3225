"""`testbed bench up`: warm `up` of a topology against its floor, `docker run` of the same
number of bare containers, both measured in the same run."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from testbed.cluster.down import down
from testbed.cluster.steps import Steps
from testbed.cluster.up import up
from testbed.runtime import args as rargs
from testbed.runtime.base import ContainerSpec


def bare_containers(runtime, image: str, count: int, name: str = "bench-floor") -> float:
    """Seconds to start `count` bare containers in parallel on an internal network."""
    from ipaddress import IPv4Network

    from testbed.cluster.up import used_subnets
    from testbed.topology.plan import pick_free_subnet

    subnet = pick_free_subnet([n for _, n in used_subnets(runtime)])
    hosts = list(subnet.hosts())
    net = rargs.network_spec(name, str(subnet), str(hosts[0]), None, 1500, "-", "-")
    runtime.create_network(net)
    specs = [ContainerSpec(
        name=f"{name}-{i}", image=image, hostname=f"c{i}", network=net.name,
        ipv4_address=str(hosts[i + 1]), labels=rargs.labels(name, "bench"),
        entrypoint=["sleep", "infinity"]) for i in range(count)]
    assert IPv4Network(subnet)
    start = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(runtime.run_container, specs))
        return time.monotonic() - start
    finally:
        down(runtime, name)


def bench_up(lt, runtime, image: str, store_factory, rounds: int = 3) -> dict:
    """Median warm `up` (to every pod Ready) and the bare-container floor, per round."""
    name = lt.topology.metadata.name
    count = len(lt.topology.spec.nodes) + len(lt.topology.spec.external_hosts)
    ups, floors = [], []
    for _ in range(rounds):
        down(runtime, name)
        start = time.monotonic()
        up(lt, runtime, image, store_factory, Steps(quiet=True), timeout=300)
        ups.append(time.monotonic() - start)
        down(runtime, name)
        floors.append(bare_containers(runtime, image, count))
    up_s, floor_s = statistics.median(ups), statistics.median(floors)
    pods = sum(1 if o.get("kind") == "Pod" else int(o.get("spec", {}).get("replicas", 1))
               for o in lt.objects if o.get("kind") in ("Pod", "Deployment", "StatefulSet"))
    return {"containers": count, "pods": pods,
            "warm_up_seconds": round(up_s, 2), "docker_run_floor_seconds": round(floor_s, 2),
            "ratio": round(up_s / floor_s, 1), "rounds": rounds,
            "all_up_seconds": [round(x, 2) for x in ups]}
