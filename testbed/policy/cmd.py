"""The one place this package spawns processes (``nft``, ``iptables-restore``, ...)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass


class ApplyError(RuntimeError):
    """A command failed; carries the command, its exit status and stderr."""

    def __init__(self, cmd: Sequence[str], rc: int, stderr: str) -> None:
        super().__init__(f"{' '.join(cmd)} failed (exit {rc}): {stderr.strip()}")
        self.cmd, self.rc, self.stderr = list(cmd), rc, stderr


@dataclass(frozen=True)
class Result:
    """Outcome of one command."""

    rc: int
    stdout: str
    stderr: str


def run(cmd: Sequence[str], stdin: str | None = None, *, prefix: Sequence[str] = (),
        check: bool = True, timeout: float = 120) -> Result:
    """Run ``[*prefix, *cmd]`` (``prefix`` e.g. ``["ip", "netns", "exec", "n1"]``)."""
    argv = [*prefix, *cmd]
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                          check=False, timeout=timeout)
    if check and proc.returncode != 0:
        raise ApplyError(argv, proc.returncode, proc.stderr)
    return Result(proc.returncode, proc.stdout, proc.stderr)
