"""`kubeProxyMode: ebpf` as a proxy backend: render (pure), apply (bpf() syscalls), canary,
cleanup and dump, over the loader and the map layer.

State kept between syncs: the service-port ids and the plans last applied, so an incremental
sync renders only the service ports whose model changed. A fresh process recovers ids from the
live maps, so a restart's full sync does not renumber services (affinity entries survive).
"""

from __future__ import annotations

import json
import os
import shutil
import socket

from testbed.proxy.base import Availability
from testbed.proxy.ebpf import layout as L
from testbed.proxy.ebpf.adapt import ident_of, plan_of
from testbed.proxy.ebpf.build import find_objects
from testbed.proxy.ebpf.loader import Loader, Paths, Runner, run_cmd
from testbed.proxy.ebpf.maps import MapSet, dump_text, parse
from testbed.proxy.ebpf.render import SvcPlan, render_full, render_incremental
from testbed.proxy.ebpf.syscall import MapIO, bpf_syscall_works
from testbed.proxy.gcpause import paused_gc
from testbed.proxy.model import changed_ports
from testbed.proxy.runner import CmdResult, CommandError

KFUNCS = ("bpf_skb_ct_lookup", "bpf_skb_ct_alloc", "bpf_ct_set_nat_info",
          "bpf_ct_insert_entry", "bpf_ct_release")
VMLINUX_BTF = "/sys/kernel/btf/vmlinux"


def missing_kernel_parts(btf_path: str = VMLINUX_BTF,
                         filesystems: str = "/proc/filesystems") -> list[str]:
    """What this kernel lacks for the ebpf proxy (empty list: nothing)."""
    missing = []
    try:
        with open(filesystems) as f:
            fs = {line.split()[-1] for line in f if line.strip()}
    except OSError:
        fs = set()
    for name, why in (("bpf", "bpffs (filesystem type bpf) to pin maps and programs"),
                      ("cgroup2", "cgroup2 filesystem to attach socket programs")):
        if name not in fs:
            missing.append(why)
    try:
        with open(btf_path, "rb") as f:
            btf = f.read()
    except OSError:
        return [*missing, f"kernel BTF at {btf_path} (needed for the conntrack kfuncs)"]
    absent = [k for k in KFUNCS if b"\0" + k.encode() + b"\0" not in btf]
    if absent:
        missing.append(f"conntrack kfuncs in vmlinux BTF: {', '.join(absent)} "
                       "(kernel without CONFIG_NF_CONNTRACK/NF_NAT BPF support)")
    return missing


def _error(what: str, why: str) -> CommandError:
    return CommandError(CmdResult(("ebpf", what), 1, "", why))


