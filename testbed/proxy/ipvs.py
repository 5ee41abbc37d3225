"""IPVS backend placeholder: detects the kernel part it needs and says plainly when missing.

This machine's kernel is built without ``CONFIG_IP_VS`` (and cannot load modules), so the
mode must report itself unavailable rather than pretend; rendering is not implemented yet.
"""

from __future__ import annotations

import os
import shutil

from testbed.proxy.base import Availability, NotAvailable
from testbed.proxy.model import NodeContext, ProxyModel
from testbed.proxy.runner import Runner

NO_IPVS = "kernel has no IP_VS support (CONFIG_IP_VS); ipvs mode unavailable"
PROC_IP_VS = "/proc/net/ip_vs"


class IpvsBackend:
    """kube-proxy's ipvs mode (not implemented beyond availability detection)."""

    name = "ipvs"

    def __init__(self, runner: Runner | None = None, proc_path: str = PROC_IP_VS):
        self.runner = runner or Runner()
        self.proc_path = proc_path

    def available(self) -> Availability:
        """IPVS exists iff the kernel exposes ``/proc/net/ip_vs`` (or ``ipvsadm -Ln`` works)."""
        if os.path.exists(self.proc_path):
            return Availability(True)
        if shutil.which("ipvsadm") and self.runner.run(["ipvsadm", "-Ln"], check=False).rc == 0:
            return Availability(True)
        return Availability(False, NO_IPVS)

    def _require(self) -> None:
        avail = self.available()
        if not avail.ok:
            raise NotAvailable(self.name, avail.reason)

    def render(self, model: ProxyModel, ctx: NodeContext) -> str:
        """Not implemented yet (and unavailable on kernels without IP_VS)."""
        raise NotImplementedError("ipvs rendering is not implemented yet")

    def render_incremental(self, old: ProxyModel, new: ProxyModel, ctx: NodeContext) -> str | None:
        """Not implemented yet."""
        raise NotImplementedError("ipvs rendering is not implemented yet")

    def apply(self, text: str) -> None:
        """Refuses: :class:`NotAvailable` without IP_VS, else not implemented."""
        self._require()
        raise NotImplementedError("ipvs apply is not implemented yet")

    def cleanup(self) -> None:
        """Nothing was ever installed."""

    def rules_present(self) -> bool:
        """Nothing is ever installed."""
        return False
