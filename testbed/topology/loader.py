"""Loading a topology file: parse, validate, resolve manifests, report problems."""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from pydantic import ValidationError

from . import kind as kindcfg
from . import manifests as mf
from .checks import check_topology
from .errors import FieldPath, Problem, TopologyError, format_path
from .messages import translate
from .model import API_VERSION, Topology
from .yamlpos import Positions, parse_single

COMMAND_LINE = "command line"
INTERNAL_ERROR = "internal error while validating (please report this)"
_EXPECTED_TOP = (
    f"expected a Topology (apiVersion {API_VERSION}) "
    f"or a kind Cluster (apiVersion {kindcfg.KIND_API_VERSION})"
)
_CNI = ("spec", "networking", "cni")


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _only_topology_errors(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Keep the promise that loading raises TopologyError and nothing else.

    Every known failure is already turned into a Problem; this is the last
    line of defence so a bug shows up as a message, not a traceback. The
    fuzz tests assert that it never fires.
    """

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return func(*args, **kwargs)
        except TopologyError:
            raise
        except Exception as err:  # deliberately broad, see docstring
            detail = " ".join(f"{type(err).__name__}: {err}".split())[:200]
            problem = Problem("<topology>", None, "", f"{INTERNAL_ERROR}: {detail}")
            raise TopologyError([problem]) from err

    return wrapper


@dataclass(frozen=True)
class Locator:
    """Turns a path in the (mapped) topology into a Problem in the source file."""

    file: str
    positions: Positions = field(default_factory=Positions)
    # For kind configs: topology path -> path in the kind file.
    to_source: Callable[[FieldPath], FieldPath] = lambda path: path

    def problem(self, path: FieldPath, message: str) -> Problem:
        src = self.to_source(path)
        return Problem(self.file, self.positions.line(src), format_path(src), message)


@dataclass(frozen=True)
class LoadedTopology:
    """A validated topology plus everything resolved from files next to it.

    ``objects`` are the manifest objects in order (file manifests parsed,
    inline ones copied, ``kind: List`` flattened). ``cni_conflist_path`` and
    ``cni_bin_dir`` are absolute paths for ``cni.type: custom``, else None.
    """

    topology: Topology
    source: Path | None
    objects: list[dict[str, Any]]
    cni_conflist_path: Path | None = None
    cni_bin_dir: Path | None = None
    # Where each field came from, so with_overrides can still cite lines.
    locator: Locator | None = field(default=None, repr=False, compare=False)


@_only_topology_errors
def load_topology(path: str | Path) -> LoadedTopology:
    """Load and validate a topology (or kind Cluster) file.

    Relative manifest and CNI paths are resolved against the file's directory.
    Raises TopologyError, listing every problem found, and nothing else.
    """
    shown = str(path)
    try:
        text = mf.read_text(Path(path))
    except ValueError as err:
        raise TopologyError([Problem(shown, None, "", str(err))]) from None
    file_path = Path(path).absolute()
    return _load(text, shown, file_path.parent, os.path.dirname(shown), file_path)


@_only_topology_errors
def load_topology_text(
    text: str, source: str = "<string>", base_dir: Path | None = None
) -> LoadedTopology:
    """Like :func:`load_topology` for YAML text; ``source`` names it in messages.

    Relative paths are resolved against ``base_dir`` (default: the current
    directory). ``LoadedTopology.source`` is None.
    """
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    shown_base = str(base_dir) if base_dir is not None else ""
    return _load(text, source, base.absolute(), shown_base, None)


@_only_topology_errors
def with_overrides(
    lt: LoadedTopology,
    *,
    name: str | None = None,
    mode: str | None = None,
    node_subnet: IPv4Network | None = None,
) -> LoadedTopology:
    """A copy of ``lt`` with command-line overrides applied and validated again.

    Problems caused by an override name the flag (``--name``, ``--mode``,
    ``--node-subnet``); the rest keep their file and line.
    """
    data = lt.topology.model_dump(by_alias=True)
    flags: dict[FieldPath, str] = {}
    if name is not None:
        data["metadata"]["name"] = name
        flags[("metadata", "name")] = "--name"
    if mode is not None:
        data["spec"]["networking"]["kubeProxyMode"] = mode
        flags[("spec", "networking", "kubeProxyMode")] = "--mode"
    if node_subnet is not None:
        data["spec"]["networking"]["nodeSubnet"] = node_subnet
        flags[("spec", "networking", "nodeSubnet")] = "--node-subnet"
    locator = lt.locator or Locator(str(lt.source) if lt.source else "<topology>")

    def report(path: FieldPath, message: str) -> Problem:
        for flagged, flag in flags.items():
            if path[: len(flagged)] == flagged:
                return Problem(COMMAND_LINE, None, flag, message)
        return locator.problem(path, message)

    topology, findings = _validate(data)
    if topology is None or findings:
        raise TopologyError([report(p, m) for p, m in findings])
    return LoadedTopology(
        topology, lt.source, lt.objects, lt.cni_conflist_path, lt.cni_bin_dir, locator
    )


def _validate(data: Any) -> tuple[Topology | None, list[tuple[FieldPath, str]]]:
    """Schema validation, then cross-field checks when the shape is right."""
    try:
        topology = Topology.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as err:
        return None, translate(err, data, Topology)
    return topology, check_topology(topology)


def _load(
    text: str, source: str, base_dir: Path, shown_base: str, file_path: Path | None
) -> LoadedTopology:
    doc = parse_single(text, source)
    if doc is None or doc.data is None:
        raise TopologyError([Problem(source, None, "", f"empty file; {_EXPECTED_TOP}")])
    if not isinstance(doc.data, dict):
        raise TopologyError([Problem(source, doc.line, "", f"not a mapping; {_EXPECTED_TOP}")])

    locator = Locator(source, doc.positions)
    data: Any = doc.data
    problems: list[Problem] = []
    if kindcfg.is_kind_config(data):
        locator = Locator(source, doc.positions, kindcfg.kind_path)
        data, kind_findings = kindcfg.kind_to_topology(data)
        problems += [
            Problem(source, doc.positions.line(p), format_path(p), m) for p, m in kind_findings
        ]

    topology, findings = _validate(data)
    problems += [locator.problem(p, m) for p, m in findings]
    # Manifests are resolved even when the schema failed, so one run reports
    # problems in manifest files too.
    objects = _resolve_manifests(data, base_dir, shown_base, locator, problems)
    conflist = bin_dir = None
    if topology is not None:
        conflist, bin_dir = _resolve_cni(topology, base_dir, locator, problems)
    if topology is None or problems:
        raise TopologyError(_ordered(problems, source))
    return LoadedTopology(topology, file_path, objects, conflist, bin_dir, locator)


def _resolve_manifests(
    data: Any, base_dir: Path, shown_base: str, locator: Locator, problems: list[Problem]
) -> list[dict[str, Any]]:
    """Objects from ``spec.manifests`` of the raw input (so lines and key order are kept).

    Entries of the wrong type are skipped here; the schema reports them.
    """
    spec = data.get("spec") if isinstance(data, dict) else None
    entries = spec.get("manifests") if isinstance(spec, dict) else None
    if not isinstance(entries, list):
        return []
    objects: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        where: FieldPath = ("spec", "manifests", index)

        def report(path: FieldPath, message: str, where: FieldPath = where) -> None:
            problems.append(locator.problem((*where, *path), message))

        if isinstance(entry, str) and entry.strip():
            shown = mf.display(shown_base, entry)
            found, file_problems = mf.load_manifest_file(mf.resolve(base_dir, entry), shown, report)
            objects += found
            problems.extend(file_problems)
        elif isinstance(entry, dict):
            objects += copy.deepcopy(mf.check_objects(entry, (), report))
    return objects


def _resolve_cni(
    topology: Topology, base_dir: Path, locator: Locator, problems: list[Problem]
) -> tuple[Path | None, Path | None]:
    cni = topology.spec.networking.cni
    if cni.type != "custom" or not cni.conflist or not cni.bin_dir:
        return None, None  # missing ones were already reported by the checks
    conflist = Path(os.path.normpath(mf.resolve(base_dir, cni.conflist).absolute()))
    bin_dir = Path(os.path.normpath(mf.resolve(base_dir, cni.bin_dir).absolute()))
    why = mf.check_conflist(conflist)
    if why:
        problems.append(
            locator.problem((*_CNI, "conflist"), f"{mf.printable(cni.conflist)}: {why}")
        )
    why = mf.check_bin_dir(bin_dir)
    if why:
        problems.append(locator.problem((*_CNI, "binDir"), f"{mf.printable(cni.bin_dir)}: {why}"))
    return conflist, bin_dir


def _ordered(problems: list[Problem], source: str) -> list[Problem]:
    """Topology-file problems first, each file's problems by line."""
    files = [source] + [p.file for p in problems if p.file != source]
    rank = {f: i for i, f in reversed(list(enumerate(files)))}
    return sorted(problems, key=lambda p: (rank[p.file], p.line or 0))
