"""Fixtures for the ebpf proxy tests: temporary pin tree, fake kernel, fake maps."""

from __future__ import annotations

import pytest

from testbed.proxy.ebpf.backend import EbpfBackend
from testbed.proxy.ebpf.layout import TAG_PLACEHOLDER
from testbed.proxy.ebpf.loader import Loader, Paths

from .fakes import FakeKernel, FakeMapIO


@pytest.fixture
def paths(tmp_path) -> Paths:
    """Paths under tmp_path with fake mounts and cgroup."""
    bpffs, cg2 = tmp_path / "bpffs", tmp_path / "cgroup2"
    bpffs.mkdir()
    (cg2 / "docker" / "abc").mkdir(parents=True)
    mounts = tmp_path / "mounts"
    mounts.write_text(f"bpf {bpffs} bpf rw 0 0\nnone {cg2} cgroup2 rw 0 0\n")
    cgroup = tmp_path / "cgroup"
    cgroup.write_text("1:cpu:/docker/abc\n0::/docker/abc\n")
    return Paths("tb1", "worker", bpffs=str(bpffs), cgroup2=str(cg2),
                 work=str(tmp_path / "work"), mounts=str(mounts), proc_cgroup=str(cgroup))


@pytest.fixture
def objects(tmp_path):
    """Fake BPF objects carrying the tag placeholder."""
    objs = {}
    for name in ("sock_lb", "nodeport"):
        p = tmp_path / f"{name}.o"
        p.write_bytes(b"\x7fELF...svc_" + TAG_PLACEHOLDER + b"\0c4_" + TAG_PLACEHOLDER + b"\0")
        objs[name] = p
    return lambda: objs


@pytest.fixture
def kernel(paths) -> FakeKernel:
    """The fake kernel."""
    return FakeKernel(paths)


@pytest.fixture
def loader(paths, kernel, objects) -> Loader:
    """A Loader over the fake kernel."""
    return Loader(paths, kernel, objects=objects)


@pytest.fixture
def backend(paths, kernel, loader) -> EbpfBackend:
    """An EbpfBackend over fakes."""
    b = EbpfBackend(paths=paths, io=FakeMapIO(), run=kernel)
    b.loader = loader
    return b
