"""Runs inside a node: ADD+DEL latency of testbed-cni vs Debian's reference bridge plugin,
same harness, same run; prints JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile

from testbed.cni.bench import measure_add_del, reference_conflist
from testbed.cni.invoke import CniInvoker, testbed_conflist


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    tmp = tempfile.mkdtemp(prefix="tbbench-")
    try:
        ours = testbed_conflist("10.250.1.0/24", "10.250.1.1", 1500, bridge="tbbench0",
                                name="tbbench-ours", data_dir=f"{tmp}/ipam")
        ref = reference_conflist("10.250.2.0/24", "tbbench1", f"{tmp}/ref-ipam")
        out = {}
        for label, conf, dirs in (("testbed-cni", ours, ["/opt/cni/bin"]),
                                  ("reference-bridge", ref, ["/usr/lib/cni"])):
            out[label] = measure_add_del(lambda d=dirs: CniInvoker(d, f"{tmp}/cache"), conf, n)
        print(json.dumps(out))
    finally:
        for bridge in ("tbbench0", "tbbench1"):
            subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
