"""Resolving ``spec.manifests`` into Kubernetes objects, and custom CNI files."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import FieldPath, Problem, TopologyError, format_path
from .yamlpos import Positions, parse_all

# Manifests and conflists are small; refusing huge files keeps a typo such as
# pointing at a disk image from eating memory.
MAX_FILE_BYTES = 16 * 1024 * 1024
_REQUIRED = "every Kubernetes object needs kind, apiVersion and metadata.name"

Report = Callable[[FieldPath, str], None]


def read_text(path: Path) -> str:
    """Read a UTF-8 file; raises ValueError with a one-line reason."""
    try:
        if not path.exists():
            raise ValueError("file not found")
        if not path.is_file():
            raise ValueError("not a regular file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
        raw = path.read_bytes()
    except OSError as err:
        raise ValueError(err.strerror or str(err)) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"not UTF-8 text (bad byte at offset {err.start})") from None


def resolve(base_dir: Path, entry: str) -> Path:
    """``entry`` relative to ``base_dir`` (absolute entries stay as they are)."""
    return base_dir / Path(entry)


def display(display_base: str, entry: str) -> str:
    """How a file next to the topology is named in messages (as the user would type it)."""
    if os.path.isabs(entry) or not display_base:
        return printable(os.path.normpath(entry))
    return printable(os.path.normpath(os.path.join(display_base, entry)))


def printable(text: str) -> str:
    """``text`` with control characters escaped and length capped, for one-line problems."""
    if not text.isprintable():
        text = json.dumps(text, ensure_ascii=False)[1:-1]
    return text if len(text) <= 200 else text[:197] + "..."


def load_manifest_file(
    path: Path, shown: str, report: Report
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Objects in one manifest file; problems inside it name the manifest file.

    ``report`` receives problems about the entry itself (file missing), which
    belong to the topology file's line.
    """
    try:
        text = read_text(path)
    except ValueError as err:
        report((), f"{shown}: {err}")
        return [], []
    try:
        docs = parse_all(text, shown)
    except TopologyError as err:
        return [], err.problems
    objects: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for doc in docs:
        objects += check_objects(doc.data, (), _reporter(shown, doc.positions, problems))
    return objects, problems


def _reporter(file: str, positions: Positions, problems: list[Problem]) -> Report:
    def report(path: FieldPath, message: str) -> None:
        problems.append(Problem(file, positions.line(path), format_path(path), message))

    return report


def check_objects(data: Any, path: FieldPath, report: Report) -> list[dict[str, Any]]:
    """The objects in one document (``kind: List`` flattened), reporting bad ones."""
    good = []
    for item_path, item in _flatten(data, path, report):
        if _check_object(item, item_path, report):
            good.append(item)
    return good


def _flatten(data: Any, path: FieldPath, report: Report) -> Iterator[tuple[FieldPath, Any]]:
    if isinstance(data, dict) and data.get("kind") == "List":
        items = data.get("items")
        if items is None:
            return
        if not isinstance(items, list):
            report((*path, "items"), "expected a list of Kubernetes objects")
            return
        for index, item in enumerate(items):
            yield (*path, "items", index), item
        return
    yield path, data


def _check_object(obj: Any, path: FieldPath, report: Report) -> bool:
    if not isinstance(obj, dict):
        what = "a list" if isinstance(obj, list) else "a scalar"
        report(path, f"expected a Kubernetes object (a mapping), got {what}")
        return False
    ok = True
    for key in ("kind", "apiVersion"):
        value = obj.get(key)
        if value is None:
            report((*path, key), f"missing; {_REQUIRED}")
            ok = False
        elif not isinstance(value, str) or not value:
            report((*path, key), "expected a non-empty string")
            ok = False
    metadata = obj.get("metadata")
    if metadata is None:
        report((*path, "metadata"), f"missing; {_REQUIRED}")
        return False
    if not isinstance(metadata, dict):
        report((*path, "metadata"), "expected a mapping")
        return False
    name = metadata.get("name")
    if name is None:
        report((*path, "metadata", "name"), f"missing; {_REQUIRED}")
        return False
    if not isinstance(name, str) or not name:
        report((*path, "metadata", "name"), "expected a non-empty string")
        return False
    return ok


def check_conflist(path: Path) -> str | None:
    """Why ``path`` is not a usable CNI conflist, or None if it is."""
    try:
        text = read_text(path)
    except ValueError as err:
        return str(err)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        return f"not valid JSON: {' '.join(str(err).split())[:120]}"
    if not isinstance(data, dict) or not isinstance(data.get("plugins"), list):
        return 'expected a JSON object with a "plugins" list'
    return None


def check_bin_dir(path: Path) -> str | None:
    """Why ``path`` is not a usable CNI plugin directory, or None if it is."""
    try:
        if not path.exists():
            return "directory not found"
        if not path.is_dir():
            return "not a directory"
    except (OSError, ValueError) as err:
        return " ".join(str(err).split())
    return None
