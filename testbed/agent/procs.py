"""Container processes: start in the pod sandbox, check liveness by PID + start time, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass


@dataclass
class ProcRef:
    """A process identified by PID and kernel start time, so a reused PID is never mistaken."""

    pid: int
    starttime: int

    def to_json(self) -> dict:
        return {"pid": self.pid, "starttime": self.starttime}


def proc_starttime(pid: int) -> int | None:
    """Start time (clock ticks since boot) of a live, non-zombie process, else None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def alive(ref: ProcRef | None) -> bool:
    return ref is not None and proc_starttime(ref.pid) == ref.starttime


_children: dict[int, subprocess.Popen] = {}


def start(argv: list[str], env: dict[str, str], log_path: str, cwd: str = "/") -> ProcRef:
    """Start a process in its own session (so the agent can restart without killing it)."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "ab", buffering=0) as log:
        proc = subprocess.Popen(argv, env=env, cwd=cwd if os.path.isdir(cwd) else "/",
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    _children[proc.pid] = proc
    for _ in range(50):
        st = proc_starttime(proc.pid)
        if st is not None or proc.poll() is not None:
            break
        time.sleep(0.001)
    return ProcRef(proc.pid, st or 0)


def reap_children() -> None:
    """Collect exited children this agent started (adopted ones are reaped by PID 1)."""
    for pid, proc in list(_children.items()):
        if proc.poll() is not None:
            del _children[pid]


def exit_code(ref: ProcRef) -> int | None:
    proc = _children.get(ref.pid)
    return proc.returncode if proc is not None else None


def stop(refs: list[ProcRef], grace: float) -> None:
    """SIGTERM each process group, then SIGKILL whatever is left after `grace` seconds."""
    live = [r for r in refs if alive(r)]
    for r in live:
        _signal_group(r.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while live and time.monotonic() < deadline:
        reap_children()
        live = [r for r in live if alive(r)]
        time.sleep(0.02)
    for r in live:
        _signal_group(r.pid, signal.SIGKILL)
    for _ in range(100):
        reap_children()
        if not any(alive(r) for r in live):
            break
        time.sleep(0.01)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)
