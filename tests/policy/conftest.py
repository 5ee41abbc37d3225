"""Policy test configuration: the ``root`` marker (real netns topologies)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "root: needs root, iproute2, nft/iptables and network namespaces "
        "(skipped otherwise, with the reason)"
    )
