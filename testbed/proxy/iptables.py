"""iptables backend: kube-proxy's chain layout loaded with ``iptables-restore --noflush``.

The restore input declares (and so flushes) only this proxy's own ``KUBE-*`` chains; other
components' chains and the built-in chains are never flushed. On full syncs ``apply`` then
deletes stale per-service chains (found in the restore's own ``-S`` listing, in a second
small restore) and ensures the jumps from the built-in chains (PREROUTING, OUTPUT, ...):
each is inserted first unless ``iptables -S <chain>`` already shows it. An incremental sync
is kube-proxy's partial restore: the dispatch chains (``KUBE-SERVICES``, ``KUBE-NODEPORTS``,
the filter chains) are rewritten whole, per-service chains only for changed services.
"""

from __future__ import annotations

import re

from testbed.proxy.base import Availability, tools_available
from testbed.proxy.gcpause import paused_gc
from testbed.proxy.iptables_rules import (
    KUBE_EXTERNAL_SERVICES,
    KUBE_FORWARD,
    KUBE_MARK_MASQ,
    KUBE_NODEPORTS,
    KUBE_POSTROUTING,
    KUBE_SERVICES,
    MASQ_MARK,
    SERVICE_CHAIN_PREFIXES,
    PortRules,
    comment,
    port_rules,
)
from testbed.proxy.model import NodeContext, ProxyModel, changed_services
from testbed.proxy.runner import Runner

FULL_HEADER = "# testbed-proxy iptables full"
PARTIAL_HEADER = "# testbed-proxy iptables partial"
# kube-proxy drops per-rule comments above this many endpoints: they cost restore time.
LARGE_CLUSTER_ENDPOINTS = 1000
FILTER_CHAINS = (KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD)
NAT_CHAINS = (KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ)

# (table, built-in chain, extra match, comment, our chain): inserted first in the built-in.
JUMP_RULES: tuple[tuple[str, str, str, str, str], ...] = (
    ("filter", "INPUT", "-m conntrack --ctstate NEW",
     "kubernetes externally-visible service portals", KUBE_EXTERNAL_SERVICES),
    ("filter", "FORWARD", "-m conntrack --ctstate NEW",
     "kubernetes externally-visible service portals", KUBE_EXTERNAL_SERVICES),
    ("filter", "FORWARD", "-m conntrack --ctstate NEW", "kubernetes service portals",
     KUBE_SERVICES),
    ("filter", "OUTPUT", "-m conntrack --ctstate NEW", "kubernetes service portals",
     KUBE_SERVICES),
    ("filter", "FORWARD", "", "kubernetes forwarding rules", KUBE_FORWARD),
    ("nat", "OUTPUT", "", "kubernetes service portals", KUBE_SERVICES),
    ("nat", "PREROUTING", "", "kubernetes service portals", KUBE_SERVICES),
    ("nat", "POSTROUTING", "", "kubernetes postrouting rules", KUBE_POSTROUTING),
)  # fmt: skip


def jump_rule_argv(op: str, rule: tuple[str, str, str, str, str]) -> list[str]:
    """``iptables -t <table> <op> <chain> ...`` for one jump rule (op: -C, -I, -D)."""
    table, chain, extra, why, target = rule
    match = [*extra.split(), "-m", "comment", "--comment", why, "-j", target]
    return ["iptables", "-t", table, op, chain, *match]


def jump_rule_line(rule: tuple[str, str, str, str, str]) -> str:
    """The jump rule as ``iptables -S`` prints it."""
    _, chain, extra, why, target = rule
    quoted = f'"{why}"' if " " in why else why
    parts = ("-A", chain, extra, "-m comment --comment", quoted, "-j", target)
    return " ".join(x for x in parts if x)


