"""Programming-cost benchmark of the ebpf proxy inside a node (root, bpffs).

`python3 -m testbed.proxy.ebpf.bench [--services 10000] [--endpoints 2]` loads the programs
and maps under a private pin directory (testbed name `bench`), *without attaching them*, so
it never disturbs a running proxy, then times a full sync of N services x E endpoints and
single added services the way proxyd does them (model update from the two store events,
render, apply separately), and removes its pins.
"""

from __future__ import annotations

import argparse
import json
import time

from testbed.proxy.ebpf.backend import EbpfBackend
from testbed.proxy.ebpf.loader import Loader
from testbed.proxy.model import NodeContext
from testbed.proxy.tracker import ENDPOINT_SLICES, SERVICE_STATUS, SERVICES, ModelTracker

CTX = NodeContext(node_name="bench-a", node_ip="172.31.255.2", cluster_cidr="10.244.0.0/16")


class _LoadOnly(Loader):
    """Pin programs and maps but attach nothing."""

    def ensure(self) -> None:
        """bpffs + pinned programs and maps, no attachments."""
        self.ensure_bpffs()
        self.load()


def _svc(i: int) -> dict:
    return {"metadata": {"name": f"s{i}", "namespace": "bench"},
            "spec": {"clusterIP": f"10.97.{i // 250}.{i % 250 + 1}",
                     "ports": [{"name": "http", "port": 80}]}}


def _slice(i: int, endpoints: int) -> dict:
    return {"metadata": {"name": f"s{i}-1", "namespace": "bench",
                         "labels": {"kubernetes.io/service-name": f"s{i}"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [f"10.{244 + k}.{i // 250 % 250}.{i % 250 + 1}"],
                           "conditions": {"ready": True},
                           "nodeName": "bench-a" if k == 0 else "bench-b"}
                          for k in range(endpoints)]}


def run(services: int, endpoints: int, added: int = 5) -> dict:
    """Time a full sync and `added` single-service incremental syncs; returns seconds."""
    state: dict[str, dict] = {SERVICES: {}, SERVICE_STATUS: {}, ENDPOINT_SLICES: {}}
    for i in range(services):
        state[SERVICES][f"bench/s{i}"] = _svc(i)
        state[ENDPOINT_SLICES][f"bench/s{i}-1"] = _slice(i, endpoints)
    tracker = ModelTracker(CTX.node_name)
    model = tracker.model(state)
    backend = EbpfBackend(testbed="bench", node="bench-a")
    backend.loader = _LoadOnly(backend.paths)
    out: dict = {"services": services, "endpoints": endpoints}
    try:
        for label in ("full_first", "full_steady"):
            t0 = time.perf_counter()
            text = backend.render(model, CTX)
            t1 = time.perf_counter()
            backend.apply(text)
            out[label] = {"render": t1 - t0, "apply": time.perf_counter() - t1,
                          "total": time.perf_counter() - t0}
        rows = []
        for k in range(added):
            i = services + k
            t0 = time.perf_counter()
            for prefix, ref, value in ((SERVICES, f"bench/s{i}", _svc(i)),
                                       (ENDPOINT_SLICES, f"bench/s{i}-1", _slice(i, endpoints))):
                tracker.note(prefix, ref, state[prefix].get(ref), value)
                state[prefix][ref] = value
            new = tracker.model(state)
            t1 = time.perf_counter()
            text = backend.render_incremental(model, new, CTX)
            t2 = time.perf_counter()
            backend.apply(text)
            t3 = time.perf_counter()
            rows.append({"model": t1 - t0, "render": t2 - t1, "apply": t3 - t2,
                         "total": t3 - t0, "ops": len(json.loads(text)["ops"])})
            model = new
        out["add_one"] = rows
        out["add_one_median_ms"] = round(
            sorted(r["total"] for r in rows)[len(rows) // 2] * 1000, 2)
    finally:
        backend.cleanup()
    return out


def main(argv: list[str] | None = None) -> None:
    """CLI: print the timings as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=10000)
    parser.add_argument("--endpoints", type=int, default=2)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.services, args.endpoints), indent=1))


if __name__ == "__main__":
    main()
