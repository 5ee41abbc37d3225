"""Network configuration lists (``.conflist``) on the runtime side: loading, version
selection and the testbed's default list."""

from __future__ import annotations

import json
import os
from pathlib import Path

from testbed.cni.errors import DECODE_FAILURE, INVALID_CONFIG, CniError


def version_key(version: str) -> tuple[int, ...]:
    """``"1.0.0"`` -> ``(1, 0, 0)`` for comparisons; CniError(7) if malformed."""
    try:
        return tuple(int(p) for p in version.split("."))
    except (AttributeError, ValueError):
        raise CniError(INVALID_CONFIG, f"invalid cniVersion {version!r}") from None


def select_version(conflist: dict) -> str:
    """Highest version among ``cniVersion`` and ``cniVersions`` (spec: version selection)."""
    versions = [v for v in [conflist.get("cniVersion"), *conflist.get("cniVersions", [])] if v]
    if not versions:
        raise CniError(INVALID_CONFIG, "network configuration has no cniVersion")
    return max(versions, key=version_key)


def _normalise(data: object, source: str) -> dict:
    if not isinstance(data, dict):
        raise CniError(DECODE_FAILURE, f"{source}: network configuration must be an object")
    if "plugins" not in data:  # single-plugin .conf -> one-element list
        if not data.get("type"):
            raise CniError(INVALID_CONFIG, f"{source}: plugin configuration has no type")
        data = {k: data[k] for k in ("cniVersion", "name", "disableCheck") if k in data} | {
            "plugins": [data]
        }
    if not data.get("name"):
        raise CniError(INVALID_CONFIG, f"{source}: network configuration has no name")
    plugins = data.get("plugins")
    if not isinstance(plugins, list) or not plugins:
        raise CniError(INVALID_CONFIG, f"{source}: 'plugins' must be a non-empty list")
    for plugin in plugins:
        if not isinstance(plugin, dict) or not isinstance(plugin.get("type"), str):
            raise CniError(INVALID_CONFIG, f"{source}: every plugin needs a string 'type'")
    select_version(data)
    return data


def load_conflist(path: str | os.PathLike) -> dict:
    """Load a ``.conflist`` (or single-plugin ``.conf``/``.json``) as a conflist dict."""
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise CniError(DECODE_FAILURE, f"{path}: invalid JSON", str(exc)) from None
    return _normalise(data, str(path))


def testbed_conflist(
    subnet: str,
    gateway: str,
    mtu: int,
    bridge: str = "tb0",
    name: str = "testbed",
    cni_version: str = "1.1.0",
    *,
    data_dir: str | None = None,
) -> dict:
    """The testbed's default conflist: the ``testbed-cni`` plugin alone."""
    ipam: dict = {"subnet": subnet, "gateway": gateway, "routes": [{"dst": "0.0.0.0/0"}]}
    if data_dir:
        ipam["dataDir"] = data_dir
    return {
        "cniVersion": cni_version,
        "name": name,
        "plugins": [
            {
                "type": "testbed-cni",
                "bridge": bridge,
                "mtu": mtu,
                "hairpinMode": True,
                "isGateway": True,
                "ipam": ipam,
            }
        ],
    }


testbed_conflist.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
