"""Shared helpers for the controller tests: configs, objects and a fake node agent."""

from __future__ import annotations

import random

from testbed.cluster.objects import condition, normalize
from testbed.controller.actions import apply_actions
from testbed.controller.plan import plan
from testbed.controller.snapshot import Snapshot, is_terminating
from testbed.store.keys import CONFIG_KEY, object_key, prefix, status_key


def make_config(workers: int = 2, labels: dict[str, dict] | None = None) -> dict:
    """A cluster config like `up` writes: one control plane plus ``workers`` workers."""
    labels = labels or {}
    names = ["control-plane"] + [f"worker{i}" for i in range(1, workers + 1)]
    nodes = []
    for i, name in enumerate(names):
        nodes.append({"name": name, "role": "control-plane" if i == 0 else "worker",
                      "labels": labels.get(name, {}), "ip": f"172.30.0.{i + 2}",
                      "podCIDR": f"10.244.{i}.0/24"})
    return {"name": "default", "topologyHash": "x",
            "networking": {"podSubnet": "10.244.0.0/16", "serviceSubnet": "10.96.0.0/16"},
            "gateway": "172.30.0.1", "nodes": nodes, "externalHosts": []}


def deployment(name: str, replicas: int = 1, image: str = "busybox", ns: str = "default",
               **spec) -> dict:
    """A normalised Deployment whose template is labelled ``app=<name>``."""
    return normalize({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": image}]}},
                 **spec}})


def statefulset(name: str, replicas: int = 3, ns: str = "default", **spec) -> dict:
    """A normalised StatefulSet with serviceName ``<name>-svc``."""
    return normalize({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": replicas, "serviceName": f"{name}-svc",
                 "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
                 **spec}})


def pod(name: str, ns: str = "default", **spec) -> dict:
    """A normalised bare Pod."""
    return normalize({"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": name, "namespace": ns},
                      "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}})


def put(store, obj: dict) -> str:
    """Write ``obj`` at its key (what `apply` does) and return the key."""
    key = object_key(obj)
    store.put(key, obj)
    return key


def pods(store, ns: str | None = None, live: bool = True) -> dict[str, dict]:
    """Pods by name (only those not marked for deletion, unless ``live`` is False)."""
    items, _ = store.list(prefix("pods", ns))
    return {kv.value["metadata"]["name"]: kv.value for kv in items
            if not live or not is_terminating(kv.value)}


def status(store, kind: str, name: str, ns: str | None = "default") -> dict | None:
    """The status value of an object, or None."""
    kv = store.get(status_key(kind, ns, name))
    return kv.value if kv else None


def ready_status(ready: bool = True) -> dict:
    """A pod status like the agent writes."""
    flag = "True" if ready else "False"
    return {"phase": "Running", "conditions": [{"type": "PodScheduled", "status": "True"},
                                               {"type": "Ready", "status": flag}]}


class FakeAgents:
    """Plays every node agent: reports bound pods Ready and finalises marked ones.

    ``hold`` names pods to keep not Ready; ``finalize=False`` leaves marked pods in place.
    """

    def __init__(self, store, config: dict) -> None:
        self.store = store
        self.nodes = {n["name"] for n in config["nodes"]}
        self.hold: set[str] = set()
        self.finalize = True

    def step(self) -> int:
        """One round over all pods; returns how many writes it made."""
        writes = 0
        snap = Snapshot.read(self.store)
        for kv in snap.of("pods"):
            meta = kv.value["metadata"]
            if kv.value.get("spec", {}).get("nodeName") not in self.nodes:
                continue
            skey = status_key("Pod", meta["namespace"], meta["name"])
            if is_terminating(kv.value):
                if self.finalize and self.store.delete(kv.key, kv.mod_revision):
                    self.store.delete(skey)
                    writes += 1
                continue
            want = meta["name"] not in self.hold
            if condition(snap.pod_status(kv), "Ready") != want:
                self.store.put(skey, ready_status(want))
                writes += 1
        return writes


def reconcile(store, rng: random.Random | None = None) -> list:
    """One controller pass (without status GC); returns the actions applied."""
    snap = Snapshot.read(store)
    return apply_actions(store, plan(snap, rng or random.Random(1))).applied


def converge(store, agents: FakeAgents | None = None, passes: int = 50) -> int:
    """Alternate controller passes and agent rounds until neither changes anything."""
    for n in range(passes):
        changed = len(reconcile(store))
        if agents is not None:
            changed += agents.step()
        if not changed:
            return n
    raise AssertionError(f"no convergence after {passes} passes")


def setup_store(store, config: dict | None = None) -> dict:
    """Write the config into ``store``; returns it."""
    config = config or make_config()
    store.put(CONFIG_KEY, config)
    return config

