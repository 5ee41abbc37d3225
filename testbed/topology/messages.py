"""Turns pydantic validation errors into (path, message) findings in file terms."""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import FieldPath, Finding, show

# What a wrong value of each Literal field is "not", for messages such as
# '"iptabels" is not a mode; expected one of iptables, nftables, ipvs, ebpf'.
_LITERAL_NOUNS = {
    "kubeProxyMode": "mode",
    "routing": "routing mode",
    "podNetwork": "pod network mode",
    "role": "role",
    "type": "CNI type",
    "apiVersion": "supported apiVersion",
    "kind": "supported kind",
}
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")


def translate(err: ValidationError, data: Any, root: type[BaseModel]) -> list[Finding]:
    """One ``(path, message)`` per pydantic error, with paths following ``data``."""
    findings = []
    for error in err.errors(include_url=False):
        path = _data_path(error["loc"], data, missing=error["type"] == "missing")
        findings.append((path, _message(error, path, root)))
    return findings


def _data_path(loc: tuple[Any, ...], data: Any, *, missing: bool) -> FieldPath:
    """The part of ``loc`` that names real places in ``data``.

    pydantic adds its own markers to ``loc`` ("[key]" for dict keys, union
    member names); dropping whatever does not exist in the input leaves the
    user's path. A missing field's name is kept so the message can name it.
    """
    path: list[str | int] = []
    current = data
    for index, part in enumerate(loc):
        in_dict = isinstance(current, dict) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        if in_dict or in_list:
            path.append(part)
            current = current[part]
        elif missing and index == len(loc) - 1 and isinstance(part, str):
            path.append(part)
        else:
            break
    return tuple(path)


def _message(error: Any, path: FieldPath, root: type[BaseModel]) -> str:
    kind, value = error["type"], error.get("input")
    ctx = error.get("ctx") or {}
    last = path[-1] if path else ""
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field" + _suggest(path, root)
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    if kind == "literal_error":
        choices = ", ".join(_QUOTED.findall(str(ctx.get("expected", ""))))
        noun = _LITERAL_NOUNS.get(str(last), "valid value")
        return f"{show(value)} is not a {noun}; expected one of {choices}"
    if kind == "string_type":
        hint = " (put it in quotes)" if isinstance(value, int | float) else ""
        return f"expected a string, got {show(value)}{hint}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping, got {show(value)}"
    if kind == "list_type":
        return f"expected a list, got {show(value)}"
    if kind == "too_short":
        if last == "nodes":
            return "at least one node is required"
        return "must not be empty"
    return f"{error['msg']} (got {show(value)})"


def _suggest(path: FieldPath, root: type[BaseModel]) -> str:
    model = _model_at(path[:-1], root)
    if model is None or not isinstance(path[-1], str):
        return ""
    known = [f.alias or name for name, f in model.model_fields.items()]
    close = difflib.get_close_matches(path[-1], known, n=1)
    if close:
        return f" (did you mean {close[0]}?)"
    return f"; expected one of {', '.join(known)}"


def _model_at(path: FieldPath, root: type[BaseModel]) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``path``, if there is one."""
    current: Any = root
    for part in path:
        if isinstance(part, int):
            args = typing.get_args(current)
            if typing.get_origin(current) is not list or not args:
                return None
            current = args[0]
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        fields = {f.alias or name: f for name, f in current.model_fields.items()}
        if part not in fields:
            return None
        current = _unwrap(fields[part].annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _unwrap(annotation: Any) -> Any:
    # "X | None" -> X, so optional sub-models are found too.
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation
