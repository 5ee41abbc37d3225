"""Load, pin, attach and remove the BPF programs of one node (bpftool, tc, nft, mount).

Pins live under `/sys/fs/bpf/testbed-<testbed>-<node>/` (maps/, progs/sock/, progs/tc/);
kernel-visible map and program names end in a per-testbed, per-node tag because BPF object
names and IDs are host-global. `ensure()` is idempotent and converges from any partial state;
`cleanup()` detaches and unpins everything this node's proxy made.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from testbed.proxy.ebpf.layout import MAPS, TAG_PLACEHOLDER
from testbed.proxy.runner import CmdResult

SOCK_PROGS = (("c4", "connect4"), ("sm4", "sendmsg4"), ("rm4", "recvmsg4"),
              ("gp4", "getpeername4"))
TC_PROG = "np"
TC_PREF = 7100
NAT_TABLE = "testbed_ebpf_{tag}"
# Empty NAT base chains: they register conntrack + NAT hooks in the node's netns, which the
# conntrack entries created by the tc program's kfuncs need to be NATed by the kernel.
NAT_HOOKS = """table ip {table} {{
  chain pre {{ type nat hook prerouting priority dstnat; policy accept; }}
  chain post {{ type nat hook postrouting priority srcnat; policy accept; }}
}}
"""


Runner = Callable[[list[str], str | None], CmdResult]


def run_cmd(cmd: list[str], stdin: str | None = None) -> CmdResult:
    """Run a command, capturing output (the real Runner)."""
    p = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    return CmdResult(tuple(cmd), p.returncode, p.stdout, p.stderr)


def make_tag(testbed: str, node: str) -> str:
    """8 identifier characters naming this testbed+node: a readable prefix + a hash."""
    prefix = re.sub(r"[^a-z0-9]", "", testbed.lower())[:4]
    digest = hashlib.sha1(f"{testbed}/{node}".encode()).hexdigest()
    return (prefix + digest)[:8]


@dataclass(frozen=True)
class Paths:
    """Where one node's proxy keeps its BPF state."""

    testbed: str
    node: str
    bpffs: str = "/sys/fs/bpf"
    cgroup2: str = "/run/testbed/cgroup2"
    work: str = "/run/testbed/ebpf"
    mounts: str = "/proc/self/mounts"
    proc_cgroup: str = "/proc/self/cgroup"

    @property
    def tag(self) -> str:
        """The 8-character name suffix of this testbed+node."""
        return make_tag(self.testbed, self.node)

    @property
    def root(self) -> Path:
        """The pin directory: /sys/fs/bpf/testbed-<testbed>-<node>."""
        return Path(self.bpffs) / f"testbed-{self.testbed}-{self.node}"

    def map_name(self, short: str) -> str:
        """Kernel-visible name of a map."""
        return f"{short}_{self.tag}"

    def map_pin(self, short: str) -> Path:
        """Pin path of a map."""
        return self.root / "maps" / self.map_name(short)

    def prog_pin(self, short: str) -> Path:
        """Pin path of a program (socket programs and the tc program in separate dirs)."""
        sub = "tc" if short == TC_PROG else "sock"
        return self.root / "progs" / sub / f"{short}_{self.tag}"


def patch_object(data: bytes, tag: str) -> bytes:
    """Rename every map/program in an object: the placeholder becomes the tag (same length)."""
    if len(tag) != len(TAG_PLACEHOLDER) or not re.fullmatch(r"[a-z0-9_]+", tag):
        raise ValueError(f"bad tag {tag!r}")
    return data.replace(TAG_PLACEHOLDER, tag.encode())


