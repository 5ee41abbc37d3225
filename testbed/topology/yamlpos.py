"""YAML parsing that remembers the line every value came from.

PyYAML's ``safe_load`` throws position information away, but every problem we
report must name a line. So we compose the node graph ourselves and build
plain Python data from it while recording ``path -> line`` for each mapping
key and sequence item. Everything that can go wrong (syntax, bad tags, alias
bombs, recursion) is turned into a :class:`Problem`, never an exception.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import FieldPath, Problem, TopologyError, format_path, show

# A YAML document small enough to be a topology or a manifest never comes close
# to this; the limit only exists to defuse "billion laughs" alias expansion.
MAX_EXPANDED_NODES = 200_000

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MAP_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:set"}
_SEQ_TAGS = {"tag:yaml.org,2002:seq", "tag:yaml.org,2002:omap", "tag:yaml.org,2002:pairs"}


@dataclass
class Positions:
    """Maps a path inside one YAML document to the 1-based line it starts on."""

    lines: dict[FieldPath, int] = field(default_factory=dict)

    def line(self, path: FieldPath) -> int | None:
        """Line of ``path``, or of its nearest recorded ancestor.

        Falling back to the ancestor is what makes a *missing* field point at
        the mapping that should have contained it.
        """
        for end in range(len(path), -1, -1):
            found = self.lines.get(tuple(path[:end]))
            if found is not None:
                return found
        return None


@dataclass
class Document:
    """One parsed YAML document: its data and where each part of it came from."""

    data: Any
    positions: Positions

    @property
    def line(self) -> int | None:
        return self.positions.line(())


def parse_single(text: str, file: str) -> Document | None:
    """Parse exactly one YAML document; ``None`` if the text holds no document.

    Non-string mapping keys are rejected: every key in a topology is a name.
    """
    return _parse(text, file, single=True, stringify_keys=False)[0] if text else None


def parse_all(text: str, file: str) -> list[Document]:
    """Parse a multi-document stream (``---`` separated), skipping empty documents.

    Scalar keys that are not strings are turned into strings, the way
    ``kubectl`` (sigs.k8s.io/yaml) treats them, so valid manifests stay valid.
    """
    docs = _parse(text, file, single=False, stringify_keys=True)
    # "---" followed by nothing composes to a null scalar: also an empty document.
    return [d for d in docs if d is not None and d.data is not None]


def _parse(text: str, file: str, *, single: bool, stringify_keys: bool) -> list[Document | None]:
    loader: yaml.SafeLoader | None = None
    try:
        # The reader checks for unprintable characters right here, so this
        # must be inside the try as well.
        loader = yaml.SafeLoader(text)
        nodes = list(_compose(loader, single))
        docs: list[Document | None] = []
        for node in nodes:
            if node is None:
                docs.append(None)
                continue
            builder = _Builder(loader, file, stringify_keys)
            data = builder.build_root(node)
            if builder.problems:
                raise TopologyError(builder.problems)
            docs.append(Document(data, builder.positions))
        return docs
    except yaml.MarkedYAMLError as err:
        raise TopologyError([_syntax_problem(err, file)]) from None
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, err.position) + 1
        char = err.character
        code = f"#x{ord(char):04x}" if isinstance(char, str) else f"#x{char:02x}"
        msg = f"unacceptable character {code}: {err.reason}; YAML allows only printable characters"
        raise TopologyError([Problem(file, line, "", msg)]) from None
    except yaml.YAMLError as err:
        raise TopologyError([Problem(file, None, "", f"invalid YAML: {_one_line(err)}")]) from None
    except RecursionError:
        msg = "invalid YAML: nested too deeply"
        raise TopologyError([Problem(file, None, "", msg)]) from None
    finally:
        if loader is not None:
            loader.dispose()


def _compose(loader: yaml.SafeLoader, single: bool) -> Iterator[Node | None]:
    if single:
        yield loader.get_single_node()
        return
    while loader.check_node():
        yield loader.get_node()


def _syntax_problem(err: yaml.MarkedYAMLError, file: str) -> Problem:
    mark = err.problem_mark or err.context_mark
    line = mark.line + 1 if mark is not None else None
    msg = _one_line(err.problem or str(err))
    if err.context and msg.startswith("but "):
        # The composer's "expected a single document ..., but found another".
        return Problem(file, line, "", f"invalid YAML: {_one_line(err.context)}, {msg}")
    if err.context:
        ctx = _one_line(err.context)
        if err.context_mark is not None and err.context_mark.line + 1 != line:
            ctx += f" on line {err.context_mark.line + 1}"
        msg += f" ({ctx})"
    return Problem(file, line, "", f"invalid YAML: {msg}")


def _one_line(value: object) -> str:
    # PyYAML quotes offending tokens, which may be arbitrarily long.
    text = " ".join(str(value).split())
    return text if len(text) <= 300 else text[:297] + "..."


class _Recursive(Exception):
    def __init__(self, node: Node) -> None:
        self.node = node


class _Builder:
    """Turns a composed node graph into plain data plus a position map."""

    def __init__(self, loader: yaml.SafeLoader, file: str, stringify_keys: bool) -> None:
        self.loader = loader
        self.file = file
        self.stringify_keys = stringify_keys
        self.problems: list[Problem] = []
        self.positions = Positions()
        # Keys written in a mapping itself (as opposed to merged in with "<<"),
        # remembered per node because flatten_mapping rewrites node.value.
        self._own_keys: dict[int, set[int]] = {}

    def problem(self, node: Node, path: FieldPath, message: str) -> None:
        line = node.start_mark.line + 1
        self.problems.append(Problem(self.file, line, format_path(path), message))

    def build_root(self, node: Node) -> Any:
        self.positions.lines[()] = node.start_mark.line + 1
        try:
            size = _expanded_size(node, {}, set())
        except _Recursive as rec:
            self.problem(rec.node, (), "recursive YAML alias (a value that contains itself)")
            return None
        if size > MAX_EXPANDED_NODES:
            msg = f"document too large after expanding aliases (over {MAX_EXPANDED_NODES} values)"
            self.problem(node, (), msg)
            return None
        return self.build(node, ())

    def build(self, node: Node, path: FieldPath) -> Any:
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if isinstance(node, SequenceNode):
            if node.tag not in _SEQ_TAGS:
                self.problem(node, path, f"unsupported YAML tag {node.tag}")
                return None
            items = []
            for index, item in enumerate(node.value):
                self.positions.lines[(*path, index)] = item.start_mark.line + 1
                items.append(self.build(item, (*path, index)))
            return items
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        self.problem(node, path, "unsupported YAML node")  # pragma: no cover - defensive
        return None

    def _scalar(self, node: ScalarNode, path: FieldPath) -> Any:
        # Kubernetes reads unquoted dates as strings; datetime objects would
        # also not survive being sent to the API server as JSON.
        if node.tag == _TIMESTAMP:
            return node.value
        try:
            return self.loader.construct_object(node, deep=True)
        except Exception as err:  # PyYAML raises many types on odd scalars
            if isinstance(err, yaml.MarkedYAMLError) and err.problem:
                why = _one_line(err.problem)
            elif isinstance(err, ValueError):
                why = _one_line(err)
            else:
                why = f"not a valid {node.tag.rsplit(':', 1)[-1]}"
            self.problem(node, path, f"cannot read value {show(node.value)}: {why}")
            return None

    def _mapping(self, node: MappingNode, path: FieldPath) -> Any:
        if node.tag not in _MAP_TAGS:
            self.problem(node, path, f"unsupported YAML tag {node.tag}")
            return None
        if id(node) not in self._own_keys:
            self._own_keys[id(node)] = {id(k) for k, _ in node.value}
            try:
                self.loader.flatten_mapping(node)
            except yaml.MarkedYAMLError as err:
                self.problem(node, path, f"invalid merge key: {_one_line(err.problem)}")
                return None
        own = self._own_keys[id(node)]
        result: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, path)
            if key is _BAD_KEY:
                continue
            line = key_node.start_mark.line + 1
            if id(key_node) in own:
                if key in first_line:
                    where = f"first on line {first_line[key]}"
                    self.problem(key_node, (*path, key), f"duplicate key ({where})")
                    continue
                first_line[key] = line
            self.positions.lines[(*path, key)] = line
            result[key] = self.build(value_node, (*path, key))
        return result

    def _key(self, node: Node, path: FieldPath) -> Any:
        if not isinstance(node, ScalarNode):
            self.problem(node, path, "mapping keys must be plain strings, not lists or mappings")
            return _BAD_KEY
        reported = len(self.problems)
        key = self._scalar(node, path)
        if len(self.problems) > reported:
            return _BAD_KEY
        if isinstance(key, str):
            return key
        if self.stringify_keys and (key is None or isinstance(key, bool | int | float)):
            return _json_scalar(key)
        self.problem(node, path, f"key {show(node.value)} is not a string; put it in quotes")
        return _BAD_KEY


def _json_scalar(value: None | bool | int | float) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_BAD_KEY = object()


def _expanded_size(node: Node, memo: dict[int, int], active: set[int]) -> int:
    """Number of values the document has once every alias is copied out."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in active:
        raise _Recursive(node)
    active.add(key)
    size = 1
    if isinstance(node, SequenceNode):
        size += sum(_expanded_size(child, memo, active) for child in node.value)
    elif isinstance(node, MappingNode):
        for k, v in node.value:
            size += _expanded_size(k, memo, active) + _expanded_size(v, memo, active)
    active.discard(key)
    memo[key] = size
    return size
