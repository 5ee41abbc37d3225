"""Testbed lifecycle through the real CLI: up, idempotent up, conflicts, down, interruptions,
side-by-side testbeds, and repeated cycles that must leave nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testbed.runtime.base import LABEL_NAME

ROOT = Path(__file__).resolve().parents[2]
TESTBED = [sys.executable, "-m", "testbed"]
DEFAULT = str(ROOT / "topologies" / "default.yaml")
SMALL = str(ROOT / "suites" / "topology.yaml")


def tb(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([*TESTBED, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"testbed {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def docker():
    from testbed.runtime.docker_runtime import DockerRuntime

    return DockerRuntime()


def leftovers(docker, name: str) -> dict[str, int]:
    labels = {LABEL_NAME: name}
    return {"containers": len(docker.containers(labels)),
            "networks": len(docker.networks(labels)),
            "volumes": len(docker.volumes(labels)),
            "host_rules": _host_rules(name)}


def _host_rules(name: str) -> int:
    from testbed.runtime.hostfw import rules_for

    out = subprocess.run(["iptables", "-w", "-S", "DOCKER-USER"], capture_output=True, text=True)
    return len(rules_for(out.stdout, name))


NOTHING = {"containers": 0, "networks": 0, "volumes": 0, "host_rules": 0}


def test_up_default_topology_get_exec_and_down(docker):
    name = "lc-default"
    try:
        tb("up", "-f", DEFAULT, "--name", name)
        nodes = json.loads(tb("get", "nodes", "--name", name, "-o", "json").stdout)
        assert nodes["kind"] == "List"
        got = {n["metadata"]["name"]: n for n in nodes["items"]}
        assert set(got) == {"control-plane", "worker1", "worker2"}
        for node in got.values():
            assert node["status"]["addresses"][0]["address"].count(".") == 3
            assert any(c["type"] == "Ready" and c["status"] == "True"
                       for c in node["status"]["conditions"])
        roles = {n: "node-role.kubernetes.io/control-plane" in o["metadata"]["labels"]
                 for n, o in got.items()}
        assert roles == {"control-plane": True, "worker1": False, "worker2": False}
        pods = json.loads(tb("get", "pods", "-A", "--name", name, "-o", "json").stdout)["items"]
        netexec = [p for p in pods if p["metadata"]["labels"].get("app") == "netexec"]
        assert len(netexec) == 3
        assert all(p["status"]["phase"] == "Running" for p in pods)
        # exec passes stdout and the exit code through
        out = tb("exec", "--name", name, "client", "--", "curl", "-s",
                 f"http://{netexec[0]['status']['podIP']}:8080/hostname")
        assert out.stdout == netexec[0]["metadata"]["name"]
        assert tb("exec", "--name", name, "--node", "worker1", "--", "sh", "-c", "exit 7",
                  check=False).returncode == 7
        assert tb("exec", "--name", name, "--host", "client", "--", "hostname").stdout.strip() \
            == "client"
        # a second up is a no-op; a different mode is refused without --recreate
        again = tb("up", "-f", DEFAULT, "--name", name)
        assert "already running" in again.stderr
        other = tb("up", "-f", DEFAULT, "--name", name, "--mode", "nftables", check=False)
        assert other.returncode != 0 and "--recreate" in other.stderr
        assert leftovers(docker, name)["containers"] == 4
    finally:
        tb("down", "--name", name)
    assert leftovers(docker, name) == NOTHING
    tb("down", "--name", name)  # idempotent


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "crash"])
def test_interrupted_up_is_fully_removed_by_down(docker, sig):
    name = f"lc-int-{sig.name.lower()}"
    proc = subprocess.Popen([*TESTBED, "up", "-f", DEFAULT, "--name", name], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(docker.containers({LABEL_NAME: name})) < 4:
        time.sleep(0.05)
    assert proc.poll() is None, "up finished before it could be interrupted"
    os.kill(proc.pid, sig)
    proc.wait(timeout=60)
    tb("down", "--name", name)
    assert leftovers(docker, name) == NOTHING


def test_two_testbeds_side_by_side_and_overlap_rejected(docker):
    names = ["lc-side-a", "lc-side-b"]
    try:
        for n in names:
            tb("up", "-f", SMALL, "--name", n)
        status = tb("status").stdout
        subnets = set()
        for n in names:
            nets = docker.networks({LABEL_NAME: n})
            assert len(nets) == 1
            subnets.add(nets[0].subnet)
            assert n in status
        assert len(subnets) == 2
        taken = next(iter(subnets))
        clash = ROOT / "reports" / "clash.yaml"
        clash.parent.mkdir(exist_ok=True)
        clash.write_text(Path(SMALL).read_text().replace(
            "kubeProxyMode: iptables", f"kubeProxyMode: iptables\n    nodeSubnet: {taken}"))
        bad = tb("up", "-f", str(clash), "--name", "lc-side-c", check=False)
        assert bad.returncode != 0 and "overlaps" in bad.stderr and "nodeSubnet" in bad.stderr
        assert leftovers(docker, "lc-side-c") == NOTHING
    finally:
        for n in names:
            tb("down", "--name", n)
    for n in names:
        assert leftovers(docker, n) == NOTHING


def _shim_count() -> int:
    out = subprocess.run(["ps", "-eo", "comm"], capture_output=True, text=True).stdout
    return sum(1 for line in out.splitlines() if line.startswith("containerd-shim"))


def test_ten_up_down_cycles_leave_nothing(docker):
    name = "lc-cycle"
    shims = _shim_count()
    for _ in range(10):
        tb("up", "-f", SMALL, "--name", name)
        tb("down", "--name", name)
        assert leftovers(docker, name) == NOTHING
    assert _shim_count() == shims
