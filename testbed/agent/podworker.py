"""Running one pod: its containers' processes, restarts, probes, and the status it reports."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from testbed.agent import podspec, procs
from testbed.agent.probes import ProbeState, run_probe, timing
from testbed.agent.sandbox import SandboxRecord
from testbed.cluster.objects import now_iso

MAX_RESTART_BACKOFF = 10.0


@dataclass
class ContainerState:
    """Runtime state of one container of a pod."""

    spec: dict
    proc: procs.ProcRef | None = None
    restarts: int = 0
    started_at: float = 0.0
    next_start: float = 0.0
    last_exit: int | None = None
    readiness: ProbeState = field(default_factory=ProbeState)
    liveness: ProbeState = field(default_factory=lambda: ProbeState(ready=True))
    error: str = ""

    @property
    def running(self) -> bool:
        return procs.alive(self.proc)

    @property
    def ready(self) -> bool:
        if not self.running:
            return False
        if self.spec.get("readinessProbe"):
            return self.readiness.ready
        return True


class PodWorker:
    """Keeps a pod's containers running and probed; builds its Kubernetes status."""

    def __init__(self, pod: dict, record: SandboxRecord, host_ip: str) -> None:
        self.pod = pod
        self.record = record
        self.host_ip = host_ip
        self.start_time = record.created or now_iso()
        self.containers: dict[str, ContainerState] = {}
        for c in pod["spec"].get("containers", []):
            state = ContainerState(c)
            saved = record.containers.get(c["name"])
            if saved:  # adopted after an agent restart
                state.proc = procs.ProcRef(saved["pid"], saved["starttime"])
                state.restarts = saved.get("restarts", 0)
                state.started_at = time.monotonic()
            self.containers[c["name"]] = state

    @property
    def uid(self) -> str:
        return self.pod["metadata"]["uid"]

    def _start(self, cs: ContainerState) -> None:
        c = cs.spec
        try:
            argv = podspec.container_argv(c)
        except podspec.UnsupportedContainer as exc:
            cs.error = str(exc)
            cs.next_start = time.monotonic() + 3600
            return
        env = podspec.container_env(c, self.pod, self.record.ip, self.host_ip)
        full = podspec.wrap_in_sandbox(argv, self.record.netns, podspec.pod_hostname(self.pod),
                                       self.record.etc_dir)
        cs.proc = procs.start(full, env, f"{self.record.log_dir}/{c['name']}.log",
                              c.get("workingDir") or "/")
        cs.started_at = time.monotonic()
        cs.readiness = ProbeState()
        cs.liveness = ProbeState(ready=True)
        cs.error = ""
        self.record.containers[c["name"]] = cs.proc.to_json() | {"restarts": cs.restarts}
        self.record.save()

    def sync_processes(self) -> None:
        """Start containers that are not running, with kubelet-like restart backoff."""
        policy = self.pod["spec"].get("restartPolicy", "Always")
        now = time.monotonic()
        for cs in self.containers.values():
            if cs.running:
                continue
            if cs.proc is not None:  # it was running and exited
                cs.last_exit = procs.exit_code(cs.proc)
                cs.proc = None
                if policy == "Never" or (policy == "OnFailure" and cs.last_exit == 0):
                    cs.next_start = float("inf")
                    continue
                ran = now - cs.started_at
                cs.restarts += 1
                delay = 0 if ran > 30 else min(MAX_RESTART_BACKOFF, 0.5 * 2 ** min(cs.restarts, 5))
                cs.next_start = now + delay
            if now >= cs.next_start:
                self._start(cs)

    def due_probes(self) -> list[tuple[ContainerState, str, dict]]:
        """(container, 'readiness'|'liveness', probe) whose period has come round."""
        now = time.monotonic()
        out = []
        for cs in self.containers.values():
            if not cs.running:
                continue
            for kind in ("readiness", "liveness"):
                probe = cs.spec.get(f"{kind}Probe")
                if not probe:
                    continue
                delay, period, *_ = timing(probe)
                state: ProbeState = getattr(cs, kind)
                if now - cs.started_at >= delay and now - state.last_run >= period:
                    state.last_run = now
                    out.append((cs, kind, probe))
        return out

    def probe(self, cs: ContainerState, kind: str, probe: dict) -> None:
        ok, message = run_probe(probe, cs.spec, self.record.ip, self.record.netns)
        _, _, _, success_threshold, failure_threshold = timing(probe)
        state: ProbeState = getattr(cs, kind)
        state.record(ok, message, success_threshold, failure_threshold)
        if kind == "liveness" and not state.ready and cs.proc is not None:
            procs.stop([cs.proc], 2.0)  # sync_processes restarts it

    def status(self, policy_ready: bool = True) -> dict:
        """The pod's Kubernetes status (phase, IPs, conditions, containerStatuses); the pod is
        not Ready until `policy_ready` (its network policy rules are in place)."""
        statuses = []
        for name, cs in self.containers.items():
            if cs.running:
                state = {"running": {}}
            elif cs.error:
                state = {"waiting": {"reason": "CreateContainerError", "message": cs.error}}
            elif cs.last_exit is not None and cs.next_start == float("inf"):
                state = {"terminated": {"exitCode": cs.last_exit}}
            else:
                state = {"waiting": {"reason": "CrashLoopBackOff" if cs.restarts else
                                     "ContainerCreating"}}
            statuses.append({"name": name, "image": cs.spec.get("image", ""), "ready": cs.ready,
                             "started": cs.running, "restartCount": cs.restarts, "state": state})
        containers_ready = bool(statuses) and all(s["ready"] for s in statuses)
        all_ready = containers_ready and policy_ready
        all_running = bool(statuses) and all(s["started"] for s in statuses)
        if all_running or any(s["started"] for s in statuses):
            phase = "Running"
        elif statuses and all("terminated" in s["state"] for s in statuses):
            phase = "Succeeded" if all(s["state"]["terminated"]["exitCode"] == 0
                                       for s in statuses) else "Failed"
        else:
            phase = "Pending"
        errors = [cs.error for cs in self.containers.values() if cs.error]
        not_ready = [f"{n}: {cs.readiness.message or 'not running'}"
                     for n, cs in self.containers.items() if not cs.ready]

        def cond(kind: str, ok: bool) -> dict:
            return {"type": kind, "status": "True" if ok else "False"}

        out = {
            "phase": phase,
            "hostIP": self.host_ip,
            "podIP": self.record.ip,
            "podIPs": [{"ip": self.record.ip}],
            "startTime": self.start_time,
            "conditions": [cond("PodScheduled", True), cond("Initialized", True),
                           cond("ContainersReady", containers_ready), cond("Ready", all_ready)],
            "containerStatuses": statuses,
            "sandbox": {"netns": self.record.netns, "logDir": self.record.log_dir,
                        "hostNetwork": self.record.host_network,
                        "etcDir": self.record.etc_dir},
        }
        if errors:
            out["message"] = "; ".join(errors)
        elif not containers_ready:
            out["message"] = "; ".join(not_ready)
        elif not policy_ready:
            out["message"] = "waiting for network policy rules on the node"
        return out

    def stop(self) -> None:
        """Stop every process of the pod, including adopted ones known only from the record."""
        grace = min(float(self.pod["spec"].get("terminationGracePeriodSeconds", 30)), 5.0)
        refs = [cs.proc for cs in self.containers.values() if cs.proc]
        refs += [procs.ProcRef(c["pid"], c["starttime"]) for c in self.record.containers.values()]
        procs.stop(refs, grace)
