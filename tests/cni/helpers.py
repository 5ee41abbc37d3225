"""Helpers shared by the CNI tests."""

from __future__ import annotations

import stat
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def write_exe(path: Path, text: str) -> Path:
    """Write an executable script (text is dedented)."""
    path.write_text(textwrap.dedent(text).lstrip())
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def plugin_conf(**over: object) -> dict:
    """A valid testbed-cni plugin config (as the runtime sends it), with overrides.

    ``ipam`` overrides are merged into the default ipam block.
    """
    ipam = {"subnet": "10.244.1.0/24", "gateway": "10.244.1.1", "routes": [{"dst": "0.0.0.0/0"}]}
    ipam.update(over.pop("ipam", {}))
    conf = {
        "cniVersion": "1.1.0",
        "name": "testbed",
        "type": "testbed-cni",
        "bridge": "tb0",
        "mtu": 1500,
        "hairpinMode": True,
        "isGateway": True,
        "ipam": ipam,
    }
    conf.update(over)
    return conf
