"""The node agent (kubelet's role for pods, plus node networking): level-triggered reconcile.

Lists and watches the pods bound to this node, converges sandboxes and processes to them, runs
probes, and reports pod and node status. A restarted agent adopts what its records describe and
removes whatever no pod wants any more.
"""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

from testbed.agent import netsetup, procs
from testbed.agent.cniconf import node_conflist
from testbed.agent.podworker import PodWorker
from testbed.agent.sandbox import CNI_BIN_DIRS, Sandboxes, list_pod_netns, load_records
from testbed.cluster.objects import now_iso
from testbed.store.base import WatchError, list_then_watch
from testbed.store.keys import object_key, prefix, status_key

log = logging.getLogger("agent")
RELIST_SECONDS = 30.0
HEARTBEAT_SECONDS = 2.0


class Agent:
    """One per node; owns the node's pods, their status keys, and the node's status key."""

    def __init__(self, store, node_name: str, config: dict) -> None:
        from testbed.cni.invoke import CniInvoker

        self.store = store
        self.node = node_name
        self.config = config
        self.me = next(n for n in config["nodes"] if n["name"] == node_name)
        self.conflist = node_conflist(config, self.me)
        self.sandboxes = Sandboxes(CniInvoker(CNI_BIN_DIRS), self.conflist, self.me["ip"], config)
        self.desired: dict[str, dict] = {}  # uid -> pod
        self.workers: dict[str, PodWorker] = {}  # uid -> worker
        self.published: dict[str, dict] = {}  # uid -> last status written
        self.failures: dict[str, str] = {}  # uid -> sandbox error
        self.probe_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="probe")
        self.pending_probes: set = set()
        self.last_heartbeat = 0.0
        self._policy_mtime: tuple = ()
        self._policy_ips: set[str] = set()

    # -- node -------------------------------------------------------------------
    def setup_node(self) -> None:
        netsetup.apply_node_network(self.config, self.node)
        os.makedirs("/etc/cni/net.d", exist_ok=True)
        with open("/etc/cni/net.d/10-testbed.conflist", "w") as f:
            json.dump(self.conflist, f, indent=2)

    def heartbeat(self, error: str = "") -> None:
        """Report the node's status; an error makes it NotReady with the reason."""
        now = time.monotonic()
        if not error and now - self.last_heartbeat < HEARTBEAT_SECONDS:
            return
        self.last_heartbeat = now
        ready = {"type": "Ready", "status": "False" if error else "True",
                 "reason": "NetworkSetupFailed" if error else "AgentReady",
                 "lastHeartbeatTime": now_iso()}
        if error:
            ready["message"] = error
        self.store.put(status_key("Node", None, self.node), {
            "addresses": [{"type": "InternalIP", "address": self.me["ip"]},
                          {"type": "Hostname", "address": self.node}],
            "conditions": [ready],
            "nodeInfo": {"kubeProxyMode": self.config["networking"]["kubeProxyMode"]},
        })

    # -- pods ----------------------------------------------------------------------
    def adopt(self) -> None:
        """Rebuild workers from on-disk records; remove namespaces no record explains."""
        known = set()
        for record in load_records():
            known.add(record.netns)
            self.workers[record.uid] = PodWorker(
                {"metadata": {"uid": record.uid, "name": record.name,
                              "namespace": record.namespace}, "spec": {"containers": []}},
                record, self.me["ip"])
        for netns in list_pod_netns():
            if netns not in known:
                log.info("removing orphan namespace %s", netns)
                self.sandboxes.destroy_netns(netns.removeprefix("pod-"), netns)

    def on_pod(self, pod: dict | None, key: str) -> None:
        if pod is None:
            self.desired = {u: p for u, p in self.desired.items() if object_key(p) != key}
            return
        if pod.get("spec", {}).get("nodeName") != self.node:
            self.desired = {u: p for u, p in self.desired.items() if object_key(p) != key}
            return
        self.desired = {u: p for u, p in self.desired.items() if object_key(p) != key}
        self.desired[pod["metadata"]["uid"]] = pod

    def reconcile(self) -> None:
        procs.reap_children()
        for uid in list(self.workers):
            pod = self.desired.get(uid)
            if pod is None or pod["metadata"].get("deletionTimestamp"):
                self.remove_pod(uid, pod)
        for uid, pod in list(self.desired.items()):  # finalize() removes from desired
            if pod["metadata"].get("deletionTimestamp"):
                if uid not in self.workers:
                    self.finalize(pod)
                continue
            worker = self.workers.get(uid)
            if worker is None or not worker.pod["spec"].get("containers"):
                worker = self.ensure_worker(uid, pod, worker)
                if worker is None:
                    continue
            worker.sync_processes()
        self.run_probes()
        self.publish()

    def ensure_worker(self, uid: str, pod: dict, adopted: PodWorker | None) -> PodWorker | None:
        try:
            record = adopted.record if adopted else self.sandboxes.create(pod)
        except Exception as exc:  # report it on the pod; retried next resync
            self.failures[uid] = f"sandbox: {exc}"
            log.warning("pod %s: %s", uid, exc)
            return None
        self.failures.pop(uid, None)
        worker = PodWorker(pod, record, self.me["ip"])
        self.workers[uid] = worker
        return worker

    def remove_pod(self, uid: str, pod: dict | None) -> None:
        worker = self.workers.pop(uid)
        worker.stop()
        try:
            self.sandboxes.destroy(worker.record)
        except Exception as exc:
            log.warning("pod %s teardown: %s", uid, exc)
            self.workers[uid] = worker  # retry next round
            return
        meta = worker.pod["metadata"]
        self.store.delete(status_key("Pod", meta["namespace"], meta["name"]))
        self.published.pop(uid, None)
        if pod is not None:
            self.finalize(pod)

    def finalize(self, pod: dict) -> None:
        """A deleted pod is gone once its sandbox is: remove its spec and status keys."""
        meta = pod["metadata"]
        current = self.store.get(object_key(pod))
        if current and current.value["metadata"].get("uid") == meta["uid"]:
            self.store.delete(object_key(pod), current.mod_revision)
            self.store.delete(status_key("Pod", meta["namespace"], meta["name"]))
        self.desired.pop(meta["uid"], None)

    def run_probes(self) -> None:
        for worker in self.workers.values():
            for cs, kind, probe in worker.due_probes():
                token = (worker.uid, cs.spec["name"], kind)
                if token in self.pending_probes:
                    continue
                self.pending_probes.add(token)

                def task(w=worker, c=cs, k=kind, p=probe, t=token):
                    try:
                        w.probe(c, k, p)
                    finally:
                        self.pending_probes.discard(t)

                self.probe_pool.submit(task)

    def policy_synced_ips(self) -> set[str]:
        """Local pod IPs the policy process has covered (see testbed.agent.policyd)."""
        from testbed.agent.policyd import READY_FILE

        try:
            st = os.stat(READY_FILE)
            # mtime alone is coarse (a clock tick): two writes in one tick look alike, so
            # the inode (each write is a new file renamed into place) is part of the key.
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if stamp != self._policy_mtime:
                with open(READY_FILE) as f:
                    self._policy_ips = set(json.load(f))
                self._policy_mtime = stamp
        except (OSError, ValueError):
            return set()
        return self._policy_ips

    def publish(self) -> None:
        synced = self.policy_synced_ips()
        for uid, pod in self.desired.items():
            if pod["metadata"].get("deletionTimestamp"):
                continue
            worker = self.workers.get(uid)
            if worker is not None:
                status = worker.status(policy_ready=worker.record.host_network
                                       or worker.record.ip in synced)
            elif uid in self.failures:
                status = {"phase": "Pending", "message": self.failures[uid],
                          "conditions": [{"type": "Ready", "status": "False",
                                          "reason": "SandboxFailed"}]}
            else:
                continue
            if self.published.get(uid) != status:
                meta = pod["metadata"]
                self.store.put(status_key("Pod", meta["namespace"], meta["name"]), status)
                self.published[uid] = status

    # -- main loop ---------------------------------------------------------------------
    def run(self) -> None:
        try:
            self.setup_node()
        except Exception as exc:
            self.heartbeat(error=str(exc).splitlines()[0])
            time.sleep(2)
            raise
        self.heartbeat()
        self.adopt()
        while True:
            items, watch = list_then_watch(self.store, prefix("pods"))
            self.desired = {}
            for kv in items:
                self.on_pod(kv.value, kv.key)
            try:
                self.loop(watch)
            except WatchError as exc:
                log.warning("watch ended (%s); re-listing", exc)
            finally:
                watch.cancel()

    def loop(self, watch) -> None:
        """Until the next full re-list: a periodic re-list also heals a stalled watch."""
        started = last_network = time.monotonic()
        while time.monotonic() - started < RELIST_SECONDS:
            event = watch.get(timeout=0.2)
            while event is not None:
                self.on_pod(event.value if event.type == "PUT" else None, event.key)
                event = watch.get(timeout=0)
            self.heartbeat()
            now = time.monotonic()
            if now - last_network > 30:
                netsetup.apply_node_network(self.config, self.node)
                last_network = now
            self.reconcile()


def main() -> None:
    from testbed.agent.bootstrap import connect

    store, config = connect("agent")
    Agent(store, os.environ["TESTBED_NODE"], config).run()
