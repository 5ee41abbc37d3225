"""The agent's reconcile pass on a pod that was deleted before it ever got a sandbox here."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from testbed.agent.main import Agent
from testbed.store.keys import object_key, status_key
from testbed.store.memory import MemoryStore


def test_deleted_pods_without_a_sandbox_are_finalized(tmp_path, monkeypatch):
    monkeypatch.setattr("testbed.agent.policyd.READY_FILE", str(tmp_path / "none.json"))
    store = MemoryStore()
    agent = Agent.__new__(Agent)  # no CNI, no node setup: only the bookkeeping
    agent.store, agent.node = store, "w1"
    agent.workers, agent.published, agent.failures = {}, {}, {}
    agent.pending_probes, agent.probe_pool = set(), ThreadPoolExecutor(1)
    agent._policy_mtime, agent._policy_ips = (), set()
    pods = [{"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": f"p{i}", "namespace": "default", "uid": f"u{i}",
                          "deletionTimestamp": "2026-01-01T00:00:00Z"},
             "spec": {"nodeName": "w1", "containers": []}} for i in range(3)]
    for pod in pods:
        store.put(object_key(pod), pod)
        store.put(status_key("Pod", "default", pod["metadata"]["name"]), {"phase": "Running"})
    agent.desired = {p["metadata"]["uid"]: p for p in pods}
    agent.reconcile()  # used to raise "dictionary changed size during iteration"
    assert agent.desired == {}
    assert store.list("/registry/pods/")[0] == [] and store.list("/status/pods/")[0] == []
