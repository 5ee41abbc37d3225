"""nftables enforcement: render one node's plan as an atomic ``nft -f`` script.

Layout (everything in our own table ``inet testbed-policy``; no other table is touched)::

    chain forward   (hook forward, priority filter, policy accept)
        ct state established,related accept   # replies; live connections stay up
        ct state invalid drop
        fib saddr type local accept           # node-originated traffic
        ip saddr vmap @egress-pods            # jump egr_<ns>_<pod>: return = allowed
        ip daddr vmap @ingress-pods           # jump ing_<ns>_<pod>: accept = allowed
    chain output    (hook output): node -> local pods is always allowed
    chain ing_*/egr_*: self first, then one rule per policy rule, then drop

Only isolated local pods are in the verdict maps (everyone else takes the fast path).
Peer addresses, port ranges and named-port targets are *named* sets, deduplicated by
content and inlined when they have one element -- no per-rule anonymous sets or maps,
whose creation cost dominates large loads. Policy is evaluated in the forward hook, after
the service proxy's DNAT, so it sees backend pod IPs. Egress is enforced on the source
node, ingress on the destination node.

Re-rendering replaces the whole table in one transaction (``table``/``delete table``/
``table {...}``); conntrack entries survive, so established connections continue while
new connections get the new verdict.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

from testbed.policy.cmd import run
from testbed.policy.model import Pod
from testbed.policy.plan import ANY_PORT, NodePlan, PodChain, Rule, TargetRule, compile_node

TABLE = "testbed-policy"
FAMILY = "inet"
_MAX_COMMENT = 120


def _addr(net: str) -> str:
    return net[:-3] if net.endswith("/32") else net


def _range(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}-{hi}"


def chain_name(direction: str, pod_key: str) -> str:
    """``ing_<ns>_<pod>`` / ``egr_<ns>_<pod>`` (hashed when too long for a name)."""
    prefix = "ing" if direction == "ingress" else "egr"
    name = f"{prefix}_{pod_key.replace('/', '_')}"
    if len(name) > 200:
        name = f"{prefix}_{hashlib.sha256(pod_key.encode()).hexdigest()[:24]}"
    return name


def _comment(text: str) -> str:
    text = text.replace('"', "'")
    if len(text) > _MAX_COMMENT:
        text = text[: _MAX_COMMENT - 3] + "..."
    return f'comment "{text}"'


class _Sets:
    """Named sets deduplicated by content: ``peers_N``, ``ports_N``, ``targets_N``."""

    TYPES = {
        "peers": ("ipv4_addr", True),
        "ports": ("inet_proto . inet_service", True),
        "targets": ("ipv4_addr . inet_proto . inet_service", False),
    }

    def __init__(self) -> None:
        self.by_content: dict[tuple[str, tuple[str, ...]], str] = {}
        self.users: dict[str, list[str]] = {}
        self.counts: dict[str, int] = {}

    def ref(self, kind: str, elements: tuple[str, ...], origin: str) -> str:
        key = (kind, elements)
        if key not in self.by_content:
            name = f"{kind}_{self.counts.get(kind, 0)}"
            self.counts[kind] = self.counts.get(kind, 0) + 1
            self.by_content[key] = name
            self.users[name] = []
        name = self.by_content[key]
        if origin not in self.users[name]:
            self.users[name].append(origin)
        return f"@{name}"

    def declarations(self) -> list[str]:
        out = []
        for (kind, elements), name in self.by_content.items():
            typ, interval = self.TYPES[kind]
            flags = "\t\tflags interval\n" if interval else ""
            out.append(
                f"\tset {name} {{\n\t\ttype {typ}\n{flags}"
                f"\t\t{_comment('used by ' + ', '.join(self.users[name]))}\n"
                f"\t\telements = {{ {', '.join(elements)} }}\n\t}}\n"
            )
        return out


def _ports(ports: tuple, sets: _Sets, origin: str) -> str:
    if len(ports) == 1:
        proto, lo, hi = ports[0]
        if (lo, hi) == ANY_PORT:
            return f"meta l4proto {proto}"
        return f"meta l4proto {proto} th dport {_range(lo, hi)}"
    elements = tuple(f"{p} . {_range(lo, hi)}" for p, lo, hi in ports)
    return f"meta l4proto . th dport {sets.ref('ports', elements, origin)}"


def _rule_line(rule: Rule | TargetRule, direction: str, sets: _Sets) -> str:
    verdict = "accept" if direction == "ingress" else "return"
    side = "saddr" if direction == "ingress" else "daddr"
    parts: list[str] = []
    if isinstance(rule, TargetRule):
        if len(rule.targets) == 1:
            ip, proto, port = rule.targets[0]
            parts.append(f"ip daddr {ip} meta l4proto {proto} th dport {port}")
        else:
            elements = tuple(f"{ip} . {p} . {port}" for ip, p, port in rule.targets)
            parts.append("ip daddr . meta l4proto . th dport "
                         + sets.ref("targets", elements, rule.origin))
    else:
        if rule.peers is not None:
            if len(rule.peers) == 1:
                parts.append(f"ip {side} {_addr(rule.peers[0])}")
            else:
                elements = tuple(_addr(n) for n in rule.peers)
                parts.append(f"ip {side} {sets.ref('peers', elements, rule.origin)}")
        if rule.ports is not None:
            parts.append(_ports(rule.ports, sets, rule.origin))
    parts += [verdict, _comment(rule.origin)]
    return "\t\t" + " ".join(parts) + "\n"


def _chain(ch: PodChain, direction: str, sets: _Sets) -> str:
    side, self_verdict = ("saddr", "accept") if direction == "ingress" else ("daddr", "return")
    lines = [
        f"\tchain {chain_name(direction, ch.pod)} {{\n",
        f"\t\t{_comment(f'{ch.pod} {direction}, isolated by ' + ', '.join(ch.policies))}\n",
        f"\t\tip {side} {ch.ip} {self_verdict} {_comment('a pod can always reach itself')}\n",
        *(_rule_line(r, direction, sets) for r in ch.rules),
        f"\t\tcounter drop {_comment(f'{ch.pod}: no {direction} rule allows this')}\n",
        "\t}\n",
    ]
    return "".join(lines)


def _vmap(name: str, chains: Sequence[PodChain], direction: str) -> str:
    elements = ", ".join(f"{c.ip} : jump {chain_name(direction, c.pod)}" for c in chains)
    body = f"\t\telements = {{ {elements} }}\n" if chains else ""
    return f"\tmap {name} {{\n\t\ttype ipv4_addr : verdict\n{body}\t}}\n"


def render_plan(plan: NodePlan) -> str:
    """The ``nft -f`` script (atomic replace of our table) for a compiled plan."""
    sets = _Sets()
    chains = [_chain(c, "ingress", sets) for c in plan.ingress]
    chains += [_chain(c, "egress", sets) for c in plan.egress]
    local = (f"\t\telements = {{ {', '.join(plan.local_ips)} }}\n" if plan.local_ips else "")
    head = [
        f"# NetworkPolicy for node {plan.node}: {len(plan.ingress)} ingress-isolated, "
        f"{len(plan.egress)} egress-isolated of {len(plan.local_ips)} local pods\n",
        f"table {FAMILY} {TABLE}\n",
        f"delete table {FAMILY} {TABLE}\n",
        f"table {FAMILY} {TABLE} {{\n",
        f"\tset local-pods {{\n\t\ttype ipv4_addr\n{local}\t}}\n",
        *sets.declarations(),
        _vmap("ingress-pods", plan.ingress, "ingress"),
        _vmap("egress-pods", plan.egress, "egress"),
        "\tchain forward {\n",
        "\t\ttype filter hook forward priority filter; policy accept;\n",
        "\t\tct state established,related accept\n",
        "\t\tct state invalid drop\n",
        f"\t\tfib saddr type local accept {_comment('node-originated traffic')}\n",
        "\t\tip saddr vmap @egress-pods\n",
        "\t\tip daddr vmap @ingress-pods\n",
        "\t}\n",
        "\tchain output {\n",
        "\t\ttype filter hook output priority filter; policy accept;\n",
        f"\t\tip daddr @local-pods accept {_comment('node to its own pods: always allowed')}\n",
        "\t}\n",
    ]
    return "".join(head + chains) + "}\n"


def render(pods: Iterable[Pod], namespaces: Mapping[str, Mapping[str, str]],
           policies: Iterable[Mapping], node: str) -> str:
    """Compile and render: the nft script enforcing ``policies`` for the pods on ``node``.

    ``pods``: all cluster pods (:class:`~testbed.policy.model.Pod`); ``namespaces``:
    name -> labels; ``policies``: v1 NetworkPolicy dicts.
    """
    return render_plan(compile_node(pods, namespaces, policies, node))


def apply(text: str, *, prefix: Sequence[str] = ()) -> None:
    """Load a rendered script with one ``nft -f -`` (atomic). ``prefix`` runs it elsewhere,
    e.g. ``["ip", "netns", "exec", "n1"]``. Raises :class:`~testbed.policy.cmd.ApplyError`."""
    run(["nft", "-f", "-"], text, prefix=prefix)


def cleanup(*, prefix: Sequence[str] = ()) -> None:
    """Remove our table (idempotent; nothing else is touched)."""
    run(["nft", "-f", "-"],
        f"table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n", prefix=prefix)
