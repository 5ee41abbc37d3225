"""Rejected topologies: manifests, YAML syntax and whole-file problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.topology import TopologyError, load_topology

from .helpers import FIXTURES, NODES, doc, problems_of

CASES = [
    pytest.param(
        doc(NODES).replace("kind: Topology", "kind: Topo"),
        2,
        "kind",
        '"Topo" is not a supported kind; expected one of Topology',
        id="bad-kind",
    ),
    pytest.param(
        doc(NODES).replace("testbed.dev/v1alpha1", "testbed.dev/v2"),
        1,
        "apiVersion",
        "expected one of testbed.dev/v1alpha1",
        id="bad-api-version",
    ),
    pytest.param(
        doc(NODES + "  manifests:\n    - does/not/exist.yaml\n"),
        11,
        "spec.manifests[0]",
        "does/not/exist.yaml: file not found",
        id="manifest-missing",
    ),
    pytest.param(
        doc(NODES + "  manifests:\n    - manifests\n"),
        11,
        "spec.manifests[0]",
        "not a regular file",
        id="manifest-is-directory",
    ),
    pytest.param(
        doc(NODES + "  manifests:\n    - kind: Namespace\n      metadata: {name: x}\n"),
        11,
        "spec.manifests[0].apiVersion",
        "missing; every Kubernetes object needs kind, apiVersion and metadata.name",
        id="inline-manifest-no-api-version",
    ),
    pytest.param(
        doc(
            NODES + "  manifests:\n    - apiVersion: v1\n      kind: Namespace\n"
            "      metadata:\n        labels: {}\n"
        ),
        13,
        "spec.manifests[0].metadata.name",
        "missing",
        id="inline-manifest-no-name",
    ),
    pytest.param(
        doc(NODES + "  manifests:\n    - 42\n"),
        11,
        "spec.manifests[0]",
        "expected a manifest file path or an inline Kubernetes object, got 42",
        id="manifest-wrong-type",
    ),
    pytest.param(
        doc(NODES + "  manifests:\n    - apiVersion: v1\n      kind: List\n      items: 3\n"),
        13,
        "spec.manifests[0].items",
        "expected a list of Kubernetes objects",
        id="list-items-not-list",
    ),
    pytest.param(
        doc(NODES + "  nodes: []\n"),
        10,
        "spec.nodes",
        "duplicate key (first on line 6)",
        id="duplicate-yaml-key",
    ),
    pytest.param(
        doc(NODES + "    - name: [\n"),
        11,
        "",
        "invalid YAML",
        id="yaml-syntax",
    ),
    pytest.param(
        doc(NODES + "  1: x\n"),
        10,
        "spec",
        'key "1" is not a string; put it in quotes',
        id="non-string-key",
    ),
    pytest.param(
        doc(NODES + "  externalHosts: !custom [a]\n"),
        10,
        "spec.externalHosts",
        "unsupported YAML tag !custom",
        id="custom-tag",
    ),
]


@pytest.mark.parametrize(("text", "line", "field", "message"), CASES)
def test_rejected(text: str, line: int, field: str, message: str) -> None:
    problems = problems_of(text)
    where = f"t.yaml:{line}: {field}: " if field else f"t.yaml:{line}: "
    matching = [p for p in problems if p.startswith(where) and message in p]
    assert matching, f"expected {where!r}...{message!r} in:\n" + "\n".join(problems)


def test_several_problems_reported_at_once() -> None:
    text = doc(
        "  networking:\n    kubeProxyMode: bpf\n    routing: bgp\n"
        "  nodes:\n    - name: BAD\n      role: control-plane\n"
        "  manifests:\n    - nope.yaml\n"
    )
    problems = problems_of(text)
    assert [p.split(": ")[0] for p in problems] == [
        "t.yaml:7",
        "t.yaml:8",
        "t.yaml:10",
        "t.yaml:13",
    ]


def test_manifest_file_problems_name_the_manifest_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES.parent.parent)
    text = (FIXTURES / "bad_manifests.yaml").read_text()
    problems = problems_of(text, "fx/bad.yaml", base_dir=Path("topology/fixtures"))
    required = "every Kubernetes object needs kind, apiVersion and metadata.name"
    shown = "topology/fixtures/manifests"
    assert problems == [
        f"fx/bad.yaml:7: spec.manifests[1]: {shown}/missing.yaml: file not found",
        f"fx/bad.yaml:9: spec.manifests[3].apiVersion: missing; {required}",
        f"{shown}/broken.yaml:6: kind: missing; {required}",
        f"{shown}/broken.yaml:12: metadata.name: missing; {required}",
        f"{shown}/unparsable.yaml:5: invalid YAML: expected ',' or ']', but got '<stream end>' "
        "(while parsing a flow sequence on line 4)",
    ]


def test_file_paths_shown_relative_to_topology_file() -> None:
    with pytest.raises(TopologyError) as info:
        load_topology(FIXTURES / "bad_manifests.yaml")
    shown = {p.file for p in info.value.problems}
    assert str(FIXTURES / "manifests/broken.yaml") in shown
    assert str(FIXTURES / "bad_manifests.yaml") in shown


def test_bad_syntax_fixture_reports_line() -> None:
    problems = problems_of((FIXTURES / "bad_syntax.yaml").read_text(), "bad_syntax.yaml")
    assert len(problems) == 1
    assert problems[0].startswith("bad_syntax.yaml:6: invalid YAML")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("# just a comment\n", "empty file"),
        ("- a\n- b\n", "not a mapping"),
        ("just a string", "not a mapping"),
        ("\x00\x01", "unacceptable character"),
        ("a: &a [*a]\n", "recursive YAML alias"),
        ("---\nspec: {}\n---\nspec: {}\n", "expected a single document"),
    ],
)
def test_whole_file_problems(text: str, message: str) -> None:
    problems = problems_of(text)
    assert len(problems) == 1 and message in problems[0], problems


def test_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    problems = problems_of("\n".join(lines) + "\n")
    assert problems == ["t.yaml:1: document too large after expanding aliases (over 200000 values)"]


def test_deep_nesting_is_refused() -> None:
    problems = problems_of("spec: " + "[" * 5000 + "]" * 5000 + "\n")
    assert len(problems) == 1
