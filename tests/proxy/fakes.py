"""A scripted stand-in for :class:`testbed.proxy.runner.Runner` (no root, no commands)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from testbed.proxy.runner import CmdResult, CommandError

Responder = Callable[[tuple[str, ...], str | None], tuple[int, str, str]]


class FakeRunner:
    """Records every command; ``respond`` decides (rc, stdout, stderr), default success."""

    def __init__(self, respond: Responder | None = None):
        self.calls: list[tuple[tuple[str, ...], str | None]] = []
        self.respond = respond or (lambda argv, stdin: (0, "", ""))

    def run(self, cmd: Sequence[str], stdin: str | None = None, check: bool = True) -> CmdResult:
        argv = tuple(cmd)
        self.calls.append((argv, stdin))
        rc, out, err = self.respond(argv, stdin)
        result = CmdResult(argv, rc, out, err)
        if check and rc != 0:
            raise CommandError(result)
        return result

    def argvs(self) -> list[tuple[str, ...]]:
        """Just the argvs, in order."""
        return [argv for argv, _ in self.calls]
