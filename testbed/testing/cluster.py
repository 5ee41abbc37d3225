"""A handle on a running testbed for suites: exec, objects, waiting, batched probes."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from importlib import resources

from testbed.cluster.apply import apply_objects, delete_objects
from testbed.cluster.objects import condition
from testbed.runtime.base import ExecResult
from testbed.store.keys import CONFIG_KEY, prefix, spec_key, status_key

PROBE_SCRIPT = resources.files("testbed.testing").joinpath("probe_script.py").read_text()


@dataclass(frozen=True)
class PodRef:
    """A pod as suites see it: where it runs and its address."""

    namespace: str
    name: str
    node: str
    ip: str
    netns: str | None
    etc_dir: str | None = None

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class _ClusterBase:
    """Topology facts, exec, objects, pods and probes."""

    def __init__(self, runtime, ref, store) -> None:
        self.runtime = runtime
        self.ref = ref
        self.store = store
        self.config = store.get(CONFIG_KEY).value
        self.name = ref.name

    # -- topology facts ---------------------------------------------------------
    @property
    def nodes(self) -> list[dict]:
        return self.config["nodes"]

    @property
    def mode(self) -> str:
        return self.config["networking"]["kubeProxyMode"]

    @property
    def routing(self) -> str:
        return self.config["networking"]["routing"]

    def node_ip(self, node: str) -> str:
        return next(n["ip"] for n in self.nodes if n["name"] == node)

    def host_ip(self, host: str) -> str:
        return next(h["ip"] for h in self.config["externalHosts"] if h["name"] == host)

    def workers(self) -> list[str]:
        return [n["name"] for n in self.nodes if n["role"] != "control-plane"]

    # -- exec -----------------------------------------------------------------------
    def exec_node(self, node: str, command: list[str], stdin: bytes | None = None) -> ExecResult:
        return self.runtime.exec(self.ref.node(node).name, command, stdin=stdin)

    def exec_host(self, host: str, command: list[str]) -> ExecResult:
        return self.runtime.exec(self.ref.host(host).name, command)

    def exec_pod(self, pod: PodRef, command: list[str]) -> ExecResult:
        from testbed.agent.podspec import wrap_in_sandbox

        if pod.netns is None:
            wrapped = wrap_in_sandbox(command, None, "", pod.etc_dir)
        else:
            wrapped = ["ip", "netns", "exec", pod.netns, *command]
        return self.exec_node(pod.node, wrapped)

    # -- objects ----------------------------------------------------------------------
    def apply(self, objects: list[dict]) -> None:
        apply_objects(self.store, objects)

    def delete(self, objects: list[dict]) -> None:
        delete_objects(self.store, objects)

    def pod_status(self, namespace: str, name: str) -> dict | None:
        kv = self.store.get(status_key("Pod", namespace, name))
        return kv.value if kv else None

    def pod(self, namespace: str, name: str) -> PodRef:
        spec = self.store.get(spec_key("Pod", namespace, name))
        status = self.pod_status(namespace, name) or {}
        if spec is None:
            raise LookupError(f"pod {namespace}/{name} does not exist")
        sandbox = status.get("sandbox") or {}
        return PodRef(namespace, name, spec.value["spec"].get("nodeName", ""),
                      status.get("podIP", ""), sandbox.get("netns"), sandbox.get("etcDir"))

    def pods(self, namespace: str | None = None, labels: dict[str, str] | None = None):
        items, _ = self.store.list(prefix("pods", namespace))
        out = []
        for kv in items:
            meta = kv.value["metadata"]
            if meta.get("deletionTimestamp"):
                continue
            if labels and any(meta.get("labels", {}).get(k) != v for k, v in labels.items()):
                continue
            out.append(self.pod(meta["namespace"], meta["name"]))
        return out

    def wait_pods_ready(self, namespace: str, names: list[str] | None = None,
                        labels: dict | None = None, count: int | None = None,
                        timeout: float = 60.0) -> list[PodRef]:
        """Wait until the named (or labelled) pods exist and are Ready."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if names is not None:
                specs = [self.store.get(spec_key("Pod", namespace, n)) for n in names]
                present = [kv.value["metadata"]["name"] for kv in specs if kv]
            else:
                present = [p.name for p in self.pods(namespace, labels)]
            ready = [n for n in present
                     if condition(self.pod_status(namespace, n), "Ready")]
            want = len(names) if names is not None else count
            if want is not None and len(ready) >= want and len(present) == len(ready):
                return [self.pod(namespace, n) for n in ready]
            last = f"{len(ready)}/{want} ready of {present}"
            time.sleep(0.2)
        statuses = {n: (self.pod_status(namespace, n) or {}).get("message")
                    for n in (names or [])}
        raise TimeoutError(f"pods in {namespace} not ready after {timeout}s: {last} {statuses}")

    def wait_gone(self, namespace: str, name: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.store.get(spec_key("Pod", namespace, name)) is None:
                return
            time.sleep(0.2)
        raise TimeoutError(f"pod {namespace}/{name} still exists after {timeout}s")

    # -- probes -----------------------------------------------------------------------
    def probe(self, source: PodRef | tuple[str, str], targets: list[dict]) -> list[dict]:
        """Run many connection checks from one pod (or ("node", N)/("host", H)) in one exec.

        Each target: {"host", "port", "protocol": tcp|udp, "request": netexec path/command,
        "timeout"}; each result: {"ok", "reply"|"error"}.
        """
        cmd = ["python3", "-c", PROBE_SCRIPT, json.dumps(targets)]
        if isinstance(source, PodRef):
            result = self.exec_pod(source, cmd)
        elif source[0] == "node":
            result = self.exec_node(source[1], cmd)
        else:
            result = self.exec_host(source[1], cmd)
        result.check()
        return json.loads(result.stdout)

    def probe_one(self, source, host: str, port: int, protocol: str = "tcp",
                  request: str = "hostname", timeout: float = 2.0) -> dict:
        return self.probe(source, [{"host": host, "port": port, "protocol": protocol,
                                    "request": request, "timeout": timeout}])[0]


class _Empty:
    value: dict = {}


def eventually(check, timeout: float = 30.0, interval: float = 0.2):
    """Call `check()` until it returns without AssertionError; re-raise the last failure."""
    from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

    for attempt in Retrying(stop=stop_after_delay(timeout), wait=wait_fixed(interval),
                            retry=retry_if_exception_type(AssertionError), reraise=True):
        with attempt:
            return check()
    return None


class ServiceMixin:
    """Service helpers for Cluster (kept apart to keep each piece small)."""

    def service(self, namespace: str, name: str) -> dict:
        """The Service with its status merged in (clusterIP, nodePorts, LB ingress)."""
        kv = self.store.get(spec_key("Service", namespace, name))
        if kv is None:
            raise LookupError(f"service {namespace}/{name} does not exist")
        status = self.store.get(status_key("Service", namespace, name))
        return kv.value | {"status": status.value if status else {}}

    def ready_endpoints(self, namespace: str, name: str) -> list[str]:
        items, _ = self.store.list(prefix("endpointslices", namespace))
        ips = []
        for kv in items:
            if kv.value["metadata"].get("labels", {}).get("kubernetes.io/service-name") != name:
                continue
            for ep in kv.value.get("endpoints") or []:
                if (ep.get("conditions") or {}).get("ready"):
                    ips += ep.get("addresses", [])
        return sorted(ips)

    def wait_service(self, namespace: str, name: str, ready: int | None = None,
                     timeout: float = 60.0) -> dict:
        """Wait until the service has its IPs allocated and `ready` ready endpoints."""

        def check() -> dict:
            svc = self.service(namespace, name)
            spec = svc["spec"]
            assert spec.get("clusterIP"), f"{name}: no clusterIP yet ({svc['status']})"
            if spec.get("type") == "LoadBalancer":
                assert (svc["status"].get("loadBalancer") or {}).get("ingress"), "no LB IP yet"
            if ready is not None:
                got = self.ready_endpoints(namespace, name)
                assert len(got) == ready, f"{name}: {len(got)} ready endpoints, want {ready}"
            return svc

        return eventually(check, timeout)

    def lb_announcer(self, ip: str) -> str | None:
        """Which node answers ARP for `ip`, as the external host's neighbour table shows."""
        host = self.config["externalHosts"][0]["name"]
        neigh = self.exec_host(host, ["ip", "neigh", "show", ip]).stdout.split()
        if "lladdr" not in neigh:
            return None
        mac = neigh[neigh.index("lladdr") + 1]
        from testbed.runtime.base import RuntimeFailure

        for node in self.nodes:
            try:
                addr = self.exec_node(node["name"], ["cat", "/sys/class/net/eth0/address"])
            except RuntimeFailure:  # a paused node cannot be asked; it is not the answer
                continue
            if addr.stdout.strip() == mac:
                return node["name"]
        return None

    def disconnect_node(self, node: str) -> None:
        """The node "goes away": its eth0 leaves the node network (its state is kept)."""
        self.runtime.disconnect(self.ref.node(node).name, self.ref.network.name)

    def reconnect_node(self, node: str) -> None:
        """Back on the network at its IP; its agent and proxy restart to re-plumb the new
        eth0 (routes, ARP socket), then the node must report Ready again."""
        ip = self.node_ip(node)
        self.runtime.connect(self.ref.node(node).name, self.ref.network.name, ip)
        # Docker names the new interface eth1; everything on a node expects eth0.
        rename = (f"dev=$(ip -o -4 addr show | awk '$4 ~ /^{ip}\\// {{print $2}}'); "
                  'if [ "$dev" != eth0 ]; then ip link set "$dev" down && '
                  'ip link set "$dev" name eth0 && ip link set eth0 up; fi; '
                  f"ip route replace default via {self.config['gateway']} dev eth0")
        self.exec_node(node, ["sh", "-c", rename]).check()
        for program in ("agent", "proxy"):
            self.exec_node(node, ["sh", "-c", f"kill $(cat /run/testbed/{program}.pid)"])

        def ready() -> None:
            from testbed.agent.election import fresh_nodes

            statuses = {n["name"]: (self.store.get(status_key("Node", None, n["name"])) or
                                    _Empty).value for n in self.nodes}
            import datetime as dt

            assert node in fresh_nodes(statuses, dt.datetime.now(dt.UTC)), f"{node} not back"

        eventually(ready, timeout=60)

    def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        kv = self.store.get(spec_key("Deployment", namespace, deployment))
        obj = kv.value
        obj["spec"]["replicas"] = replicas
        self.apply([obj])

    def answers(self, source, host: str, port: int, n: int = 30, protocol: str = "tcp",
                request: str = "hostname", timeout: float = 2.0) -> list[str | None]:
        """`n` requests (new connection each); the reply of each, None for a failure."""
        results = self.probe(source, [{"host": host, "port": port, "protocol": protocol,
                                       "request": request, "timeout": timeout}] * n)
        return [r.get("reply") if r["ok"] else None for r in results]


class Cluster(_ClusterBase, ServiceMixin):
    """Everything a suite does to a testbed goes through here (host side only)."""
