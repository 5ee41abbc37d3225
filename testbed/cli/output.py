"""Printing objects the way kubectl does: tables, or Kubernetes-shaped JSON/YAML lists."""

from __future__ import annotations

import json

import yaml
from rich.table import Table

from testbed.cli.common import console, fail

FORMATS = ("table", "wide", "json", "yaml")


def as_list(items: list[dict]) -> dict:
    """A Kubernetes List, so `jq '.items[]'` works as with kubectl."""
    return {"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items}


def print_objects(items: list[dict], output: str, columns, wide_columns=()) -> None:
    """columns: list of (header, fn(obj) -> str)."""
    if output not in FORMATS:
        fail(f"-o {output!r} is not a format; expected one of {', '.join(FORMATS)}")
    if output == "json":
        print(json.dumps(as_list(items), indent=2, sort_keys=False))
        return
    if output == "yaml":
        print(yaml.safe_dump(as_list(items), sort_keys=False), end="")
        return
    cols = list(columns) + (list(wide_columns) if output == "wide" else [])
    table = Table(box=None, pad_edge=False, header_style="bold")
    for header, _ in cols:
        table.add_column(header)
    for obj in items:
        table.add_row(*[str(fn(obj)) for _, fn in cols])
    if not items:
        console.print("No resources found.")
        return
    console.print(table)
