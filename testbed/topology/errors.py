"""Problems found while loading a topology, and the exception that carries them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

FieldPath = tuple[str | int, ...]
"""A location inside a YAML document: mapping keys and sequence indexes."""
Finding = tuple[FieldPath, str]
"""A problem not yet tied to a file: where it is, and the message."""

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_MAX_SHOWN = 80


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a topology, rendered as a single line.

    ``file`` is the file the problem is in (or ``"command line"`` for flags),
    ``line`` is 1-based (``None`` when there is no sensible line), ``field`` is
    a dotted path such as ``spec.nodes[2].name`` (may be empty for whole-file
    problems) and ``message`` says what is wrong and what is expected.
    """

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.field:
            return f"{where}: {self.field}: {self.message}"
        return f"{where}: {self.message}"


class TopologyError(Exception):
    """A topology was rejected; ``problems`` lists every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


def format_path(path: Iterable[str | int]) -> str:
    """Render ``("spec", "nodes", 2, "name")`` as ``spec.nodes[2].name``.

    Keys that are not plain identifiers (label keys with dots, fuzzed garbage
    with newlines) are quoted so the result always stays on one line.
    """
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        elif isinstance(part, str) and _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{show(part)}]"
    return out


def show(value: object) -> str:
    """A short one-line rendering of a user-supplied value for messages."""
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, dict):
        return "a mapping"
    elif isinstance(value, list | tuple):
        return "a list"
    elif value is None:
        return "null"
    elif isinstance(value, bool):
        return "true" if value else "false"
    elif isinstance(value, int):
        # str() of a gigantic int raises ValueError past 4300 digits.
        text = str(value) if value.bit_length() < 200 else "a very large integer"
    else:
        text = repr(value)
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 3] + "..."
    return text
