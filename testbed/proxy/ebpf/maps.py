"""Execute rendered map operations against the pinned maps, and read them back for `dump()`.

Operations run strictly in the order rendered (each op is one or a few batch syscalls).
`prune` deletes live keys that the same full render did not write.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from testbed.proxy.ebpf import layout as L
from testbed.proxy.ebpf.syscall import MapIO


class MapSet:
    """File descriptors of one node's pinned maps."""

    def __init__(self, io: MapIO, pin: dict[str, Path]) -> None:
        self.io = io
        self.pin = pin
        self.fds: dict[str, int] = {}

    def fd(self, name: str) -> int:
        """The fd of map `name`, opening its pin on first use."""
        if name not in self.fds:
            self.fds[name] = self.io.open(str(self.pin[name]))
        return self.fds[name]

    def close(self) -> None:
        """Close every open map fd."""
        for fd in self.fds.values():
            self.io.close(fd)
        self.fds.clear()

    def items(self, name: str) -> list[tuple[bytes, bytes]]:
        """Every (key, value) of map `name`."""
        spec = L.MAPS[name]
        return self.io.items(self.fd(name), spec.key_size, spec.value_size)

    def apply(self, doc: dict) -> dict[str, int]:
        """Run the operations of a rendered document; returns counts per op kind."""
        written: dict[str, set[bytes]] = defaultdict(set)
        counts = {"update": 0, "delete": 0, "prune": 0}
        for op in doc["ops"]:
            name = op["map"]
            if op["op"] == "update":
                pairs = [(bytes.fromhex(k), bytes.fromhex(v)) for k, v in op["entries"]]
                self.io.update(self.fd(name), pairs)
                written[name].update(k for k, _ in pairs)
                counts["update"] += len(pairs)
            elif op["op"] == "delete":
                keys = [bytes.fromhex(k) for k in op["keys"]]
                self.io.delete(self.fd(name), keys)
                counts["delete"] += len(keys)
            elif op["op"] == "prune":
                keep = written[name]
                stale = [k for k, _ in self.items(name) if k not in keep]
                self.io.delete(self.fd(name), stale)
                counts["prune"] += len(stale)
            else:
                raise ValueError(f"unknown map operation {op['op']!r}")
        return counts

    def live_ids(self) -> dict[bytes, int]:
        """Frontend key → service id, from the live svc map (to keep ids across restarts)."""
        return {k: int.from_bytes(v[:4], "little") for k, v in self.items("svc")}

    def dump(self) -> dict:
        """Readable contents: frontends with their backend slots, affinity entries, config."""
        slots: dict[tuple[int, int], list[dict]] = defaultdict(list)
        for k, v in self.items("be"):
            b = L.decode_be(k, v)
            slots[(b["id"], b["gen"])].append(b)
        services = []
        for k, v in sorted(self.items("svc")):
            s = L.decode_svc_key(k) | L.decode_svc_val(v)
            got = sorted(slots.get((s["id"], s["gen"]), []), key=lambda b: b["slot"])
            s["backends"] = [b["backend"] for b in got]
            services.append(s)
        affinity = [L.decode_aff(k, v) for k, v in self.items("aff")]
        cfg = dict(self.items("cfg"))
        node_ip = ".".join(str(b) for b in cfg.get(L.CFG_KEY, b"\0" * 8)[:4])
        return {"nodeIP": node_ip, "services": services, "affinity": affinity,
                "backendSlots": sum(len(v) for v in slots.values()),
                "reverseNat": len(self.items("rev"))}


def dump_text(d: dict) -> str:
    """`testbed get bpf`-style text of a dump."""
    lines = [f"node IP (SNAT): {d['nodeIP']}", "FRONTEND                 PROTO SCOPE ID     "
             "GEN        FLAGS          BACKENDS"]
    for s in d["services"]:
        flags = ",".join(f for f, on in (("affinity", s["affinity"]), ("no-snat", not s["snat"]))
                         if on) or "-"
        backends = " ".join(s["backends"]) or ("<none: refuse>" if s["scope"] == "sock"
                                               else "<none: drop>")
        lines.append(f"{s['frontend']:<24} {s['proto']:<5} {s['scope']:<5} {s['id']:<6} "
                     f"{s['gen']:<10} {flags:<14} {backends}")
    lines.append(f"affinity entries: {len(d['affinity'])}")
    lines += [f"  svc {a['id']} client {a['client']} -> {a['backend']}" for a in d["affinity"]]
    lines.append(f"backend slots: {d['backendSlots']}  reverse-NAT sockets: {d['reverseNat']}")
    return "\n".join(lines)


def parse(text: str) -> dict:
    """A rendered document from its JSON text."""
    doc = json.loads(text)
    if doc.get("kind") not in ("full", "incremental"):
        raise ValueError("not an ebpf proxy render")
    return doc
