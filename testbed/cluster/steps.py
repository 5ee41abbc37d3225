"""A small ordered-steps runner with a live display (rich), used by `up` and `down`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console


class Steps:
    """Prints one line per step with its duration; the spinner shows the step in progress."""

    def __init__(self, console: Console | None = None, quiet: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self.timings: dict[str, float] = {}

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        start = time.monotonic()
        if self.quiet:
            yield
        else:
            with self.console.status(f"{title} ..."):
                try:
                    yield
                except BaseException:
                    self.console.print(f" [red]✗[/red] {title}")
                    raise
        elapsed = time.monotonic() - start
        self.timings[title] = elapsed
        if not self.quiet:
            self.console.print(f" [green]✓[/green] {title} [dim]({elapsed:.1f}s)[/dim]")

    def info(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message)
