"""Mode registry, availability reporting and the sync helper."""

from __future__ import annotations

import sys

import pytest

from testbed.proxy import base
from testbed.proxy.base import Availability, Backend, NotAvailable, get_backend, modes, sync
from testbed.proxy.ipvs import NO_IPVS, IpvsBackend
from testbed.proxy.model import ProxyModel
from testbed.proxy.placeholder import EbpfPlaceholder
from testbed.proxy.runner import CmdResult, CommandError

from .fakes import FakeRunner
from .samples import CTX


def test_modes_and_protocol():
    assert set(modes()) >= {"iptables", "nftables", "ipvs", "ebpf"}
    for mode in ("iptables", "nftables", "ipvs"):
        backend = get_backend(mode)
        assert backend.name == mode and isinstance(backend, Backend)


def test_unknown_mode():
    with pytest.raises(ValueError, match="unknown proxy mode 'userspace'"):
        get_backend("userspace")


def test_ipvs_reports_the_missing_kernel_part(tmp_path):
    missing = IpvsBackend(FakeRunner(lambda argv, stdin: (1, "", "no ip_vs")),
                          proc_path=str(tmp_path / "nope"))  # fmt: skip
    assert missing.available() == Availability(False, NO_IPVS)
    assert NO_IPVS == "kernel has no IP_VS support (CONFIG_IP_VS); ipvs mode unavailable"
    with pytest.raises(NotAvailable) as err:
        missing.apply("")
    assert err.value.reason == NO_IPVS and err.value.mode == "ipvs"
    with pytest.raises(NotImplementedError):
        missing.render(ProxyModel(), CTX)
    present = tmp_path / "ip_vs"
    present.write_text("")
    assert IpvsBackend(FakeRunner(), proc_path=str(present)).available().ok


def test_ipvs_unavailable_on_this_kernel():
    # DESIGN.md: IP_VS is not built into the project's kernel and modules cannot load.
    import os

    if os.path.exists("/proc/net/ip_vs"):
        pytest.skip("this kernel has IP_VS")
    assert get_backend("ipvs").available() == Availability(False, NO_IPVS)


def test_require_available_raises_with_the_reason(monkeypatch):
    monkeypatch.setattr(IpvsBackend, "available", lambda self: Availability(False, NO_IPVS))
    with pytest.raises(NotAvailable, match=r"ipvs.*CONFIG_IP_VS"):
        get_backend("ipvs", require_available=True)


def test_ebpf_placeholder_and_registry_fallback(monkeypatch):
    placeholder = EbpfPlaceholder()
    assert placeholder.available() == Availability(False, "ebpf backend not built yet")
    with pytest.raises(NotAvailable, match="not built yet"):
        placeholder.render(ProxyModel(), CTX)
    monkeypatch.setitem(sys.modules, "testbed.proxy.ebpf", None)  # import now fails
    backend = get_backend("ebpf")
    assert isinstance(backend, EbpfPlaceholder) and not backend.rules_present()


def test_ebpf_mode_always_answers_availability():
    avail = get_backend("ebpf").available()
    assert isinstance(avail, Availability) and (avail.ok or avail.reason)


def test_register_backend_replaces_a_mode(monkeypatch):
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    base.register_backend("ebpf", lambda runner: EbpfPlaceholder(runner))
    assert get_backend("ebpf", netns="x").runner.netns == "x"


class Recorder:
    name = "fake"

    def __init__(self, fail_incremental: bool = False, incremental: str | None = "inc"):
        self.applied: list[str] = []
        self.fail_incremental = fail_incremental
        self.incremental = incremental

    def render(self, model, ctx):
        return "full"

    def render_incremental(self, old, new, ctx):
        return self.incremental

    def apply(self, text):
        if text == "inc" and self.fail_incremental:
            raise CommandError(CmdResult(("nft",), 1, "", "state drifted"))
        self.applied.append(text)


def test_sync_helper_paths():
    from testbed.proxy.bench import synthetic_model

    a, b = synthetic_model(2), synthetic_model(3)
    r = Recorder()
    assert sync(r, None, a, CTX) == "full" and r.applied == ["full"]
    assert sync(r, a, synthetic_model(2), CTX) == "unchanged"
    assert sync(r, a, b, CTX) == "incremental" and r.applied[-1] == "inc"
    r = Recorder(fail_incremental=True)
    assert sync(r, a, b, CTX) == "full" and r.applied == ["full"]
    r = Recorder(incremental=None)
    assert sync(r, a, b, CTX) == "full"


def test_root_tests_skip_with_a_precise_reason_when_not_root(monkeypatch):
    from . import rootnet

    monkeypatch.setattr(rootnet.os, "geteuid", lambda: 1000)
    assert rootnet.skip_reason() == (
        "needs root (creates network namespaces and loads iptables/nftables rules)"
    )
