"""Fixtures for the store contract: an in-memory store and a real etcd 3.4."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from testbed.store import EtcdStore, MemoryStore, StoreUnavailable

ETCD_BIN = os.environ.get("ETCD_BIN", "/usr/bin/etcd")
MISSING_ETCD = "install etcd-server (Debian) to run the store contract against real etcd"


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class EtcdServer:
    """A running etcd started by these fixtures."""

    host: str
    port: int
    proc: subprocess.Popen


@contextlib.contextmanager
def run_etcd() -> Iterator[EtcdServer]:
    """Start a throw-away single-member etcd on 127.0.0.1; kill it (by PID) on exit."""
    if not os.access(ETCD_BIN, os.X_OK):
        pytest.fail(MISSING_ETCD, pytrace=False)
    client_port, peer_port = _free_ports(2)
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # no fsync cost
    tmp = Path(tempfile.mkdtemp(prefix="testbed-etcd-", dir=shm))
    client_url = f"http://127.0.0.1:{client_port}"
    peer_url = f"http://127.0.0.1:{peer_port}"
    cmd = [
        ETCD_BIN,
        "--name=contract",
        f"--data-dir={tmp / 'data'}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=contract={peer_url}",
        "--logger=zap",
        "--log-level=error",
    ]
    log_path = tmp / "etcd.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        probe = EtcdStore("127.0.0.1", client_port, timeout=2)
        try:
            probe.wait_ready(timeout=15)
        except StoreUnavailable as exc:
            tail = log_path.read_text(errors="replace")[-2000:]
            pytest.fail(f"etcd did not become ready: {exc}\n{tail}", pytrace=False)
        finally:
            probe.close()
        yield EtcdServer("127.0.0.1", client_port, proc)
    finally:
        stop_pid(proc)
        shutil.rmtree(tmp, ignore_errors=True)


def stop_pid(proc: subprocess.Popen) -> None:
    """SIGTERM then SIGKILL exactly this process (by PID) and reap it."""
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="session")
def etcd_endpoint() -> Iterator[tuple[str, int]]:
    """One etcd for the whole session (tests use unique key prefixes)."""
    with run_etcd() as server:
        yield server.host, server.port


@pytest.fixture
def etcd_factory() -> Callable[[], contextlib.AbstractContextManager[EtcdServer]]:
    """Start private etcd servers: ``with etcd_factory() as server: ...``."""
    return run_etcd


@pytest.fixture(params=["memory", "etcd"])
def store(request: pytest.FixtureRequest) -> Iterator[MemoryStore | EtcdStore]:
    """Each contract test runs against both implementations."""
    if request.param == "memory":
        s: MemoryStore | EtcdStore = MemoryStore()
    else:
        host, port = request.getfixturevalue("etcd_endpoint")
        s = EtcdStore(host, port, timeout=5)
    yield s
    s.close()


@pytest.fixture
def pfx() -> str:
    """A key prefix unique to the test (the etcd server is shared)."""
    return f"/t/{uuid.uuid4().hex[:10]}/"
