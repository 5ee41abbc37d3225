"""Pod sandboxes: a network namespace set up by the configured CNI plugin, plus per-pod
/etc/netns files (resolv.conf, hosts) that `ip netns exec` bind-mounts for the pod's processes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field

from testbed.agent import podspec
from testbed.cluster.objects import now_iso

RECORD_DIR = "/var/lib/testbed/pods"
NETNS_DIR = "/run/netns"
ETC_NETNS = "/etc/netns"
HOSTNET_DIR = "/var/lib/testbed/hostnet"
CNI_CONF_DIR = "/etc/cni/net.d"
CONFLIST_PATH = f"{CNI_CONF_DIR}/10-testbed.conflist"
CNI_BIN_DIRS = ["/opt/cni/custom-bin", "/opt/cni/bin"]
LOG_ROOT = "/var/log/testbed/pods"


@dataclass
class SandboxRecord:
    """What the agent made for a pod; kept on disk so a restarted agent adopts it."""

    uid: str
    namespace: str
    name: str
    netns: str | None
    ip: str
    host_network: bool
    containers: dict[str, dict] = field(default_factory=dict)  # name -> {pid, starttime, restarts}
    created: str = ""

    @property
    def etc_dir(self) -> str | None:
        """Where a hostNetwork pod's own resolv.conf lives (netns pods use /etc/netns)."""
        return f"{HOSTNET_DIR}/{self.uid}" if self.host_network else None

    @property
    def log_dir(self) -> str:
        return f"{LOG_ROOT}/{self.namespace}_{self.name}_{self.uid[:8]}"

    def save(self) -> None:
        os.makedirs(RECORD_DIR, exist_ok=True)
        tmp = f"{RECORD_DIR}/{self.uid}.json.tmp"
        with open(tmp, "w") as f:
            json.dump(asdict(self), f)
        os.replace(tmp, f"{RECORD_DIR}/{self.uid}.json")

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{RECORD_DIR}/{self.uid}.json")


def load_records() -> list[SandboxRecord]:
    out = []
    if not os.path.isdir(RECORD_DIR):
        return out
    for fn in sorted(os.listdir(RECORD_DIR)):
        if fn.endswith(".json"):
            try:
                with open(f"{RECORD_DIR}/{fn}") as f:
                    out.append(SandboxRecord(**json.load(f)))
            except (OSError, ValueError, TypeError):
                continue
    return out


def netns_name(uid: str) -> str:
    return f"pod-{uid}"


def list_pod_netns() -> list[str]:
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith("pod-"))
    except FileNotFoundError:
        return []


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip()}")


class Sandboxes:
    """Creates and removes pod sandboxes through a CNI invoker (libcni's role)."""

    def __init__(self, invoker, conflist: dict, node_ip: str, config: dict) -> None:
        self.invoker = invoker
        self.conflist = conflist
        self.node_ip = node_ip
        self.config = config

    def cni_args(self, pod: dict) -> dict:
        meta = pod["metadata"]
        return {"K8S_POD_NAMESPACE": meta.get("namespace", "default"),
                "K8S_POD_NAME": meta["name"], "K8S_POD_UID": meta["uid"],
                "IgnoreUnknown": "1"}

    def create(self, pod: dict) -> SandboxRecord:
        """Make the pod's sandbox; on any failure undo what was made and raise."""
        meta = pod["metadata"]
        uid = meta["uid"]
        host_network = bool(pod.get("spec", {}).get("hostNetwork"))
        if host_network:
            record = SandboxRecord(uid, meta.get("namespace", "default"), meta["name"], None,
                                   self.node_ip, True, created=now_iso())
            self.write_files(pod, None, self.node_ip, record.etc_dir)
            record.save()
            return record
        netns = netns_name(uid)
        if not os.path.exists(f"{NETNS_DIR}/{netns}"):
            _run(["ip", "netns", "add", netns])
        try:
            _run(["ip", "-n", netns, "link", "set", "lo", "up"])
            result = self.invoker.add(self.conflist, uid, f"{NETNS_DIR}/{netns}", "eth0",
                                      self.cni_args(pod))
            ip = result["ips"][0]["address"].split("/")[0]
            self.write_files(pod, netns, ip)
        except Exception:
            self.destroy_netns(uid, netns, pod)
            raise
        record = SandboxRecord(uid, meta.get("namespace", "default"), meta["name"], netns, ip,
                               False, created=now_iso())
        record.save()
        return record

    def write_files(self, pod: dict, netns: str | None, ip: str,
                    directory: str | None = None) -> None:
        directory = directory or f"{ETC_NETNS}/{netns}"
        os.makedirs(directory, exist_ok=True)
        try:
            with open("/etc/resolv.conf") as f:
                node_resolv = f.read()
        except OSError:
            node_resolv = ""
        files = {
            "resolv.conf": podspec.resolv_conf(pod, self.config, node_resolv),
            "hosts": podspec.hosts_file(pod, ip, self.config),
            "hostname": podspec.pod_hostname(pod) + "\n",
        }
        for name, text in files.items():
            with open(f"{directory}/{name}", "w") as f:
                f.write(text)

    def destroy_netns(self, uid: str, netns: str | None, pod: dict | None = None) -> None:
        """CNI DEL (idempotent), then remove the namespace and its /etc/netns files."""
        if netns is None:
            return
        args = self.cni_args(pod) if pod else {"IgnoreUnknown": "1"}
        path = f"{NETNS_DIR}/{netns}"
        try:
            self.invoker.delete(self.conflist, uid, path if os.path.exists(path) else "", "eth0",
                                args)
        finally:
            if os.path.exists(path):
                subprocess.run(["ip", "netns", "del", netns], capture_output=True)
            shutil.rmtree(f"{ETC_NETNS}/{netns}", ignore_errors=True)

    def destroy(self, record: SandboxRecord) -> None:
        self.destroy_netns(record.uid, record.netns)
        if record.etc_dir:
            shutil.rmtree(record.etc_dir, ignore_errors=True)
        record.remove()
