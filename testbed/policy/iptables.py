"""iptables enforcement: render one node's plan as ``iptables-restore --noflush`` input.

Only ``TESTBED-POL-*`` chains of the filter table are written (declaring a chain in
``--noflush`` mode flushes just that chain); the one rule outside them, the jump from
``FORWARD``, is ensured idempotently by :func:`apply`. No ipset: each peer network is one
rule (``-m multiport`` groups the ports), which keeps the transaction a single
``iptables-restore`` and needs nothing beyond iptables.

Control flow never ACCEPTs (other components' FORWARD rules still run); an allowed packet
leaves our chains by RETURN, a denied one is DROPped::

    FORWARD -j TESTBED-POL-FWD
    TESTBED-POL-FWD: established,related RETURN; invalid DROP; local source RETURN;
                     -s <isolated pod> -g TESTBED-POL-E-<id>;  -g TESTBED-POL-IN
    TESTBED-POL-E-<id>: self / each allow -> -g TESTBED-POL-IN; else DROP
    TESTBED-POL-IN: -d <isolated pod> -g TESTBED-POL-I-<id>   (falls off = RETURN)
    TESTBED-POL-I-<id>: self / each allow -> RETURN; else DROP

Every hop after ``FWD`` is a goto, so a RETURN anywhere returns straight to ``FORWARD``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

from testbed.policy.cmd import run
from testbed.policy.model import Pod
from testbed.policy.plan import ANY_PORT, NodePlan, PodChain, Rule, TargetRule, compile_node

PREFIX = "TESTBED-POL-"
FWD = PREFIX + "FWD"
IN = PREFIX + "IN"
JUMP = ["FORWARD", "-j", FWD]
_MULTIPORT_MAX = 15  # slots per -m multiport (a range takes two)


def chain_name(direction: str, pod_key: str) -> str:
    """``TESTBED-POL-I-<12 hex>`` / ``TESTBED-POL-E-<12 hex>`` (iptables allows 28 chars)."""
    tag = "I" if direction == "ingress" else "E"
    return f"{PREFIX}{tag}-{hashlib.sha256(pod_key.encode()).hexdigest()[:12].upper()}"


def _comment(text: str) -> str:
    text = text.replace('"', "'")
    return f'-m comment --comment "{text[:240]}"'


def _host(net: str) -> str:
    return net if "/" in net else f"{net}/32"


def port_matches(ports: tuple | None) -> list[str]:
    """``-p``/``--dport(s)`` fragments, one per rule needed (``[""]`` = any port/protocol)."""
    if ports is None:
        return [""]
    out: list[str] = []
    for proto in sorted({p for p, _, _ in ports}):
        ranges = [(lo, hi) for p, lo, hi in ports if p == proto]
        if ANY_PORT in ranges:
            out.append(f"-p {proto}")
            continue
        if len(ranges) == 1:
            lo, hi = ranges[0]
            out.append(f"-p {proto} --dport {lo if lo == hi else f'{lo}:{hi}'}")
            continue
        chunk: list[str] = []
        used = 0
        for lo, hi in ranges:
            cost = 1 if lo == hi else 2
            if used + cost > _MULTIPORT_MAX:
                out.append(f"-p {proto} -m multiport --dports {','.join(chunk)}")
                chunk, used = [], 0
            chunk.append(str(lo) if lo == hi else f"{lo}:{hi}")
            used += cost
        out.append(f"-p {proto} -m multiport --dports {','.join(chunk)}")
    return out


def _rule_lines(chain: str, rule: Rule | TargetRule, direction: str) -> list[str]:
    verdict = "-j RETURN" if direction == "ingress" else f"-g {IN}"
    flag = "-s" if direction == "ingress" else "-d"
    note = _comment(rule.origin)
    if isinstance(rule, TargetRule):
        return [f"-A {chain} -d {ip}/32 -p {p} --dport {port} {note} {verdict}"
                for ip, p, port in rule.targets]
    peers = [f"{flag} {_host(n)}" for n in rule.peers] if rule.peers is not None else [""]
    return [" ".join(x for x in (f"-A {chain}", peer, pm, note, verdict) if x)
            for peer in peers for pm in port_matches(rule.ports)]


def _chain_lines(ch: PodChain, direction: str) -> list[str]:
    name = chain_name(direction, ch.pod)
    if direction == "ingress":
        head = f"-A {name} -s {ch.ip}/32 {_comment(ch.pod + ': self')} -j RETURN"
    else:
        head = f"-A {name} -d {ch.ip}/32 {_comment(ch.pod + ': self')} -g {IN}"
    lines = [head]
    for r in ch.rules:
        lines += _rule_lines(name, r, direction)
    lines.append(f"-A {name} {_comment(f'{ch.pod}: no {direction} rule allows this')} -j DROP")
    return lines


def render_plan(plan: NodePlan) -> str:
    """``iptables-restore --noflush`` input (filter table, our chains only) for a plan."""
    chains = [FWD, IN] + [chain_name("egress", c.pod) for c in plan.egress] \
        + [chain_name("ingress", c.pod) for c in plan.ingress]
    rules = [
        f"-A {FWD} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        f"-A {FWD} -m conntrack --ctstate INVALID -j DROP",
        f"-A {FWD} -m addrtype --src-type LOCAL {_comment('node-originated traffic')} -j RETURN",
        *(f"-A {FWD} -s {c.ip}/32 {_comment(c.pod + ' egress')} -g {chain_name('egress', c.pod)}"
          for c in plan.egress),
        f"-A {FWD} -g {IN}",
        *(f"-A {IN} -d {c.ip}/32 {_comment(c.pod + ' ingress')} -g {chain_name('ingress', c.pod)}"
          for c in plan.ingress),
    ]
    for c in plan.egress:
        rules += _chain_lines(c, "egress")
    for c in plan.ingress:
        rules += _chain_lines(c, "ingress")
    return "\n".join([
        f"# NetworkPolicy for node {plan.node}",
        "*filter",
        *(f":{c} - [0:0]" for c in chains),
        *rules,
        "COMMIT",
    ]) + "\n"


def render(pods: Iterable[Pod], namespaces: Mapping[str, Mapping[str, str]],
           policies: Iterable[Mapping], node: str) -> str:
    """Compile and render: restore input enforcing ``policies`` for the pods on ``node``."""
    return render_plan(compile_node(pods, namespaces, policies, node))


def _existing_chains(prefix: Sequence[str]) -> list[str]:
    out = run(["iptables-save", "-t", "filter"], prefix=prefix).stdout
    return [ln[1:].split()[0] for ln in out.splitlines() if ln.startswith(":" + PREFIX)]


def with_stale_removed(text: str, existing: Iterable[str]) -> str:
    """Add flush + ``-X`` for our chains that exist but are not in ``text`` (pure)."""
    declared = {ln[1:].split()[0] for ln in text.splitlines() if ln.startswith(":")}
    stale = sorted(c for c in existing if c.startswith(PREFIX) and c not in declared)
    if not stale:
        return text
    head, _, tail = text.rpartition("COMMIT")
    decls = "".join(f":{c} - [0:0]\n" for c in stale)
    head = head.replace("*filter\n", "*filter\n" + decls, 1)
    return head + "".join(f"-X {c}\n" for c in stale) + "COMMIT" + tail


def apply(text: str, *, prefix: Sequence[str] = ()) -> None:
    """Load a rendered text in one ``iptables-restore --noflush`` (our chains only; stale
    ``TESTBED-POL-*`` chains are deleted in the same transaction), then make sure
    ``FORWARD`` jumps to ``TESTBED-POL-FWD`` exactly once (inserted first)."""
    full = with_stale_removed(text, _existing_chains(prefix))
    run(["iptables-restore", "-w", "--noflush"], full, prefix=prefix)
    if run(["iptables", "-w", "-C", *JUMP], prefix=prefix, check=False).rc != 0:
        run(["iptables", "-w", "-I", JUMP[0], "1", *JUMP[1:]], prefix=prefix)


def cleanup(*, prefix: Sequence[str] = ()) -> None:
    """Remove the FORWARD jump and every ``TESTBED-POL-*`` chain (idempotent)."""
    for _ in range(16):
        if run(["iptables", "-w", "-D", *JUMP], prefix=prefix, check=False).rc != 0:
            break
    chains = _existing_chains(prefix)
    if chains:
        text = "*filter\n" + "".join(f":{c} - [0:0]\n" for c in chains) \
            + "".join(f"-X {c}\n" for c in chains) + "COMMIT\n"
        run(["iptables-restore", "-w", "--noflush"], text, prefix=prefix)
