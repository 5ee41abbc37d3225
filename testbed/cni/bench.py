"""ADD/DEL latency benchmark for a CNI configuration (needs root and ``ip netns``).

Used by the CLI benchmark; run directly for a quick comparison::

    python -m testbed.cni.bench            # testbed-cni vs /usr/lib/cni bridge
"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import time
from collections.abc import Callable

from testbed.cni.invoke import CniInvoker

NETNS_PREFIX = "tbbench-"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure_add_del(invoker_factory: Callable[[], CniInvoker], conflist: dict, n: int = 50) -> dict:
    """Time ``n`` ADDs (into fresh netns ``tbbench-<i>``) and then their DELs.

    Returns ``{"median_add_ms", "median_del_ms", "p90_add_ms", "p90_del_ms", "n"}``.
    The netns are always removed; the network's bridge is left in place (node state).
    """
    invoker = invoker_factory()
    names = [f"{NETNS_PREFIX}{i}" for i in range(n)]
    created: list[str] = []
    added: list[int] = []
    add_ms: list[float] = []
    del_ms: list[float] = []
    try:
        for name in names:
            subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
            created.append(name)
        for i, name in enumerate(names):
            start = time.perf_counter()
            invoker.add(conflist, name, f"/var/run/netns/{name}", "eth0")
            add_ms.append((time.perf_counter() - start) * 1000)
            added.append(i)
        for i in list(added):
            name = names[i]
            start = time.perf_counter()
            invoker.delete(conflist, name, f"/var/run/netns/{name}", "eth0")
            del_ms.append((time.perf_counter() - start) * 1000)
            added.remove(i)
    finally:
        for i in added:  # a failure part-way: best-effort DEL of what was added
            with contextlib.suppress(Exception):  # cleanup must go on
                invoker.delete(conflist, names[i], f"/var/run/netns/{names[i]}", "eth0")
        for name in created:
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
    return {
        "median_add_ms": round(statistics.median(add_ms), 2),
        "median_del_ms": round(statistics.median(del_ms), 2),
        "p90_add_ms": round(_pct(add_ms, 0.9), 2),
        "p90_del_ms": round(_pct(del_ms, 0.9), 2),
        "n": n,
    }


def reference_conflist(subnet: str, bridge: str, data_dir: str, name: str = "tbbench-ref") -> dict:
    """Equivalent config for Debian's ``bridge`` + ``host-local`` (spec 1.0.0)."""
    return {
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": True,
                "hairpinMode": True,
                "mtu": 1500,
                "ipam": {
                    "type": "host-local",
                    "subnet": subnet,
                    "dataDir": data_dir,
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            }
        ],
    }


def _main() -> None:  # pragma: no cover - manual tool, needs root
    import argparse
    import os
    import shutil
    import tempfile

    from testbed.cni.invoke import testbed_conflist

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=50)
    parser.add_argument("--plugin-dir", default=os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--ref-dir", default="/usr/lib/cni")
    opts = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="tbbench-")
    try:
        ours = testbed_conflist(
            "10.250.1.0/24",
            "10.250.1.1",
            1500,
            bridge="tbcni-bench0",
            name="tbbench-ours",
            data_dir=f"{tmp}/ipam",
        )
        ref = reference_conflist("10.250.2.0/24", "tbcni-bench1", f"{tmp}/ref-ipam")
        for label, conf, dirs in (
            ("testbed-cni", ours, [opts.plugin_dir]),
            ("reference bridge", ref, [opts.ref_dir]),
        ):
            res = measure_add_del(lambda d=dirs: CniInvoker(d, f"{tmp}/cache"), conf, opts.n)
            print(f"{label:18s} {res}")
    finally:
        for br in ("tbcni-bench0", "tbcni-bench1"):
            subprocess.run(["ip", "link", "del", br], check=False, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover
    _main()
