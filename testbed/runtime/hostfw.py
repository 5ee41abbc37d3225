"""The one host firewall rule a routed testbed needs, and its removal.

Docker drops bridged packets on an internal network whose source or destination lies outside the
node subnet (DOCKER-ISOLATION-STAGE-1), which is every pod-IP packet in routed mode. A rule in
DOCKER-USER accepting traffic that enters and leaves the testbed's own bridge lets pod traffic
flow between nodes; it cannot leave the bridge, so nothing reaches the outside.
"""

from __future__ import annotations

import shlex
import subprocess

CHAIN = "DOCKER-USER"


def rule_comment(testbed: str) -> str:
    return f"testbed:{testbed}"


def bridge_rule(bridge: str, testbed: str) -> list[str]:
    """iptables rule spec (without the -A/-D/-C verb) for intra-bridge pod traffic (pure)."""
    return ["-i", bridge, "-o", bridge, "-m", "comment", "--comment", rule_comment(testbed),
            "-j", "ACCEPT"]


def _iptables(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["iptables", "-w", *args], capture_output=True, text=True)


def add_bridge_rule(bridge: str, testbed: str) -> None:
    """Insert the rule once (idempotent)."""
    if _iptables("-N", CHAIN).returncode not in (0, 1):
        raise RuntimeError("iptables is not usable on this host")
    if _iptables("-C", CHAIN, *bridge_rule(bridge, testbed)).returncode != 0:
        proc = _iptables("-I", CHAIN, "1", *bridge_rule(bridge, testbed))
        if proc.returncode != 0:
            raise RuntimeError(f"adding the {CHAIN} rule for {bridge}: {proc.stderr.strip()}")


def remove_rules(testbed: str) -> int:
    """Delete every DOCKER-USER rule carrying this testbed's comment; returns how many."""
    proc = _iptables("-S", CHAIN)
    removed = 0
    for spec in rules_for(proc.stdout, testbed):
        if _iptables("-D", CHAIN, *spec).returncode == 0:
            removed += 1
    return removed


def rules_for(listing: str, testbed: str) -> list[list[str]]:
    """Rule specs in `iptables -S` output that carry this testbed's comment (pure)."""
    out = []
    for line in listing.splitlines():
        words = shlex.split(line)
        if words[:2] != ["-A", CHAIN] or "--comment" not in words:
            continue
        if words[words.index("--comment") + 1] == rule_comment(testbed):
            out.append(words[2:])
    return out
