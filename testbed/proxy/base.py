"""The backend interface shared by every proxy mode, the mode registry and a sync helper.

A backend turns the one :mod:`testbed.proxy.model` into one data plane. ``render`` and
``render_incremental`` are pure (text in, text out, unit-tested without root); ``apply`` and
``cleanup`` are the small side-effecting shell. A mode that cannot run on this machine says
why through :meth:`Backend.available` and raises :class:`NotAvailable` when asked to work.
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from testbed.proxy.model import NodeContext, ProxyModel
from testbed.proxy.runner import CommandError, Runner

__all__ = [  # NodeContext/ProxyModel re-exported: callers import them from here too
    "Availability",
    "Backend",
    "NodeContext",
    "NotAvailable",
    "ProxyModel",
    "get_backend",
    "modes",
    "register_backend",
    "sync",
]


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here, and if not, the precise reason."""

    ok: bool
    reason: str = ""


def tools_available(runner: Runner, tools: Sequence[str], probe: Sequence[str]) -> Availability:
    """Ok when every tool is on PATH and the ``probe`` command succeeds; else the first
    thing missing (the netfilter backends' availability check)."""
    for tool in tools:
        if shutil.which(tool) is None:
            return Availability(False, f"{tool} not found on PATH")
    res = runner.run(list(probe), check=False)
    if res.rc != 0:
        return Availability(False, f"{' '.join(probe)} failed: {res.stderr.strip()}")
    return Availability(True)


class NotAvailable(Exception):
    """A proxy mode cannot run on this machine; ``reason`` says why (e.g. a kernel part)."""

    def __init__(self, mode: str, reason: str):
        self.mode = mode
        self.reason = reason
        super().__init__(f"proxy mode {mode!r} not available: {reason}")


@runtime_checkable
class Backend(Protocol):
    """One proxy data plane. ``render*`` are pure; ``apply``/``cleanup`` touch the kernel."""

    name: str

    def available(self) -> Availability:
        """Can this mode run here? Never raises."""
        ...

    def render(self, model: ProxyModel, ctx: NodeContext) -> str:
        """The complete ruleset for ``model`` (a full sync), as the apply tool's input."""
        ...

    def render_incremental(self, old: ProxyModel, new: ProxyModel, ctx: NodeContext) -> str | None:
        """Input that moves the kernel from ``render(old)`` to ``render(new)`` touching only
        changed services; ``None`` when a full render is needed instead."""
        ...

    def apply(self, text: str) -> None:
        """Load ``text`` atomically; raise ``CommandError`` (or ``NotAvailable``) on failure."""
        ...

    def cleanup(self) -> None:
        """Remove everything this backend ever installed (idempotent)."""
        ...

    def rules_present(self) -> bool:
        """Canary: are this backend's rules still installed? (False -> do a full sync.)"""
        ...


BackendFactory = Callable[[Runner], Backend]


def _ebpf(runner: Runner) -> Backend:
    # The eBPF data plane is its own package (testbed.proxy.ebpf, it manages its own
    # commands); until it is importable the placeholder says so.
    try:
        from testbed.proxy.ebpf import EbpfBackend
    except ImportError:
        from testbed.proxy.placeholder import EbpfPlaceholder

        return EbpfPlaceholder(runner)
    return EbpfBackend()


# Modules are imported lazily so a broken or slow optional backend cannot break the others.
_REGISTRY: dict[str, str | BackendFactory] = {
    "iptables": "testbed.proxy.iptables:IptablesBackend",
    "nftables": "testbed.proxy.nftables:NftablesBackend",
    "ipvs": "testbed.proxy.ipvs:IpvsBackend",
    "ebpf": _ebpf,
}


def register_backend(mode: str, factory: str | BackendFactory) -> None:
    """Add or replace a mode: ``factory`` is ``"module:Class"`` or a callable taking a Runner."""
    _REGISTRY[mode] = factory


def modes() -> tuple[str, ...]:
    """The registered proxy mode names."""
    return tuple(_REGISTRY)


def get_backend(mode: str, netns: str | None = None, require_available: bool = False) -> Backend:
    """Instantiate the backend for ``mode`` (optionally operating inside network namespace
    ``netns``). With ``require_available`` raise :class:`NotAvailable` when it cannot run."""
    try:
        factory = _REGISTRY[mode]
    except KeyError:
        raise ValueError(f"unknown proxy mode {mode!r}; known: {', '.join(modes())}") from None
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(module), attr)
    backend = factory(Runner(netns))
    if require_available:
        avail = backend.available()
        if not avail.ok:
            raise NotAvailable(mode, avail.reason)
    return backend


def sync(backend: Backend, old: ProxyModel | None, new: ProxyModel, ctx: NodeContext) -> str:
    """Converge the kernel to ``new``: incremental when ``old`` is what was last applied,
    full otherwise or when the incremental load fails (state drifted). Returns
    ``"incremental"``, ``"full"`` or ``"unchanged"``."""
    if old is not None:
        if old == new:
            return "unchanged"
        text = backend.render_incremental(old, new, ctx)
        if text is not None:
            try:
                backend.apply(text)
                return "incremental"
            except CommandError:
                pass  # level-triggered: fall through to a full resync
    backend.apply(backend.render(new, ctx))
    return "full"
