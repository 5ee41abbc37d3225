"""pytest plugin for conformance suites: one testbed per (mode, routing, podNetwork) per session,
shared by every suite in it; logs exported on the first failure."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from testbed.testing.cluster import Cluster

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SUITE_TOPOLOGY = PROJECT_ROOT / "suites" / "topology.yaml"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("testbed")
    group.addoption("--mode", default=os.environ.get("TESTBED_MODE", "iptables"),
                    help="kubeProxyMode of the testbed the suites run against")
    group.addoption("--routing", default=os.environ.get("TESTBED_ROUTING", "routed"),
                    help="routed | vxlan")
    group.addoption("--pod-network", default="island", help="island | flat")
    group.addoption("--topology", default=str(SUITE_TOPOLOGY), help="topology file for suites")
    group.addoption("--keep", action="store_true", help="leave the testbed running afterwards")
    group.addoption("--reports", default=str(PROJECT_ROOT / "reports"),
                    help="where logs are exported on failure")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "routing(name): run only with this routing mode")
    config.addinivalue_line("markers", "pod_network(name): needs this pod network (island|flat)")


def testbed_name(mode: str, routing: str, pod_network: str) -> str:
    return f"suite-{mode}-{routing}" + ("-flat" if pod_network == "flat" else "")


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest):
    """The shared testbed for this session, brought up on first use and removed at the end."""
    from testbed.cli.common import store_for
    from testbed.cluster.down import down
    from testbed.cluster.state import require_testbed
    from testbed.cluster.steps import Steps
    from testbed.cluster.up import up
    from testbed.runtime.docker_runtime import DockerRuntime
    from testbed.runtime.images import ImageBuilder
    from testbed.topology import load_topology, with_overrides

    opt = request.config.getoption
    mode, routing, pod_network = opt("--mode"), opt("--routing"), opt("--pod-network")
    name = testbed_name(mode, routing, pod_network)
    lt = with_overrides(load_topology(opt("--topology")), name=name, mode=mode)
    networking = lt.topology.spec.networking.model_copy(
        update={"routing": routing, "pod_network": pod_network})
    spec = lt.topology.spec.model_copy(update={"networking": networking})
    lt = type(lt)(**{**lt.__dict__, "topology": lt.topology.model_copy(update={"spec": spec})})
    runtime = DockerRuntime()
    image = ImageBuilder(runtime).ensure_node()
    reports = Path(opt("--reports"))

    def export_on_failure(testbed: str) -> None:
        from testbed.cli.podcmds import NODE_STATE_COMMANDS
        from testbed.cluster.export import export_testbed

        ref = require_testbed(runtime, testbed)
        export_testbed(runtime, ref, store_for(ref.control_plane.ipv4_address),
                       reports / testbed / "logs-up-failure", NODE_STATE_COMMANDS)

    up(lt, runtime, image, store_for, Steps(quiet=True), recreate=True, timeout=240,
       on_failure=export_on_failure)
    ref = require_testbed(runtime, name)
    handle = Cluster(runtime, ref, store_for(ref.control_plane.ipv4_address))
    request.config._testbed_cluster = handle
    yield handle
    if not opt("--keep"):
        down(runtime, name)


@pytest.fixture
def namespace(cluster: Cluster):
    """A fresh namespace per test, deleted (with its pods) afterwards."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    cluster.apply([ns])
    yield name
    pods = cluster.pods(name)
    cluster.delete([{"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": p.name, "namespace": name}} for p in pods])
    cluster.delete([ns])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    report = outcome.get_result()
    config = item.config
    handle = getattr(config, "_testbed_cluster", None)
    if report.failed and handle is not None and not getattr(config, "_testbed_exported", False):
        config._testbed_exported = True
        from testbed.cli.podcmds import NODE_STATE_COMMANDS
        from testbed.cluster.export import export_testbed

        target = Path(config.getoption("--reports")) / handle.name / "logs"
        try:
            export_testbed(handle.runtime, handle.ref, handle.store, target, NODE_STATE_COMMANDS)
            report.sections.append(("testbed", f"logs exported to {target}"))
        except Exception as exc:  # exporting must never mask the real failure
            report.sections.append(("testbed", f"log export failed: {exc}"))
