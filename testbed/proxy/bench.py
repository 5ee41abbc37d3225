"""Programming-latency benchmark for the proxy backends (needs root and ``ip netns``).

Each full sync runs in a fresh throw-away network namespace ``tbbench-<pid>`` (so nothing on
the host is touched and every run starts from empty); the namespace is removed afterwards.
Numbers are render (pure Python) and apply (iptables-restore / nft) separately::

    python -m testbed.proxy.bench                  # iptables and nftables, 1k and 10k
    python -m testbed.proxy.bench nftables --services 1000 10000 --endpoints 2
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from testbed.proxy.base import get_backend
from testbed.proxy.model import Endpoint, NodeContext, ProxyModel, ServicePortInfo

NETNS_PREFIX = "tbbench-"
CTX = NodeContext("bench-node", "172.30.0.2", "10.244.0.0/16")
_SVC_BASE = int(ipaddress.IPv4Address("10.96.0.1"))
_EP_BASE = int(ipaddress.IPv4Address("10.244.0.2"))


def synthetic_model(services: int, endpoints: int = 2) -> ProxyModel:
    """``services`` ClusterIP TCP services with ``endpoints`` ready endpoints each (half of
    them on this node), like kube-proxy's scale tests."""
    out = []
    for i in range(services):
        eps = tuple(
            Endpoint(
                ip=str(ipaddress.IPv4Address(_EP_BASE + i * endpoints + k)),
                port=8080,
                node="bench-node" if k % 2 == 0 else "other-node",
                is_local=k % 2 == 0,
            )
            for k in range(endpoints)
        )
        out.append(
            ServicePortInfo(
                namespace="bench",
                name=f"svc-{i:06d}",
                port_name="http",
                protocol="TCP",
                cluster_ip=str(ipaddress.IPv4Address(_SVC_BASE + i)),
                port=80,
                endpoints=eps,
            )
        )
    return ProxyModel(out)


def _with_one_more(model: ProxyModel, endpoints: int) -> ProxyModel:
    # As proxyd's model tracker does it: splice the one new service into the old model.
    extra = synthetic_model(len(model) + 1, endpoints)[-1]
    return model.with_services({(extra.namespace, extra.name): [extra]})


@contextmanager
def _netns() -> Iterator[str]:
    name = f"{NETNS_PREFIX}{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
                       check=True, capture_output=True)  # fmt: skip
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def _timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def _sync_numbers(render_s: float, apply_s: float, unit: str = "s") -> dict[str, float]:
    scale, digits = (1000.0, 1) if unit == "ms" else (1.0, 3)
    return {
        f"render_{unit}": round(render_s * scale, digits),
        f"apply_{unit}": round(apply_s * scale, digits),
        f"total_{unit}": round((render_s + apply_s) * scale, digits),
    }


def bench_proxy(mode: str, services: list[int] | None = None, endpoints: int = 2) -> dict:
    """Time full syncs of each size in ``services`` and, on top of the largest, one full
    resync and one added service (incremental). Returns a JSON-able dict."""
    sizes = sorted(services or [1000, 10000])
    result: dict = {"mode": mode, "endpoints_per_service": endpoints, "full": {}}
    for n in sizes:
        model = synthetic_model(n, endpoints)
        with _netns() as ns:
            backend = get_backend(mode, netns=ns, require_available=True)
            text, render_s = _timed(backend.render, model, CTX)
            _, apply_s = _timed(backend.apply, text)
            result["full"][n] = {**_sync_numbers(render_s, apply_s), "bytes": len(text)}
            if n != sizes[-1]:
                continue
            text, render_s = _timed(backend.render, model, CTX)
            _, apply_s = _timed(backend.apply, text)
            result["resync"] = {"services": n, **_sync_numbers(render_s, apply_s)}
            bigger = _with_one_more(model, endpoints)
            text, render_s = _timed(backend.render_incremental, model, bigger, CTX)
            if text is None:
                text, more = _timed(backend.render, bigger, CTX)
                render_s += more
            _, apply_s = _timed(backend.apply, text)
            result["add_one"] = {"existing": n, **_sync_numbers(render_s, apply_s, "ms")}
    return result


def main(argv: list[str] | None = None) -> None:
    """CLI: print one JSON object per mode."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("modes", nargs="*", default=["iptables", "nftables"])
    parser.add_argument("--services", nargs="+", type=int, default=[1000, 10000])
    parser.add_argument("--endpoints", type=int, default=2)
    args = parser.parse_args(argv)
    for mode in args.modes:
        print(json.dumps(bench_proxy(mode, args.services, args.endpoints)), flush=True)


if __name__ == "__main__":
    main()
