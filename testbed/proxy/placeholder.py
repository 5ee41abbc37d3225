"""Stand-in for the eBPF backend while its package cannot be imported: reports unavailable."""

from __future__ import annotations

from testbed.proxy.base import Availability, NotAvailable
from testbed.proxy.model import NodeContext, ProxyModel
from testbed.proxy.runner import Runner

NOT_BUILT = "ebpf backend not built yet"


class EbpfPlaceholder:
    """Registered as mode ``ebpf`` when ``testbed.proxy.ebpf`` is missing."""

    name = "ebpf"

    def __init__(self, runner: Runner | None = None):
        self.runner = runner or Runner()

    def available(self) -> Availability:
        """Always unavailable."""
        return Availability(False, NOT_BUILT)

    def render(self, model: ProxyModel, ctx: NodeContext) -> str:
        """Raises :class:`NotAvailable`."""
        raise NotAvailable(self.name, NOT_BUILT)

    def render_incremental(self, old: ProxyModel, new: ProxyModel, ctx: NodeContext) -> str | None:
        """Raises :class:`NotAvailable`."""
        raise NotAvailable(self.name, NOT_BUILT)

    def apply(self, text: str) -> None:
        """Raises :class:`NotAvailable`."""
        raise NotAvailable(self.name, NOT_BUILT)

    def cleanup(self) -> None:
        """Nothing was ever installed."""

    def rules_present(self) -> bool:
        """Nothing is ever installed."""
        return False
