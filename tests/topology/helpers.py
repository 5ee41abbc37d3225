"""Shared helpers for the topology tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.topology import TopologyError, load_topology_text

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]

HEAD = """\
apiVersion: testbed.dev/v1alpha1
kind: Topology
metadata:
  name: t
spec:
"""
# Line numbers below count from the top of HEAD + body (body starts on line 6).
NODES = """\
  nodes:
    - name: cp
      role: control-plane
    - name: worker1
"""


def doc(body: str) -> str:
    """A topology text: the fixed HEAD (5 lines) followed by ``body``."""
    return HEAD + body


def problems_of(text: str, source: str = "t.yaml", base_dir: Path | None = None) -> list[str]:
    """The problem lines for ``text``, which must be rejected."""
    with pytest.raises(TopologyError) as info:
        load_topology_text(text, source, base_dir=base_dir or FIXTURES)
    lines = str(info.value).splitlines()
    assert lines == [str(p) for p in info.value.problems]
    return lines
