"""Loader logic against a fake kernel: idempotent ensure, stale replacement, canary, cleanup."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.proxy.ebpf.layout import MAPS, TAG_PLACEHOLDER
from testbed.proxy.ebpf.loader import SOCK_PROGS, TC_PROG, make_tag, patch_object


def test_tag_is_short_stable_and_per_node():
    assert make_tag("tb1", "worker") == make_tag("tb1", "worker")
    assert make_tag("tb1", "worker") != make_tag("tb1", "worker2")
    assert len(make_tag("a-very-long-testbed-name", "n")) == len(TAG_PLACEHOLDER)
    assert make_tag("My-Bed", "n").startswith("mybe")


def test_patch_object_renames_every_occurrence_same_length():
    data = b"svc_QQTAGQQQ\0c4_QQTAGQQQ\0"
    out = patch_object(data, "ab12cd34")
    assert out == b"svc_ab12cd34\0c4_ab12cd34\0" and len(out) == len(data)
    with pytest.raises(ValueError):
        patch_object(data, "x")


def test_ensure_loads_pins_attaches(loader, kernel, paths):
    loader.ensure()
    assert all(paths.map_pin(m).exists() for m in MAPS)
    assert all(paths.prog_pin(s).exists() for s, _ in SOCK_PROGS)
    assert paths.prog_pin(TC_PROG).exists()
    assert str(paths.root).endswith("testbed-tb1-worker")
    loads = [c for c in kernel.calls if c[:3] == ["bpftool", "prog", "loadall"]]
    assert "pinmaps" in loads[0]  # first object creates the maps...
    assert "pinmaps" not in loads[1] and "map" in loads[1]  # ...the second reuses them
    cg = str(Path(paths.cgroup2) / "docker" / "abc")
    attaches = [c for c in kernel.calls if c[:3] == ["bpftool", "cgroup", "attach"]]
    assert [(c[3], c[4], c[-1]) for c in attaches] == [(cg, t, "multi") for _, t in SOCK_PROGS]
    assert kernel.clsact and kernel.tc is not None
    assert Path(paths.work, paths.tag, "sock_lb.o").read_bytes().count(paths.tag.encode()) == 2
    assert loader.present()


def test_ensure_is_idempotent(loader, kernel):
    loader.ensure()
    n = len(kernel.calls)
    loader.ensure()
    again = kernel.calls[n:]
    assert not [c for c in again if c[:3] in (["bpftool", "prog", "loadall"],
                                              ["bpftool", "cgroup", "attach"],
                                              ["tc", "filter", "replace"])]


def test_lost_pin_reloads_and_replaces_stale_attachment(loader, kernel, paths):
    loader.ensure()
    paths.prog_pin("c4").unlink()
    assert not loader.present()
    loader.ensure()
    ours = [a for a in kernel.cgroup if a["name"] == f"c4_{paths.tag}"]
    assert len(ours) == 1  # the old program was detached, the new one attached
    assert len(kernel.cgroup) == 4 and loader.present()


def test_partial_maps_start_clean(loader, kernel, paths):
    loader.ensure()
    paths.map_pin("be").unlink()
    loader.ensure()
    loads = [c for c in kernel.calls if c[:3] == ["bpftool", "prog", "loadall"]]
    assert "pinmaps" in loads[2]
    assert all(paths.map_pin(m).exists() for m in MAPS)


def test_canary_sees_detached_tc(loader, kernel):
    loader.ensure()
    kernel.tc = None
    assert not loader.present()


def test_cleanup_detaches_and_unpins(loader, kernel, paths):
    loader.ensure()
    loader.cleanup()
    assert kernel.cgroup == [] and kernel.tc is None and not kernel.clsact
    assert not paths.root.exists()
    assert not Path(paths.work, paths.tag).exists()
    assert ["nft", "delete", "table", "ip", f"testbed_ebpf_{paths.tag}"] in kernel.calls
    loader.cleanup()  # idempotent


def test_mounts_when_missing(loader, kernel, paths):
    Path(paths.mounts).write_text("proc /proc proc rw 0 0\n")
    Path(paths.proc_cgroup).write_text("0::/\n")
    loader.ensure_bpffs()
    assert loader.cgroup_dir() == paths.cgroup2
    assert ["mount", "-t", "bpf", "bpf", paths.bpffs] in kernel.calls
    assert ["mount", "-t", "cgroup2", "none", paths.cgroup2] in kernel.calls
