"""The proxy's only side-effect edge: run a command (optionally inside a network namespace).

One result type (``rc``, ``stdout``, ``stderr``) and one error that carries the command and
its output, so a failed ``iptables-restore``/``nft -f`` explains itself.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class CmdResult:
    """Outcome of one command."""

    argv: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str

    def check(self) -> CmdResult:
        """Self, or :class:`CommandError` when the command failed."""
        if self.rc != 0:
            raise CommandError(self)
        return self


class CommandError(RuntimeError):
    """A command failed; ``result`` holds argv, rc and both output streams."""

    def __init__(self, result: CmdResult):
        self.result = result
        tail = (result.stderr or result.stdout).strip()[-2000:]
        super().__init__(f"{' '.join(result.argv)} exited {result.rc}: {tail}")


@dataclass(frozen=True)
class Runner:
    """Runs commands on this host, or in network namespace ``netns`` via ``ip netns exec``
    (a subprocess per call: entering a netns from a threaded Python process is unsafe)."""

    netns: str | None = None
    timeout: float = 300.0

    def argv(self, cmd: Sequence[str]) -> tuple[str, ...]:
        """The full argv that :meth:`run` executes for ``cmd``."""
        prefix = ("ip", "netns", "exec", self.netns) if self.netns else ()
        return (*prefix, *cmd)

    def run(self, cmd: Sequence[str], stdin: str | None = None, check: bool = True) -> CmdResult:
        """Run ``cmd`` feeding ``stdin``; raise :class:`CommandError` on failure if ``check``."""
        argv = self.argv(cmd)
        try:
            proc = subprocess.run(
                argv, input=stdin, capture_output=True, text=True, timeout=self.timeout
            )
        except FileNotFoundError as exc:
            result = CmdResult(argv, 127, "", str(exc))
        else:
            result = CmdResult(argv, proc.returncode, proc.stdout, proc.stderr)
        return result.check() if check else result
