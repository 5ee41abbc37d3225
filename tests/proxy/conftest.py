"""Fixtures for the proxy tests. Only tests marked ``root`` need root; they skip otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

GOLDEN_DIR = Path(__file__).parent / "golden"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "root: needs root, iproute2 and network namespaces (skipped otherwise)"
    )


@pytest.fixture
def golden():
    """``golden(name, text)``: compare with ``tests/proxy/golden/<name>``; with
    ``UPDATE_GOLDENS=1`` in the environment, (re)write the file instead."""

    def check(name: str, text: str) -> None:
        path = GOLDEN_DIR / name
        if os.environ.get("UPDATE_GOLDENS") == "1":
            path.write_text(text)
            return
        assert path.exists(), f"missing golden {path}; run with UPDATE_GOLDENS=1 to create it"
        assert text == path.read_text(), f"{name} differs; UPDATE_GOLDENS=1 rewrites it"

    return check
