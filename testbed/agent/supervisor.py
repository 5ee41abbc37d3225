"""PID 1 of every node container: starts the node's processes, restarts them, reaps orphans.

Which processes run depends on the node's role (TESTBED_ROLE): etcd and the controller on the
control-plane node, the agent on every cluster node. Logs go to /var/log/testbed/<program>.log and
each program's PID to /run/testbed/<program>.pid, so tests can kill exactly one by PID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

LOG_DIR = "/var/log/testbed"
RUN_DIR = "/run/testbed"
MAX_BACKOFF = 5.0


@dataclass
class Program:
    """One supervised process and its restart state."""

    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)


def programs_for(role: str, env: dict[str, str]) -> list[Program]:
    """The processes a node of this role runs (pure)."""
    py = sys.executable
    progs: list[Program] = []
    if role == "control-plane":
        ip = env.get("TESTBED_NODE_IP", "127.0.0.1")
        node = env.get("TESTBED_NODE", "control-plane")
        progs.append(Program("etcd", [
            "etcd", "--name", node, "--data-dir", "/var/lib/etcd/data",
            "--listen-client-urls", "http://0.0.0.0:2379",
            "--advertise-client-urls", f"http://{ip}:2379",
            "--listen-peer-urls", "http://127.0.0.1:2380",
            "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
            "--initial-cluster", f"{node}=http://127.0.0.1:2380",
            "--auto-compaction-mode", "revision", "--auto-compaction-retention", "10000",
            "--snapshot-count", "50000", "--log-level", "warn",
        ]))
        progs.append(Program("controller", [py, "-m", "testbed.controller"]))
    if role in ("control-plane", "worker"):
        progs.append(Program("agent", [py, "-m", "testbed.agent"]))
        progs.append(Program("proxy", [py, "-m", "testbed.agent.proxyd"]))
        progs.append(Program("policy", [py, "-m", "testbed.agent.policyd"]))
    if role == "external-host":
        progs.append(Program("hostd", [py, "-m", "testbed.agent.hostd"]))
        # The DNS upstream the cluster forwards to: a test zone, so no query leaves the testbed.
        progs.append(Program("dns-upstream", [py, "-m", "testbed.dns.upstream",
                                              "--zone", "example.test", "--listen", "0.0.0.0",
                                              "--port", "53"]))
    return progs


class Supervisor:
    """Keeps every program running; as PID 1 it also reaps re-parented orphans."""

    def __init__(self, programs: list[Program]) -> None:
        self.programs = programs
        self.stopping = False

    def start(self, prog: Program) -> None:
        os.makedirs(LOG_DIR, exist_ok=True)
        os.makedirs(RUN_DIR, exist_ok=True)
        log = open(os.path.join(LOG_DIR, f"{prog.name}.log"), "ab", buffering=0)  # noqa: SIM115
        log.write(f"--- supervisor: starting {prog.name} (restart {prog.restarts})\n".encode())
        prog.proc = subprocess.Popen(
            prog.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        prog.started_at = time.monotonic()
        with open(os.path.join(RUN_DIR, f"{prog.name}.pid"), "w") as f:
            f.write(str(prog.proc.pid))

    def reap(self) -> None:
        """Collect every exited child: our programs and orphans re-parented to PID 1."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for prog in self.programs:
                if prog.proc is not None and prog.proc.pid == pid:
                    prog.proc.returncode = os.waitstatus_to_exitcode(status)
                    self.on_exit(prog)

    def on_exit(self, prog: Program) -> None:
        ran = time.monotonic() - prog.started_at
        # Back off only when a program keeps crashing right after it starts.
        delay = 0.2 if ran > 10 else min(MAX_BACKOFF, 0.2 * (2 ** min(prog.restarts, 5)))
        prog.restarts += 1
        prog.proc = None
        prog.next_start = time.monotonic() + delay

    def stop(self, *_args) -> None:
        self.stopping = True

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        while not self.stopping:
            now = time.monotonic()
            for prog in self.programs:
                if prog.proc is None and now >= prog.next_start:
                    self.start(prog)
            self.reap()
            time.sleep(0.1)
        for prog in self.programs:
            if prog.proc is not None:
                prog.proc.terminate()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(p.proc for p in self.programs):
            self.reap()
            time.sleep(0.05)


def make_proc_sys_writable() -> None:
    """Docker mounts /proc/sys read-only; the agent and CNI need per-interface sysctls."""
    subprocess.run(["mount", "-o", "remount,rw", "/proc/sys"], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    role = os.environ.get("TESTBED_ROLE", "worker")
    make_proc_sys_writable()
    Supervisor(programs_for(role, dict(os.environ))).run()


if __name__ == "__main__":
    main()
