"""Fakes for the ebpf proxy's kernel edges: a dict-backed bpf() map layer and a command
runner that simulates bpftool/tc/nft/mount on a temporary directory tree."""

from __future__ import annotations

import json
from pathlib import Path

from testbed.proxy.ebpf import layout as L
from testbed.proxy.runner import CmdResult as Result


class FakeMapIO:
    """MapIO over dicts; `log` records every element operation in order, and `check` (if
    set) runs after each one, like a concurrent reader that must never see a broken state."""

    def __init__(self) -> None:
        self.maps: dict[str, dict[bytes, bytes]] = {}
        self.fds: dict[int, str] = {}
        self.log: list[tuple[str, str, bytes]] = []
        self.check = None

    def name(self, fd: int) -> str:
        """Map short name of an fd."""
        return Path(self.fds[fd]).name.split("_")[0]

    def open(self, path: str) -> int:
        """Open a (fake) pin."""
        if not Path(path).exists():
            raise FileNotFoundError(path)
        fd = len(self.fds) + 3
        self.fds[fd] = path
        self.maps.setdefault(path, {})
        return fd

    def close(self, fd: int) -> None:
        """Nothing to close."""
        pass

    def update(self, fd: int, pairs) -> None:
        """Write entries one by one (logged, checked)."""
        spec = L.MAPS[self.name(fd)]
        for k, v in pairs:
            assert len(k) == spec.key_size and len(v) == spec.value_size
            self.maps[self.fds[fd]][k] = v
            self.log.append(("update", self.name(fd), k))
            if self.check:
                self.check(self)

    def delete(self, fd: int, keys) -> None:
        """Delete keys one by one (logged, checked)."""
        for k in keys:
            self.maps[self.fds[fd]].pop(k, None)
            self.log.append(("delete", self.name(fd), k))
            if self.check:
                self.check(self)

    def items(self, fd: int, key_size: int, value_size: int):
        """All entries."""
        return list(self.maps[self.fds[fd]].items())

    def by_name(self, short: str) -> dict[bytes, bytes]:
        """The entries of the map whose pin starts with `short`."""
        for path, kv in self.maps.items():
            if Path(path).name.startswith(short + "_"):
                return kv
        return {}


class FakeKernel:
    """Runner simulating bpftool/tc/nft/mount: pins are plain files under tmp paths."""

    def __init__(self, paths) -> None:
        self.paths = paths
        self.calls: list[list[str]] = []
        self.next_id = 100
        self.ids: dict[str, int] = {}  # pin path -> prog id
        self.cgroup: list[dict] = []
        self.tc: int | None = None
        self.clsact = False

    def _prog_id(self, pin: str) -> int:
        if pin not in self.ids:
            self.next_id += 1
            self.ids[pin] = self.next_id
        return self.ids[pin]

    def __call__(self, cmd: list[str], stdin: str | None = None) -> Result:
        self.calls.append(cmd)
        ok = Result(tuple(cmd), 0, "", "")
        if cmd[:3] == ["bpftool", "prog", "loadall"]:
            obj, prog_dir = cmd[3], Path(cmd[4])
            prog_dir.mkdir(parents=True)
            shorts = ["np"] if "nodeport" in obj else ["c4", "sm4", "rm4", "gp4"]
            for s in shorts:
                pin = prog_dir / f"{s}_{self.paths.tag}"
                pin.touch()
                self.ids.pop(str(pin), None)
            if "pinmaps" in cmd:
                for m in L.MAPS:
                    (Path(cmd[cmd.index("pinmaps") + 1]) / f"{m}_{self.paths.tag}").touch()
            return ok
        if cmd[:4] == ["bpftool", "-j", "prog", "show"]:
            return Result(tuple(cmd), 0, json.dumps({"id": self._prog_id(cmd[5])}), "")
        if cmd[:4] == ["bpftool", "-j", "cgroup", "show"]:
            return Result(tuple(cmd), 0, json.dumps(self.cgroup), "")
        if cmd[:3] == ["bpftool", "cgroup", "attach"]:
            pin = cmd[6]
            self.cgroup.append({"id": self._prog_id(pin), "attach_type": cmd[4],
                                "attach_flags": "multi", "name": Path(pin).name})
            return ok
        if cmd[:3] == ["bpftool", "cgroup", "detach"]:
            self.cgroup = [a for a in self.cgroup if a["id"] != int(cmd[6])]
            return ok
        if cmd[:3] == ["tc", "qdisc", "show"]:
            return Result(tuple(cmd), 0, "qdisc clsact ffff: parent ffff:fff1\n"
                          if self.clsact else "qdisc noqueue 0: root\n", "")
        if cmd[:3] == ["tc", "qdisc", "add"]:
            self.clsact = True
            return ok
        if cmd[:3] == ["tc", "qdisc", "del"]:
            self.clsact = False
            return ok
        if cmd[:3] == ["tc", "filter", "show"]:
            if self.tc is None or cmd[-1] != "ingress":
                return ok
            return Result(tuple(cmd), 0, "filter protocol all pref 7100 bpf chain 0 handle 0x1 "
                          f"np_{self.paths.tag}:[*fsobj] direct-action not_in_hw id {self.tc} "
                          f"name np_{self.paths.tag} tag 1 jited\n", "")
        if cmd[:3] == ["tc", "filter", "replace"]:
            self.tc = self._prog_id(cmd[-1])
            return ok
        if cmd[:3] == ["tc", "filter", "del"]:
            self.tc = None
            return ok
        if cmd[0] in ("nft", "mount"):
            return ok
        raise AssertionError(f"unexpected command {cmd}")
