"""`testbed down`: remove every Docker object and host rule a testbed made, found by label."""

from __future__ import annotations

from dataclasses import dataclass

from testbed.runtime.base import LABEL_NAME


@dataclass(frozen=True)
class DownResult:
    """Counts of what was removed."""

    containers: int
    networks: int
    volumes: int
    host_rules: int


def down(runtime, name: str) -> DownResult:
    """Idempotent: removing a testbed that is gone, or half-made, is fine."""
    labels = {LABEL_NAME: name}
    containers = runtime.remove_containers(labels)
    networks = runtime.remove_networks(labels)
    volumes = runtime.remove_volumes(labels)
    rules = runtime.remove_host_rules(name)
    return DownResult(containers, networks, volumes, rules)
