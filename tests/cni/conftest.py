"""Shared fixtures for the CNI tests (no root needed except tests marked ``root``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from .helpers import REPO, write_exe


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "root: needs root, iproute2 and network namespaces (skipped otherwise)"
    )


@pytest.fixture
def plugin_exe(tmp_path: Path) -> Path:
    """Our plugin entry script, runnable with the test interpreter."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    body = (REPO / "testbed" / "cni" / "testbed-cni").read_text().split("\n", 1)[1]
    return write_exe(bindir / "testbed-cni", f"#!{sys.executable}\n{body}")


@pytest.fixture
def plugin_env(monkeypatch: pytest.MonkeyPatch) -> dict:
    """Environment for running the plugin script (repo importable)."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    monkeypatch.setenv("PYTHONPATH", path)
    return dict(os.environ)