class EbpfBackend:
    """Socket-LB (cgroup connect/sendmsg/recvmsg/getpeername) + tc NodePort via kernel NAT."""

    name = "ebpf"

    def __init__(self, runner=None, *, testbed: str | None = None, node: str | None = None,
                 io: MapIO | None = None, run: Runner = run_cmd, uplink: str = "eth0",
                 paths: Paths | None = None) -> None:
        # `runner` (testbed.proxy.runner.Runner, as the registry passes it) is accepted for
        # the factory signature; programs attach to the node's cgroup and uplink, so a
        # runner bound to another netns cannot be honoured: available() says so.
        self.netns = getattr(runner, "netns", None)
        self.paths = paths or Paths(testbed or os.environ.get("TESTBED_NAME", "default"),
                                    node or os.environ.get("TESTBED_NODE")
                                    or socket.gethostname())
        self.loader = Loader(self.paths, run, uplink)
        self._io = io
        self._maps: MapSet | None = None
        self.ids: dict[str, int] | None = None
        self.plans: dict[str, SvcPlan] | None = None
        self.node_ip: str | None = None
        self._pending: tuple[str, dict[str, SvcPlan], str] | None = None

    # ---- availability --------------------------------------------------------------------
    def available(self) -> Availability:
        """Ok, or exactly what is missing (syscall, filesystems, BTF/kfuncs, tools)."""
        missing = []
        if self.netns:
            missing.append(f"ebpf mode programs a node, not network namespace {self.netns!r}")
        why = bpf_syscall_works()
        if why:
            missing.append(why)
        missing += missing_kernel_parts()
        tools = ["bpftool", "tc", "nft", "mount"]
        if find_objects() is None:
            tools.append("clang")  # objects must be compiled on first load
        missing += [f"{t} not installed" for t in tools if shutil.which(t) is None]
        if missing:
            return Availability(False, "; ".join(missing))
        return Availability(True, "")

    # ---- render --------------------------------------------------------------------------
    def _plans(self, model, ctx) -> dict[str, SvcPlan]:
        out = {}
        for svc in model.services:
            plan = plan_of(svc, ctx)
            if plan is not None:
                out[plan.ident] = plan
        return out

    @paused_gc
    def render(self, model, ctx) -> str:
        """Full sync document: every entry, then prune of anything else in the maps."""
        self.loader.uplink = getattr(ctx, "interface", None) or self.loader.uplink
        plans = self._plans(model, ctx)
        ids = self.ids if self.ids is not None else self._recover_ids(plans)
        text = render_full(plans, ctx.node_ip, ids).to_json()
        self._pending = (text, plans, ctx.node_ip)
        return text

    @paused_gc
    def render_incremental(self, old, new, ctx) -> str | None:
        """Only the service ports whose model changed; None asks for a full render."""
        if self.ids is None or self.plans is None or ctx.node_ip != self.node_ip:
            return None
        gone, changed = changed_ports(old.services, new.services)
        touched = {ident_of(s) for s in gone} | {ident_of(s) for s in changed}
        before = {i: self.plans[i] for i in touched if i in self.plans}
        after = {}
        for svc in changed:
            plan = plan_of(svc, ctx)
            if plan is not None:
                after[plan.ident] = plan
        text = render_incremental(before, after, self.ids).to_json()
        plans = dict(self.plans)  # a C-level copy: this path must not be O(services) in Python
        for ident in touched:
            plans.pop(ident, None)
        plans.update(after)
        self._pending = (text, plans, ctx.node_ip)
        return text

    def _recover_ids(self, plans: dict[str, SvcPlan]) -> dict[str, int]:
        """Ids a previous process gave these service ports, read from the live svc map."""
        if not self.paths.map_pin("svc").exists():
            return {}
        try:
            live = self.maps().live_ids()
        except OSError:
            return {}
        ids, used = {}, set()
        for ident in sorted(plans):
            for g in plans[ident].groups:
                for fe in g.frontends:
                    sid = live.get(L.svc_key(fe.ip, fe.port, plans[ident].proto, fe.scope))
                    if sid and sid not in used and ident not in ids:
                        ids[ident] = sid
                        used.add(sid)
        return ids

    # ---- apply ---------------------------------------------------------------------------
    def maps(self) -> MapSet:
        """The pinned maps (opened on first use)."""
        if self._maps is None:
            if self._io is None:
                from testbed.proxy.ebpf.syscall import KernelMapIO

                self._io = KernelMapIO()
            self._maps = MapSet(self._io, {m: self.paths.map_pin(m) for m in L.MAPS})
        return self._maps

    @paused_gc
    def apply(self, text: str) -> None:
        """Load/attach if needed (full syncs), then run the map operations in order."""
        doc = parse(text)
        if doc["kind"] == "incremental" and self.ids is None:
            raise _error("apply", "incremental ebpf render applied before any full sync")
        try:
            if doc["kind"] == "full":
                self.loader.ensure()
                if self._maps is not None:  # pins may have been recreated: reopen
                    self._maps.close()
                    self._maps = None
            self.maps().apply(doc)
        except OSError as exc:  # bpf() failures: the proxy's CommandError (→ full resync)
            self.ids = self.plans = None
            raise _error("bpf", str(exc)) from exc
        pending, self._pending = self._pending, None
        if doc["kind"] == "full":
            self.ids = dict(doc["ids"])
        else:
            self.ids = {i: n for i, n in (self.ids or {}).items() if i not in doc["freed"]}
            self.ids.update(doc["ids"])
        if pending and pending[0] is text:
            self.plans, self.node_ip = pending[1], pending[2]
        else:  # a document rendered elsewhere: next sync must be full
            self.plans = None

    # ---- canary, cleanup, dump -----------------------------------------------------------
    def rules_present(self) -> bool:
        """Maps and programs pinned, programs attached to the cgroup and the uplink."""
        try:
            return self.loader.present()
        except OSError:
            return False

    def cleanup(self) -> None:
        """Detach and unpin everything this node's proxy made."""
        if self._maps is not None:
            self._maps.close()
            self._maps = None
        self.loader.cleanup()
        self.ids = self.plans = None

    def dump(self, as_json: bool = False) -> str:
        """Readable frontends → backends, affinity entries and config from the live maps."""
        if not self.paths.map_pin("svc").exists():
            return f"no ebpf proxy maps pinned at {self.paths.root}"
        d = self.maps().dump()
        return json.dumps(d, indent=2) if as_json else dump_text(d)
