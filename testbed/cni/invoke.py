"""Runtime side of CNI (what libcni does for containerd/CRI-O), in Python.

:class:`CniInvoker` executes the plugins of a network configuration list: it derives each
plugin's request config (injecting ``name``, ``cniVersion``, ``prevResult`` and, when
the plugin declares capabilities, ``runtimeConfig``), sets the CNI_* environment, feeds
the config on stdin and caches the final ADD result under ``cache_dir`` so that DEL and
CHECK get it back as ``prevResult``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from testbed.cni.conflist import load_conflist, select_version, testbed_conflist, version_key
from testbed.cni.errors import (
    DECODE_FAILURE,
    INTERNAL,
    INVALID_CONFIG,
    UNKNOWN_CONTAINER,
    CniError,
)

__all__ = ["CniError", "CniInvoker", "load_conflist", "select_version", "testbed_conflist"]

CACHE_KIND = "cniCacheV1"


def _cni_args(args: dict | None) -> str:
    return ";".join(f"{k}={v}" for k, v in (args or {}).items())


class CniInvoker:
    """Execute CNI network configuration lists like libcni does.

    ``bin_dirs`` are searched for plugin executables (and passed as ``CNI_PATH``);
    ``cache_dir`` holds one cached ADD result per attachment.
    """

    def __init__(
        self, bin_dirs: list[str], cache_dir: str = "/var/lib/cni/results", timeout: float = 60.0
    ) -> None:
        self.bin_dirs = [str(d) for d in bin_dirs]
        self.cache_dir = str(cache_dir)
        self.timeout = timeout

    # --- plumbing ---------------------------------------------------------------------

    def find_plugin(self, plugin_type: str) -> str:
        """Path of the plugin executable; CniError if absent."""
        if not plugin_type or "/" in plugin_type:
            raise CniError(INVALID_CONFIG, f"invalid plugin type {plugin_type!r}")
        for d in self.bin_dirs:
            path = os.path.join(d, plugin_type)
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return path
        raise CniError(
            INTERNAL,
            f"failed to find plugin {plugin_type!r} in {self.bin_dirs}",
            plugin=plugin_type,
        )

    def exec_plugin(
        self,
        plugin_type: str,
        command: str,
        config: dict,
        container_id: str = "",
        netns: str = "",
        ifname: str = "",
        args: dict | None = None,
    ) -> dict | None:
        """Run one plugin once; returns its decoded stdout (None if empty)."""
        env = dict(os.environ)
        env.update(
            CNI_COMMAND=command,
            CNI_CONTAINERID=container_id,
            CNI_NETNS=netns,
            CNI_IFNAME=ifname,
            CNI_ARGS=_cni_args(args),
            CNI_PATH=":".join(self.bin_dirs),
        )
        path = self.find_plugin(plugin_type)
        try:
            proc = subprocess.run(
                [path],
                input=json.dumps(config).encode(),
                env=env,
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise CniError(
                INTERNAL, f"plugin timed out after {self.timeout}s", plugin=plugin_type
            ) from exc
        except OSError as exc:
            raise CniError(INTERNAL, f"cannot execute plugin: {exc}", plugin=plugin_type) from exc
        out = proc.stdout.decode(errors="replace")
        err = proc.stderr.decode(errors="replace")
        if proc.returncode != 0:
            try:
                data = json.loads(out)
                code, msg = int(data["code"]), str(data.get("msg", ""))
                details = str(data.get("details", ""))
            except (ValueError, KeyError, TypeError):
                code, msg, details = (
                    INTERNAL,
                    f"plugin failed (exit {proc.returncode})",
                    (err.strip() or out.strip()),
                )
            raise CniError(code, msg, details, plugin=plugin_type, stdout=out, stderr=err)
        if not out.strip():
            return None
        try:
            return json.loads(out)
        except ValueError:
            raise CniError(
                DECODE_FAILURE,
                "cannot decode plugin output",
                out[:200],
                plugin=plugin_type,
                stdout=out,
                stderr=err,
            ) from None

    @staticmethod
    def build_config(
        conflist: dict,
        plugin: dict,
        prev_result: dict | None = None,
        capability_args: dict | None = None,
        inject: dict | None = None,
    ) -> dict:
        """A plugin's request config, derived from its plugin config (spec section 3)."""
        conf = {k: v for k, v in plugin.items() if k != "capabilities"}
        conf["name"] = conflist["name"]
        conf["cniVersion"] = select_version(conflist)
        if prev_result is not None:
            conf["prevResult"] = prev_result
        caps = {k for k, on in (plugin.get("capabilities") or {}).items() if on}
        runtime = {k: v for k, v in (capability_args or {}).items() if k in caps}
        if runtime:
            conf["runtimeConfig"] = runtime
        conf.update(inject or {})
        return conf

    def cache_path(self, network: str, container_id: str, ifname: str) -> Path:
        """Where the result of an attachment is cached."""
        return Path(self.cache_dir) / f"{network}-{container_id}-{ifname}"

    def cached_result(self, network: str, container_id: str, ifname: str) -> dict | None:
        """The cached ADD result of an attachment, if any (unreadable caches count as none)."""
        try:
            data = json.loads(self.cache_path(network, container_id, ifname).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("kind") != CACHE_KIND:
            return None
        return data.get("result")

    def cached_attachments(self, network: str) -> list[dict]:
        """All cached attachments of ``network`` (the cache entries, decoded)."""
        out = []
        for path in sorted(Path(self.cache_dir).glob(f"{network}-*")):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and data.get("networkName") == network:
                out.append(data)
        return out

    def _cache_add(
        self,
        conflist: dict,
        container_id: str,
        netns: str,
        ifname: str,
        args: dict | None,
        result: dict,
    ) -> None:
        path = self.cache_path(conflist["name"], container_id, ifname)
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {
            "kind": CACHE_KIND,
            "containerId": container_id,
            "ifName": ifname,
            "networkName": conflist["name"],
            "netns": netns,
            "cniArgs": args or {},
            "config": conflist,
            "result": result,
        }
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(entry))
        tmp.replace(path)

    # --- operations ---------------------------------------------------------------------

    def add(
        self,
        conflist: dict,
        container_id: str,
        netns_path: str,
        ifname: str = "eth0",
        args: dict | None = None,
        *,
        capability_args: dict | None = None,
    ) -> dict:
        """ADD: run the plugins in order, chaining results; cache and return the final one."""
        prev = None
        for plugin in conflist["plugins"]:
            conf = self.build_config(conflist, plugin, prev, capability_args)
            prev = self.exec_plugin(
                plugin["type"], "ADD", conf, container_id, netns_path, ifname, args
            )
        if prev is None:
            raise CniError(
                DECODE_FAILURE,
                "plugin chain returned no result",
                plugin=conflist["plugins"][-1]["type"],
            )
        self._cache_add(conflist, container_id, netns_path, ifname, args, prev)
        return prev

    def delete(
        self,
        conflist: dict,
        container_id: str,
        netns_path: str = "",
        ifname: str = "eth0",
        args: dict | None = None,
        *,
        capability_args: dict | None = None,
    ) -> None:
        """DEL: run the plugins in reverse with the cached result; drop the cache.

        Idempotent as far as the plugins are (works without a cache entry too).
        """
        prev = None
        if version_key(select_version(conflist)) >= (0, 4, 0):
            prev = self.cached_result(conflist["name"], container_id, ifname)
        for plugin in reversed(conflist["plugins"]):
            conf = self.build_config(conflist, plugin, prev, capability_args)
            self.exec_plugin(plugin["type"], "DEL", conf, container_id, netns_path, ifname, args)
        self.cache_path(conflist["name"], container_id, ifname).unlink(missing_ok=True)

    def check(
        self,
        conflist: dict,
        container_id: str,
        netns_path: str,
        ifname: str = "eth0",
        args: dict | None = None,
        *,
        capability_args: dict | None = None,
    ) -> None:
        """CHECK: run the plugins in order with the cached ADD result as prevResult."""
        if conflist.get("disableCheck") or version_key(select_version(conflist)) < (0, 4, 0):
            return
        prev = self.cached_result(conflist["name"], container_id, ifname)
        if prev is None:
            raise CniError(
                UNKNOWN_CONTAINER,
                "no cached result for attachment",
                f"{conflist['name']}/{container_id}/{ifname}",
            )
        for plugin in conflist["plugins"]:
            conf = self.build_config(conflist, plugin, prev, capability_args)
            self.exec_plugin(plugin["type"], "CHECK", conf, container_id, netns_path, ifname, args)

    def status(self, conflist: dict) -> None:
        """STATUS (1.1.0+): every plugin in order; raises the first error."""
        if version_key(select_version(conflist)) < (1, 1, 0):
            return
        for plugin in conflist["plugins"]:
            self.exec_plugin(plugin["type"], "STATUS", self.build_config(conflist, plugin))

    def gc(self, conflist: dict, valid_attachments: list) -> None:
        """GC: DEL cached attachments not in ``valid_attachments``, then (1.1.0+) send GC to
        every plugin; keeps going on errors and raises them combined at the end.

        ``valid_attachments`` items are ``{"containerID", "ifname"}`` dicts or
        ``(containerID, ifname)`` pairs.
        """
        if conflist.get("disableGC"):
            return
        valid = [
            a if isinstance(a, dict) else {"containerID": a[0], "ifname": a[1]}
            for a in valid_attachments
        ]
        keep = {(a["containerID"], a["ifname"]) for a in valid}
        errors: list[CniError] = []
        for entry in self.cached_attachments(conflist["name"]):
            if (entry.get("containerId"), entry.get("ifName")) in keep:
                continue
            try:
                self.delete(
                    conflist,
                    entry["containerId"],
                    entry.get("netns", ""),
                    entry["ifName"],
                    entry.get("cniArgs") or None,
                )
            except CniError as exc:
                errors.append(exc)
        if version_key(select_version(conflist)) >= (1, 1, 0):
            inject = {"cni.dev/valid-attachments": valid}
            for plugin in conflist["plugins"]:
                try:
                    self.exec_plugin(
                        plugin["type"], "GC", self.build_config(conflist, plugin, inject=inject)
                    )
                except CniError as exc:
                    errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            first = errors[0]
            raise CniError(
                first.code,
                f"GC failed in {len(errors)} places",
                "; ".join(str(e) for e in errors),
                plugin=first.plugin,
                stdout=first.stdout,
                stderr=first.stderr,
            )

    def version(self, plugin_type: str, cni_version: str = "1.1.0") -> dict:
        """VERSION: the plugin's supported spec versions."""
        out = self.exec_plugin(plugin_type, "VERSION", {"cniVersion": cni_version})
        if not isinstance(out, dict):
            raise CniError(DECODE_FAILURE, "VERSION returned no result", plugin=plugin_type)
        return out
