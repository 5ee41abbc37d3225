"""Whether root-only network tests can run here: one check for every such test module."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence


def netns_problem(needs: str, tools: Sequence[str], probe_prefix: str,
                  before_probe: Callable[[], str | None] | None = None,
                  in_probe: Callable[[str], str | None] | None = None) -> str | None:
    """Why tests that create network namespaces cannot run here (None if they can).

    ``needs`` completes "needs root (...)"; ``tools`` must be on PATH; ``before_probe`` may
    report a missing prerequisite before a throw-away namespace ``<probe_prefix>-probe-<pid>``
    is created, and ``in_probe(netns)`` may check something inside it."""
    if os.geteuid() != 0:
        return f"needs root ({needs})"
    for tool in tools:
        if shutil.which(tool) is None:
            return f"{tool} not found on PATH"
    if before_probe is not None and (why := before_probe()):
        return why
    probe = f"{probe_prefix}-probe-{os.getpid()}"
    res = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if res.returncode != 0:
        return f"cannot create network namespaces: {res.stderr.strip()}"
    try:
        return in_probe(probe) if in_probe is not None else None
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
