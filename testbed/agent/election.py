"""Which node announces each LoadBalancer IP: rendezvous hashing over the eligible nodes, so
every node computes the same answer from the store without talking to the others."""

from __future__ import annotations

import datetime as dt
import hashlib

HEARTBEAT_STALE_SECONDS = 6.0


def fresh_nodes(node_statuses: dict[str, dict], now: dt.datetime) -> set[str]:
    """Nodes whose agent reported Ready recently (pure)."""
    out = set()
    for name, status in node_statuses.items():
        for cond in status.get("conditions") or []:
            if cond.get("type") != "Ready" or cond.get("status") != "True":
                continue
            try:
                beat = dt.datetime.strptime(cond.get("lastHeartbeatTime", ""),
                                            "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
            except ValueError:
                continue
            if (now - beat).total_seconds() <= HEARTBEAT_STALE_SECONDS:
                out.add(name)
    return out


def elect(ip: str, candidates: set[str]) -> str | None:
    """The winner for `ip` among `candidates` (highest hash of ip+node), None if empty."""
    if not candidates:
        return None
    return max(sorted(candidates), key=lambda n: hashlib.sha256(f"{ip}/{n}".encode()).digest())


def announcements(lb_services: list[tuple[list[str], bool, set[str]]], fresh: set[str],
                  me: str) -> set[str]:
    """IPs this node must announce. Each entry: (LB IPs, externalTrafficPolicy Local,
    nodes with a ready local endpoint)."""
    mine = set()
    for ips, local, endpoint_nodes in lb_services:
        candidates = fresh & endpoint_nodes if local else fresh
        for ip in ips:
            if elect(ip, candidates) == me:
                mine.add(ip)
    return mine
