"""Pure renderer: service plans → BPF map entries → ordered map operations (JSON text).

A service port gets a stable numeric id. Each of its frontends (ClusterIP, NodePort on the
node IP, externalIPs, LoadBalancer IPs; per scope) points at a backend list stored as slots
`(id, gen, 0..n-1)`, where `gen` is a content hash of the list. A changed endpoint set
therefore lands in fresh slot keys: the diff writes the new slots first, flips the frontend
entry (one atomic map update), and only then deletes the old slots, so a client looping
requests during an endpoint update always finds a complete backend list.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field

from testbed.proxy.ebpf import layout as L

Entries = dict[str, dict[bytes, bytes]]  # map short name → {key: value}


@dataclass(frozen=True)
class Frontend:
    """An address a client uses: VIP/port and which program sees it (socket or tc)."""

    ip: str
    port: int
    scope: int = L.SCOPE_SOCK


@dataclass(frozen=True)
class Group:
    """Frontends that share one backend list (and SNAT behaviour)."""

    frontends: tuple[Frontend, ...]
    backends: tuple[tuple[str, int], ...]
    no_snat: bool = False


@dataclass(frozen=True)
class SvcPlan:
    """Everything the maps need to know about one service port."""

    ident: str
    proto: str
    groups: tuple[Group, ...]
    affinity_timeout: int = 0  # seconds; 0 = no ClientIP affinity


def gen_of(backends: tuple[tuple[str, int], ...]) -> int:
    """Content hash (never 0) of a backend list: its slot generation."""
    return zlib.crc32(repr(backends).encode()) or 1


def plan_entries(plan: SvcPlan, svc_id: int) -> Entries:
    """All map entries of one service port (pure)."""
    out: Entries = {"svc": {}, "be": {}, "bset": {}}
    flags_base = L.F_AFFINITY if plan.affinity_timeout else 0
    for group in plan.groups:
        backends = tuple(sorted(set(group.backends)))
        gen = gen_of(backends)
        flags = flags_base | (L.F_NO_SNAT if group.no_snat else 0)
        val = L.svc_val(svc_id, gen, len(backends), flags, plan.affinity_timeout)
        for fe in group.frontends:
            out["svc"][L.svc_key(fe.ip, fe.port, plan.proto, fe.scope)] = val
        for slot, (ip, port) in enumerate(backends):
            out["be"][L.be_key(svc_id, gen, slot)] = L.be_val(ip, port)
            if plan.affinity_timeout:
                out["bset"][L.bset_key(svc_id, gen, ip, port)] = L.BSET_VAL
    return out


def assign_ids(idents, ids: dict[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    """Keep known ids, give new service ports fresh ones (never one freed in the same step).

    Returns (all ids for `idents`, the newly assigned ones)."""
    out, new = {}, {}
    nxt = max(ids.values(), default=0) + 1
    for ident in sorted(idents):
        if ident in ids:
            out[ident] = ids[ident]
        else:
            out[ident] = new[ident] = nxt
            nxt += 1
    return out, new


def merge(parts) -> Entries:
    """Union of entry sets (later parts win on a key clash)."""
    out: Entries = {"svc": {}, "be": {}, "bset": {}}
    for part in parts:
        for m, kv in part.items():
            out.setdefault(m, {}).update(kv)
    return out


@dataclass
class Ops:
    """Ordered map operations plus the id bookkeeping the backend keeps after applying."""

    kind: str  # "full" or "incremental"
    ops: list[dict] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)  # full: all ids; incremental: added
    freed: list[str] = field(default_factory=list)

    def update(self, m: str, kv: dict[bytes, bytes]) -> None:
        """Append an update of `kv` to map `m` (skipped when empty)."""
        if kv:
            self.ops.append({"map": m, "op": "update",
                             "entries": [[k.hex(), v.hex()] for k, v in kv.items()]})

    def delete(self, m: str, keys) -> None:
        """Append a delete of `keys` from map `m` (skipped when empty)."""
        keys = [k.hex() for k in keys]
        if keys:
            self.ops.append({"map": m, "op": "delete", "keys": keys})

    def to_json(self) -> str:
        """The document `apply` consumes."""
        return json.dumps({"kind": self.kind, "ids": self.ids, "freed": self.freed,
                           "ops": self.ops}, separators=(",", ":"))


def render_full(plans: dict[str, SvcPlan], node_ip: str, ids: dict[str, int] | None = None
                ) -> Ops:
    """Desired state of every map; `prune` ops remove live keys not desired (after the flip)."""
    all_ids, _ = assign_ids(plans, ids or {})
    entries = merge(plan_entries(plans[i], all_ids[i]) for i in sorted(plans))
    ops = Ops("full", ids=all_ids)
    ops.update("cfg", {L.CFG_KEY: L.cfg_val(node_ip)})
    ops.update("be", entries["be"])
    ops.update("bset", entries["bset"])
    ops.update("svc", entries["svc"])
    for m in ("svc", "be", "bset"):
        ops.ops.append({"map": m, "op": "prune"})
    return ops


def diff(old: Entries, new: Entries, ops: Ops) -> Ops:
    """Append the operations turning `old` into `new` in flip-safe order:
    new slots/memberships, then frontends, then removed frontends, then removed slots."""
    def changed(m: str) -> dict[bytes, bytes]:
        """Entries of `m` that are new or different in `new`."""
        o, n = old.get(m, {}), new.get(m, {})
        return {k: v for k, v in n.items() if o.get(k) != v}

    def gone(m: str) -> list[bytes]:
        """Keys of `m` that `new` no longer has."""
        n = new.get(m, {})
        return [k for k in old.get(m, {}) if k not in n]

    ops.update("be", changed("be"))
    ops.update("bset", changed("bset"))
    ops.update("svc", changed("svc"))
    ops.delete("svc", gone("svc"))
    ops.delete("be", gone("be"))
    ops.delete("bset", gone("bset"))
    return ops


def render_incremental(old: dict[str, SvcPlan], new: dict[str, SvcPlan],
                       ids: dict[str, int], old_node_ip: str | None = None,
                       node_ip: str | None = None) -> Ops:
    """Operations for the service ports whose plans differ (others are not touched)."""
    touched = {i for i in old.keys() | new.keys() if old.get(i) != new.get(i)}
    # Ids freed in this step stay in `ids` for assign_ids, so none is reused at once.
    new_ids, added = assign_ids([i for i in touched if i in new], ids)
    ops = Ops("incremental", ids=added, freed=sorted(i for i in touched if i not in new))
    if node_ip and node_ip != old_node_ip:
        ops.update("cfg", {L.CFG_KEY: L.cfg_val(node_ip)})
    before = merge(plan_entries(old[i], ids[i]) for i in sorted(touched) if i in old and i in ids)
    after = merge(plan_entries(new[i], new_ids[i]) for i in sorted(touched) if i in new)
    return diff(before, after, ops)