def _fixed_filter_rules() -> list[str]:
    mark = f"{MASQ_MARK}/{MASQ_MARK}"
    return [
        f"-A {KUBE_FORWARD} -m conntrack --ctstate INVALID -j DROP",
        f"-A {KUBE_FORWARD} {comment('kubernetes forwarding rules')} -m mark --mark {mark}"
        " -j ACCEPT",
        f"-A {KUBE_FORWARD} {comment('kubernetes forwarding conntrack rule')}"
        " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    ]


def _fixed_nat_rules() -> list[str]:
    return [
        f"-A {KUBE_POSTROUTING} -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN",
        # Clear the mark so a packet that re-enters the stack is not masqueraded twice.
        f"-A {KUBE_POSTROUTING} -j MARK --xor-mark {MASQ_MARK}",
        f"-A {KUBE_POSTROUTING} {comment('kubernetes service traffic requiring SNAT')}"
        " -j MASQUERADE --random-fully",
        f"-A {KUBE_MARK_MASQ} -j MARK --or-mark {MASQ_MARK}",
    ]


def _nodeports_jump() -> str:
    why = "kubernetes service nodeports; NOTE: this must be the last rule in this chain"
    # 127/8 excluded: localhost NodePorts would need route_localnet (kube-proxy's default).
    return (
        f"-A {KUBE_SERVICES} {comment(why)} -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8"
        f" -j {KUBE_NODEPORTS}"
    )


def _comments(model: ProxyModel) -> bool:
    return sum(len(p.reachable_endpoints) for p in model) <= LARGE_CLUSTER_ENDPOINTS


def _by_target_desc(lines: list[str]) -> list[str]:
    # iptables-nft 1.8.9 keeps the chains a --noflush restore touches in a sorted linked
    # list, inserting each rule's chain and jump target by a linear scan that stops at the
    # first larger name: referencing targets in descending order keeps each scan short.
    # Dispatch rules match disjoint (ip, proto, port) tuples, so their order is free.
    return sorted(lines, key=lambda line: line.rsplit(" -j ", 1)[1], reverse=True)


def _assemble(
    header: str, everything: list[PortRules], chained: list[PortRules], stale: list[str]
) -> str:
    full = header == FULL_HEADER
    # "-S" (list the table) has no chain, which makes iptables-nft fetch all chains at once
    # instead of building that sorted list: 10k services load in ~3 s instead of ~140 s.
    # Its output (the table *before* this restore) also tells apply() about stale chains.
    listing = ["-S"] if full else []
    lines = [header, "*filter", *listing]
    lines += [f":{c} - [0:0]" for c in FILTER_CHAINS]
    lines += _by_target_desc([line for r in everything for line in r.filter])
    lines += _fixed_filter_rules()
    lines += ["COMMIT", "*nat", *listing]
    lines += [f":{c} - [0:0]" for c in NAT_CHAINS]
    lines += [f":{c} - [0:0]" for r in chained for c in r.chains]
    lines += [f":{c} - [0:0]" for c in stale]  # declaring flushes; then deleted below
    lines += _fixed_nat_rules()
    lines += _by_target_desc([line for r in everything for line in r.services])
    lines.append(_nodeports_jump())  # must stay last in KUBE-SERVICES
    lines += _by_target_desc([line for r in everything for line in r.nodeports])
    for r in chained:
        lines += r.rules
    lines += [f"-X {c}" for c in stale]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


@paused_gc
def render(model: ProxyModel, ctx: NodeContext) -> str:
    """Full ``iptables-restore --noflush`` input for ``model`` (pure)."""
    comments = _comments(model)
    everything = [port_rules(p, ctx, comments) for p in model]
    return _assemble(FULL_HEADER, everything, everything, [])


@paused_gc
def render_incremental(old: ProxyModel, new: ProxyModel, ctx: NodeContext) -> str | None:
    """Partial restore touching only changed services' chains (never ``None``)."""
    changed = changed_services(old, new)
    comments = _comments(new)
    everything = [port_rules(p, ctx, comments) for p in new]
    chained = [r for p, r in zip(new, everything, strict=True) if (p.namespace, p.name) in changed]
    now = {c for r in chained for c in r.chains}
    gone = [p for p in old if (p.namespace, p.name) in changed]
    before = {c for p in gone for c in port_rules(p, ctx, comments).chains}
    return _assemble(PARTIAL_HEADER, everything, chained, sorted(before - now, reverse=True))


_NEW_CHAIN = re.compile(r"^-N (\S+)$", re.MULTILINE)
_CHAIN_LINE = re.compile(r"^:(\S+) ", re.MULTILINE)


def stale_chains(text: str, listing: str) -> list[str]:
    """Per-service chains in ``listing`` (``-S`` output: the table before the restore) that
    the full restore ``text`` did not declare, largest name first (pure)."""
    declared = set(_CHAIN_LINE.findall(text))
    found = set(_NEW_CHAIN.findall(listing))
    return sorted(
        (c for c in found if c.startswith(SERVICE_CHAIN_PREFIXES) and c not in declared),
        reverse=True,
    )


def deletion_input(table: str, chains: list[str]) -> str:
    """Restore input that flushes then deletes ``chains`` (flush first: they may jump to
    each other). Many chains: list first, for the same cache reason as in a full sync."""
    listing = "-S\n" if len(chains) > 1000 else ""
    decls = "".join(f":{c} - [0:0]\n" for c in chains)
    deletes = "".join(f"-X {c}\n" for c in chains)
    return f"*{table}\n{listing}{decls}{deletes}COMMIT\n"


class IptablesBackend:
    """kube-proxy's iptables mode (iptables-nft here)."""

    name = "iptables"

    def __init__(self, runner: Runner | None = None):
        self.runner = runner or Runner()

    def available(self) -> Availability:
        """Needs iptables-restore/-save and a working nat table."""
        return tools_available(self.runner, ("iptables", "iptables-save", "iptables-restore"),
                               ("iptables-save", "-t", "nat"))

    render = staticmethod(render)
    render_incremental = staticmethod(render_incremental)

    def apply(self, text: str) -> None:
        """Restore ``text``; after a full sync also delete the stale service chains the
        restore's own listing revealed, and ensure the jumps from the built-in chains."""
        res = self.runner.run(["iptables-restore", "--noflush"], stdin=text)
        if text.startswith(FULL_HEADER):
            stale = stale_chains(text, res.stdout)
            if stale:
                self.runner.run(["iptables-restore", "--noflush"],
                                stdin=deletion_input("nat", stale))  # fmt: skip
            self.ensure_jumps()

    def _listed(self, table: str, chain: str) -> str:
        # "-S <chain>" fetches only that chain; "-C ... -j KUBE-SERVICES" would also fetch
        # the (10k-rule) target chain.
        return self.runner.run(["iptables", "-t", table, "-S", chain], check=False).stdout

    def ensure_jumps(self) -> None:
        """Insert each jump rule unless an identical one exists (idempotent)."""
        listed: dict[tuple[str, str], str] = {}
        for rule in JUMP_RULES:
            table, chain = rule[0], rule[1]
            if (table, chain) not in listed:
                listed[(table, chain)] = self._listed(table, chain)
            if jump_rule_line(rule) not in listed[(table, chain)].splitlines():
                self.runner.run(jump_rule_argv("-I", rule))

    def rules_present(self) -> bool:
        """Canary: the nat hooks jump to our chains and the mark rule exists (each check
        lists one small chain only)."""
        wanted = [r for r in JUMP_RULES if r[0] == "nat"]
        if not all(jump_rule_line(r) in self._listed("nat", r[1]).splitlines() for r in wanted):
            return False
        return f"-A {KUBE_MARK_MASQ} -j MARK --set-xmark" in self._listed("nat", KUBE_MARK_MASQ)

    def cleanup(self) -> None:
        """Remove the jumps, then flush and delete every chain this backend owns."""
        for rule in JUMP_RULES:
            while self.runner.run(jump_rule_argv("-D", rule), check=False).rc == 0:
                pass  # remove duplicates too (e.g. two agents that raced)
        for table, fixed in (("filter", FILTER_CHAINS), ("nat", NAT_CHAINS)):
            res = self.runner.run(["iptables-save", "-t", table], check=False)
            existing = _CHAIN_LINE.findall(res.stdout) if res.rc == 0 else []
            ours = [c for c in existing if c in fixed or c.startswith(SERVICE_CHAIN_PREFIXES)]
            if ours:
                text = deletion_input(table, sorted(ours, reverse=True))
                self.runner.run(["iptables-restore", "--noflush"], stdin=text)