class Loader:
    """Brings one node's programs and maps to the desired state, or removes them."""

    def __init__(self, paths: Paths, run: Runner = run_cmd, uplink: str = "eth0",
                 objects: Callable[[], dict[str, Path]] | None = None) -> None:
        self.paths = paths
        self.run = run
        self.uplink = uplink
        self._objects = objects

    # ---- mounts -------------------------------------------------------------------------
    def _mounts(self) -> list[tuple[str, str]]:
        """(mount point, fs type) pairs."""
        with open(self.paths.mounts) as f:
            return [(p[1], p[2]) for p in (line.split() for line in f) if len(p) > 2]

    def ensure_bpffs(self) -> None:
        """Mount bpffs at the pin root's filesystem if this mount namespace lacks one."""
        if (self.paths.bpffs, "bpf") not in self._mounts():
            os.makedirs(self.paths.bpffs, exist_ok=True)
            self.run(["mount", "-t", "bpf", "bpf", self.paths.bpffs], None).check()

    def cgroup_dir(self, mount: bool = True) -> str | None:
        """This node's own cgroup in the unified (v2) tree; mounts cgroup2 if needed."""
        points = [p for p, t in self._mounts() if t == "cgroup2"]
        if not points:
            if not mount:
                return None
            os.makedirs(self.paths.cgroup2, exist_ok=True)
            self.run(["mount", "-t", "cgroup2", "none", self.paths.cgroup2], None).check()
            points = [self.paths.cgroup2]
        rel = "/"
        with open(self.paths.proc_cgroup) as f:
            for line in f:
                if line.startswith("0::"):
                    rel = line[3:].strip()
        return os.path.normpath(points[0] + "/" + rel.lstrip("/"))

    # ---- load ----------------------------------------------------------------------------
    def _patched(self) -> dict[str, Path]:
        from testbed.proxy.ebpf.build import ensure_objects

        objs = (self._objects or ensure_objects)()
        out_dir = Path(self.paths.work) / self.paths.tag
        out_dir.mkdir(parents=True, exist_ok=True)
        out = {}
        for name, src in objs.items():
            dst = out_dir / f"{name}.o"
            dst.write_bytes(patch_object(src.read_bytes(), self.paths.tag))
            out[name] = dst
        return out

    def _maps_args(self) -> list[str]:
        args: list[str] = []
        for short in MAPS:
            args += ["map", "name", self.paths.map_name(short), "pinned",
                     str(self.paths.map_pin(short))]
        return args

    def load(self) -> bool:
        """Load and pin whatever is missing; True if any program was (re)loaded."""
        root = self.paths.root
        if not all(self.paths.map_pin(m).exists() for m in MAPS):
            _rmtree(root)  # partial or no state: start clean
        objs = None
        changed = False
        for obj, shorts in (("sock_lb", [s for s, _ in SOCK_PROGS]), ("nodeport", [TC_PROG])):
            if all(self.paths.prog_pin(s).exists() for s in shorts):
                continue
            objs = objs or self._patched()
            prog_dir = self.paths.prog_pin(shorts[0]).parent
            _rmtree(prog_dir)
            (root / "maps").mkdir(parents=True, exist_ok=True)
            prog_dir.parent.mkdir(parents=True, exist_ok=True)
            cmd = ["bpftool", "prog", "loadall", str(objs[obj]), str(prog_dir)]
            if all(self.paths.map_pin(m).exists() for m in MAPS):
                cmd += self._maps_args()
            else:
                cmd += ["pinmaps", str(root / "maps")]
            self.run(cmd, None).check()
            changed = True
        return changed

    def prog_id(self, short: str) -> int:
        """Kernel ID of a pinned program."""
        res = self.run(["bpftool", "-j", "prog", "show", "pinned",
                        str(self.paths.prog_pin(short))], None).check()
        return int(json.loads(res.stdout)["id"])

    # ---- attach --------------------------------------------------------------------------
    def cgroup_attached(self, cg: str) -> list[dict]:
        """Programs attached directly to the node's cgroup (bpftool's JSON)."""
        res = self.run(["bpftool", "-j", "cgroup", "show", cg], None)
        if res.rc != 0 or not res.stdout.strip():
            return []
        return json.loads(res.stdout)

    def attach_cgroup(self) -> None:
        """Attach (multi) the socket programs; replace stale attachments of ours."""
        cg = self.cgroup_dir()
        attached = self.cgroup_attached(cg)
        for short, atype in SOCK_PROGS:
            want = self.prog_id(short)
            name = f"{short}_{self.paths.tag}"
            ours = [a for a in attached if a.get("name") == name]
            for a in ours:
                if a["id"] != want:
                    self.run(["bpftool", "cgroup", "detach", cg, a["attach_type"], "id",
                              str(a["id"])], None).check()
            if not any(a["id"] == want for a in ours):
                self.run(["bpftool", "cgroup", "attach", cg, atype, "pinned",
                          str(self.paths.prog_pin(short)), "multi"], None).check()

    def tc_filter_id(self) -> int | None:
        """ID of the program in our filter on the uplink's ingress, if any."""
        res = self.run(["tc", "filter", "show", "dev", self.uplink, "ingress"], None)
        for line in res.stdout.splitlines():
            if f"pref {TC_PREF} " in line and f"{TC_PROG}_{self.paths.tag}" in line:
                m = re.search(r"\bid (\d+)", line)
                return int(m.group(1)) if m else None
        return None

    def attach_tc(self) -> None:
        """clsact on the uplink + our direct-action filter (replaced if stale)."""
        qdiscs = self.run(["tc", "qdisc", "show", "dev", self.uplink], None).check()
        if "qdisc clsact" not in qdiscs.stdout:
            self.run(["tc", "qdisc", "add", "dev", self.uplink, "clsact"], None).check()
        if self.tc_filter_id() != self.prog_id(TC_PROG):
            self.run(["tc", "filter", "replace", "dev", self.uplink, "ingress", "pref",
                      str(TC_PREF), "handle", "1", "bpf", "da", "pinned",
                      str(self.paths.prog_pin(TC_PROG))], None).check()

    def ensure(self) -> None:
        """Mounts, programs, maps, attachments, NAT hooks: create whatever is missing."""
        self.ensure_bpffs()
        self.load()
        self.attach_cgroup()
        self.attach_tc()
        self.run(["nft", "-f", "-"], NAT_HOOKS.format(table=self.nat_table)).check()

    @property
    def nat_table(self) -> str:
        """This node proxy's own nftables table (NAT hooks only, no rules)."""
        return NAT_TABLE.format(tag=self.paths.tag)

    # ---- canary / cleanup ----------------------------------------------------------------
    def present(self) -> bool:
        """Maps and programs pinned, socket programs on the cgroup, tc filter on the uplink."""
        pins = [self.paths.map_pin(m) for m in MAPS]
        pins += [self.paths.prog_pin(s) for s, _ in SOCK_PROGS] + [self.paths.prog_pin(TC_PROG)]
        if not all(p.exists() for p in pins):
            return False
        cg = self.cgroup_dir(mount=False)
        names = {a.get("name") for a in self.cgroup_attached(cg)} if cg else set()
        if not all(f"{s}_{self.paths.tag}" in names for s, _ in SOCK_PROGS):
            return False
        return self.tc_filter_id() is not None

    def cleanup(self) -> None:
        """Detach from tc and the cgroup, drop the NAT hook table, unpin, remove objects."""
        if self.tc_filter_id() is not None:  # only our own filter (name carries the tag)
            self.run(["tc", "filter", "del", "dev", self.uplink, "ingress", "pref",
                      str(TC_PREF)], None)
        left = "".join(self.run(["tc", "filter", "show", "dev", self.uplink, d], None).stdout
                       for d in ("ingress", "egress"))
        if not left.strip():
            self.run(["tc", "qdisc", "del", "dev", self.uplink, "clsact"], None)
        cg = self.cgroup_dir()
        for a in self.cgroup_attached(cg) if cg else []:
            if str(a.get("name", "")).endswith(f"_{self.paths.tag}"):
                self.run(["bpftool", "cgroup", "detach", cg, a["attach_type"], "id",
                          str(a["id"])], None).check()
        self.run(["nft", "delete", "table", "ip", self.nat_table], None)
        _rmtree(self.paths.root)
        shutil.rmtree(Path(self.paths.work) / self.paths.tag, ignore_errors=True)


def _rmtree(path: Path) -> None:
    """Remove a pin tree (bpffs allows unlink/rmdir only, which is all rmtree does)."""
    if path.exists():
        shutil.rmtree(path)
