"""Helpers for the ``root`` tests: a throw-away "node" netns that runs CniInvoker.

Everything the plugins create (bridges, host veths, sysctls, iptables) lives in the node
netns, so deleting it (plus the pod netns) cleans up completely and the host is untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from testbed.testing.rootnet import netns_problem

from .helpers import REPO

REFERENCE_DIR = Path("/usr/lib/cni")

_DRIVER = r"""
import json, sys
from testbed.cni.invoke import CniError, CniInvoker
spec = json.load(sys.stdin)
inv = CniInvoker(spec["bin_dirs"], spec["cache_dir"])
out = []
for op in spec["ops"]:
    name, kw = op["op"], op.get("kw", {})
    try:
        out.append({"ok": getattr(inv, name)(*op.get("args", []), **kw)})
    except CniError as e:
        out.append({"error": {"code": e.code, "msg": e.msg, "details": e.details,
                              "plugin": e.plugin}})
print(json.dumps(out))
"""


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=60)


def skip_reason(reference: bool = False) -> str | None:
    """Why root network tests cannot run here (None if they can)."""

    def plugins() -> str | None:
        missing = [p for p in ("bridge", "host-local") if not (REFERENCE_DIR / p).exists()]
        if reference and missing:
            return (f"reference CNI plugins {missing} not found in {REFERENCE_DIR} "
                    "(Debian package containernetworking-plugins)")
        return None

    return netns_problem("creates network namespaces, veths and bridges", ("ip",), "tbcni",
                         before_probe=plugins)


class Node:
    """A node netns plus pod netns; :meth:`invoke` runs CniInvoker inside the node."""

    def __init__(self, tag: str, tmp: Path, bin_dirs: list[str]) -> None:
        self.name = f"tbcni-{tag}-{os.getpid()}"
        self.tmp = tmp
        self.bin_dirs = bin_dirs
        self.pods: list[str] = []

    def pod(self, i: int) -> str:
        """Create pod netns number ``i``; returns its path."""
        name = f"{self.name}-p{i}"
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        self.pods.append(name)
        return f"/var/run/netns/{name}"

    def sh(self, *argv: str, pod: str | None = None) -> subprocess.CompletedProcess:
        """Run a command in the node netns (or in a pod netns)."""
        return _run("ip", "netns", "exec", pod or self.name, *argv)

    def invoke(self, *ops: dict) -> list[dict]:
        """Run CniInvoker operations (``{"op", "args", "kw"}``) inside the node netns."""
        spec = {"bin_dirs": self.bin_dirs, "cache_dir": str(self.tmp / "cache"), "ops": list(ops)}
        env = dict(os.environ, PYTHONPATH=str(REPO))
        res = subprocess.run(
            ["ip", "netns", "exec", self.name, sys.executable, "-c", _DRIVER],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)

    def cleanup(self) -> None:
        """Delete every netns created (which removes all links inside)."""
        for name in [*self.pods, self.name]:
            _run("ip", "netns", "del", name)


@contextlib.contextmanager
def node(tag: str, tmp: Path, bin_dirs: list[str]) -> Iterator[Node]:
    """Context manager creating (and always deleting) a node netns."""
    n = Node(tag, tmp, bin_dirs)
    subprocess.run(["ip", "netns", "add", n.name], check=True, capture_output=True)
    try:
        yield n
    finally:
        n.cleanup()
