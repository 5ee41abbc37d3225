"""`up`/`down` orchestration against the fake runtime and the in-memory store."""

from __future__ import annotations

import threading
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from testbed.cluster.config import topology_hash
from testbed.cluster.down import down
from testbed.cluster.ready import NotReady
from testbed.cluster.steps import Steps
from testbed.cluster.up import UpConflict, up
from testbed.runtime.base import LABEL_NAME, NetworkInfo, RuntimeFailure
from testbed.runtime.fake import FakeRuntime
from testbed.store.keys import CONFIG_KEY, spec_key, status_key
from testbed.store.memory import MemoryStore
from testbed.topology import TopologyError, load_topology_text, with_overrides

READY = {"conditions": [{"type": "Ready", "status": "True"}]}
TOPOLOGY = """
apiVersion: testbed.dev/v1alpha1
kind: Topology
metadata: {name: fake}
spec:
  nodes:
    - {name: cp, role: control-plane}
    - {name: w1}
  externalHosts:
    - {name: client}
"""


class Stores:
    """One MemoryStore per control-plane IP, with fake agents reporting nodes Ready."""

    def __init__(self, agents: bool = True) -> None:
        self.stores: dict[str, MemoryStore] = {}
        self.agents = agents

    def __call__(self, ip: str) -> MemoryStore:
        store = self.stores.setdefault(ip, MemoryStore())
        store.wait_ready = lambda timeout=0: None  # type: ignore[attr-defined]
        if self.agents:
            threading.Thread(target=self._agents, args=(store,), daemon=True).start()
        return store

    @staticmethod
    def _agents(store: MemoryStore) -> None:
        """Play controller and agents: nodes Ready, each Deployment's pods created Ready."""
        import time

        for _ in range(300):
            kv = store.get(CONFIG_KEY)
            deployments, _ = store.list("/registry/deployments/")
            if kv and deployments:
                for node in kv.value["nodes"]:
                    store.put(status_key("Node", None, node["name"]), READY)
                for dep in deployments:
                    meta = dep.value["metadata"]
                    for i in range(dep.value["spec"]["replicas"]):
                        name = f"{meta['name']}-{i}"
                        store.put(spec_key("Pod", meta["namespace"], name), {
                            "kind": "Pod", "metadata": {
                                "name": name, "namespace": meta["namespace"],
                                "ownerReferences": [{"uid": meta["uid"]}]},
                            "spec": {"nodeName": kv.value["nodes"][0]["name"]}})
                        store.put(status_key("Pod", meta["namespace"], name), READY)
                return
            time.sleep(0.01)


def empty(runtime: FakeRuntime, name: str) -> bool:
    labels = {LABEL_NAME: name}
    return not (runtime.containers(labels) or runtime.networks(labels)
                or runtime.volumes(labels) or name in runtime.host_rules)


@pytest.fixture
def topo():
    return load_topology_text(TOPOLOGY, "fake.yaml", Path("."))


def test_up_creates_labelled_network_nodes_and_store_config(topo):
    rt = FakeRuntime()
    result = up(topo, rt, "img", Stores(), Steps(quiet=True), timeout=5)
    assert result.created
    net = rt.networks({LABEL_NAME: "fake"})[0]
    assert net.labels["testbed.topology-hash"] == topology_hash(topo)
    assert net.labels["testbed.mode"] == "iptables"
    names = [c.name for c in rt.containers({LABEL_NAME: "fake"})]
    assert names == ["fake-client", "fake-cp", "fake-w1"]
    assert "fake" in rt.host_rules  # routed mode opens the bridge for pod traffic
    ips = {c.name: c.ipv4_address for c in rt.containers({LABEL_NAME: "fake"})}
    assert ips == {"fake-cp": "172.30.0.2", "fake-w1": "172.30.0.3", "fake-client": "172.30.0.4"}


def test_second_up_is_a_noop_and_a_different_mode_conflicts(topo):
    rt, stores = FakeRuntime(), Stores()
    up(topo, rt, "img", stores, Steps(quiet=True), timeout=5)
    calls = len(rt.calls)
    again = up(topo, rt, "img", stores, Steps(quiet=True), timeout=5)
    assert not again.created and len(rt.calls) == calls
    other = with_overrides(topo, mode="nftables")
    with pytest.raises(UpConflict, match="--recreate"):
        up(other, rt, "img", stores, Steps(quiet=True), timeout=5)
    assert rt.networks({LABEL_NAME: "fake"})[0].labels["testbed.mode"] == "iptables"
    recreated = up(other, rt, "img", stores, Steps(quiet=True), recreate=True, timeout=5)
    assert recreated.created
    assert rt.networks({LABEL_NAME: "fake"})[0].labels["testbed.mode"] == "nftables"


def test_failure_midway_removes_everything(topo):
    rt = FakeRuntime(fail_on={"fake-w1"})
    with pytest.raises(RuntimeFailure):
        up(topo, rt, "img", Stores(), Steps(quiet=True), timeout=5)
    assert empty(rt, "fake")


def test_not_ready_times_out_with_reasons_and_cleans_up(topo):
    rt = FakeRuntime()
    with pytest.raises(NotReady, match="node cp: agent has not reported Ready"):
        up(topo, rt, "img", Stores(agents=False), Steps(quiet=True), timeout=0.3)
    assert empty(rt, "fake")


def test_given_subnet_overlapping_another_network_is_rejected_before_creating(topo):
    rt = FakeRuntime()
    rt.networks_["other"] = NetworkInfo("x", "other", "172.30.0.0/16", "br-x", {})
    wanted = with_overrides(topo, node_subnet=IPv4Network("172.30.5.0/24"))
    with pytest.raises(TopologyError, match="overlaps Docker network 'other'"):
        up(wanted, rt, "img", Stores(), Steps(quiet=True), timeout=5)
    assert empty(rt, "fake")


def test_free_subnet_is_picked_around_existing_networks(topo):
    rt = FakeRuntime()
    rt.networks_["other"] = NetworkInfo("x", "other", "172.30.0.0/24", "br-x", {})
    up(topo, rt, "img", Stores(), Steps(quiet=True), timeout=5)
    assert rt.networks({LABEL_NAME: "fake"})[0].subnet == "172.30.1.0/24"


def test_down_is_idempotent(topo):
    rt = FakeRuntime()
    up(topo, rt, "img", Stores(), Steps(quiet=True), timeout=5)
    first = down(rt, "fake")
    assert (first.containers, first.networks, first.volumes, first.host_rules) == (3, 1, 1, 1)
    second = down(rt, "fake")
    assert (second.containers, second.networks, second.volumes, second.host_rules) == (0, 0, 0, 0)


def test_on_failure_hook_sees_the_containers_before_teardown(topo):
    rt = FakeRuntime()
    seen = []

    def hook(name):
        seen.append((name, len(rt.containers({LABEL_NAME: name}))))

    with pytest.raises(NotReady):
        up(topo, rt, "img", Stores(agents=False), Steps(quiet=True), timeout=0.3,
           on_failure=hook)
    assert seen == [("fake", 3)]
    assert empty(rt, "fake")
