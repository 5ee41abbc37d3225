"""Both renders loaded into throw-away network namespaces, then real packets (root only)."""

from __future__ import annotations

import os
import re
import subprocess
from collections import Counter

import pytest

from testbed.proxy import NodeContext, build_model, get_backend
from testbed.proxy.runner import Runner

from .rootnet import EXT_IP, NODE_IP, one_node, skip_reason
from .samples import CTX, NODE, ep, eps_slice, kitchen_sink, port, service

pytestmark = pytest.mark.root
MODES = ["iptables", "nftables"]


@pytest.fixture(scope="module", autouse=True)
def _need_root():
    reason = skip_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def netns():
    names: list[str] = []

    def make() -> str:
        name = f"tbpx{os.getpid()}-t{len(names)}"
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        names.append(name)
        return name

    yield make
    for name in names:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def listing(mode: str, ns: str) -> dict[str, list[str]]:
    """Kernel state as {block: ordered rules or sorted elements}, counters stripped."""
    run = Runner(ns).run
    blocks: dict[str, list[str]] = {}
    if mode == "iptables":
        for table in ("filter", "nat"):
            for line in run(["iptables-save", "-t", table]).stdout.splitlines():
                if line.startswith("-A "):
                    blocks.setdefault(f"{table}/{line.split()[1]}", []).append(line)
        return blocks
    current = ""
    for line in run(["nft", "list", "table", "ip", "testbed-proxy"]).stdout.splitlines():
        head = re.match(r"\s*(chain|map|set) (\S+) \{", line)
        if head:
            current = f"{head[1]} {head[2]}"
            blocks[current] = []
        elif current and line.strip() not in ("}", ""):
            text = line.strip().removeprefix("elements = {").removesuffix("}")
            blocks[current] += [t.strip() for t in text.split(",") if t.strip()]
    return {k: sorted(v) if not k.startswith("chain") else v for k, v in blocks.items()}


@pytest.mark.parametrize("mode", MODES)
def test_apply_shows_expected_chains_then_cleanup_removes_them(mode, netns):
    ns = netns()
    backend = get_backend(mode, netns=ns, require_available=True)
    model = build_model(*kitchen_sink(), NODE)
    backend.apply(backend.render(model, CTX))
    backend.apply(backend.render(model, CTX))  # a resync is idempotent
    assert backend.rules_present()
    if mode == "iptables":
        nat = Runner(ns).run(["iptables-save", "-t", "nat"]).stdout
        for want in (":KUBE-SERVICES", ":KUBE-NODEPORTS", ":KUBE-SVC-", ":KUBE-SEP-", ":KUBE-EXT-",
                     ":KUBE-SVL-", '-A PREROUTING -m comment --comment "kubernetes service '
                     'portals" -j KUBE-SERVICES', "-j MASQUERADE --random-fully"):  # fmt: skip
            assert want in nat
        assert nat.count('--comment "kubernetes service portals" -j KUBE-SERVICES') == 2
        assert "-j REJECT" in Runner(ns).run(["iptables-save", "-t", "filter"]).stdout
    else:
        text = Runner(ns).run(["nft", "list", "table", "ip", "testbed-proxy"]).stdout
        for want in (
            "map service-ips",
            "map endpoints",
            "chain pool-2",
            "chain services",
            "set hairpin",
            "10.96.0.10 . tcp . 80 : goto pool-2",
            "timeout 10m",
        ):
            assert want in text
    backend.cleanup()
    backend.cleanup()  # idempotent
    assert not backend.rules_present()
    assert "KUBE-" not in Runner(ns).run(["iptables-save"]).stdout
    assert "testbed-proxy" not in Runner(ns).run(["nft", "list", "tables"]).stdout


def _changed(svcs, slices):
    slices[0]["endpoints"].append(ep("10.244.3.5", "node-c"))  # web: new 3-endpoint pool
    slices[4]["endpoints"] = [ep("10.244.1.10")]  # sticky drops an endpoint
    svcs = [s for s in svcs if s["metadata"]["name"] != "itp"]  # a service goes away
    svcs.append(service("new", "10.96.0.77", [port(80)], sessionAffinity="ClientIP"))
    slices.append(eps_slice("new", [ep("10.244.1.77")], [("", 80, "TCP")]))
    return svcs, slices


@pytest.mark.parametrize("mode", MODES)
def test_full_plus_incremental_equals_full(mode, netns):
    svcs, slices = kitchen_sink()
    old = build_model(svcs, slices, NODE)
    new = build_model(*_changed(svcs, slices), NODE)
    a, b = netns(), netns()
    inc = get_backend(mode, netns=a)
    inc.apply(inc.render(old, CTX))
    inc.apply(inc.render_incremental(old, new, CTX) or "")
    full = get_backend(mode, netns=b)
    full.apply(full.render(new, CTX))
    assert listing(mode, a) == listing(mode, b)
    # a full resync over old state removes what is gone (iptables: stale chains)
    c = netns()
    resync = get_backend(mode, netns=c)
    resync.apply(resync.render(old, CTX))
    resync.apply(resync.render(new, CTX))
    assert listing(mode, c) == listing(mode, b)
    if mode == "iptables":
        chains = lambda ns: Runner(ns).run(["iptables-save", "-t", "nat"]).stdout  # noqa: E731
        assert sorted(re.findall(r"^:(\S+)", chains(c), re.M)) == sorted(
            re.findall(r"^:(\S+)", chains(b), re.M)
        )


P1, P2 = "10.244.1.2", "10.244.1.6"  # the pods of rootnet.one_node()
GATEWAYS = {"10.244.1.1", "10.244.1.5"}  # node-side veth addresses (masquerade sources)


def _traffic_model(extra_endpoint: bool = True):
    svcs = [
        service("web", "10.96.0.10", [port(80, "http", nodePort=30080),
                port(53, "dns", "UDP")], type="NodePort"),  # fmt: skip
        service("local", "10.96.0.11", [port(80, nodePort=30081)], type="LoadBalancer",
                externalTrafficPolicy="Local",
                status={"loadBalancer": {"ingress": [{"ip": "198.51.100.20"}]}}),
        service("sticky", "10.96.0.30", [port(80, nodePort=30030)], type="NodePort",
                sessionAffinity="ClientIP"),
        service("empty", "10.96.0.99", [port(80, nodePort=30099)], type="NodePort"),
    ]  # fmt: skip
    web_eps = [ep(P1), ep(P2)] if extra_endpoint else [ep(P1)]
    slices = [
        eps_slice("web", web_eps, [("http", 8080, "TCP"), ("dns", 5353, "UDP")]),
        eps_slice("local", [ep(P1), ep(P2, "node-b")], [("", 8080, "TCP")]),
        eps_slice("sticky", [ep(P1), ep(P2)], [("", 8080, "TCP")]),
    ]
    return build_model(svcs, slices, NODE)


@pytest.mark.parametrize("mode", MODES)
def test_real_traffic(mode):
    ctx = NodeContext(NODE, NODE_IP, "10.244.0.0/16")
    with one_node() as net:

        def many(src, proto, ip, p, n=16):
            return Counter(net.call(src, proto, ip, p) for _ in range(n))

        backend = get_backend(mode, netns=net.node)
        model = _traffic_model()
        backend.apply(backend.render(model, ctx))
        # NodePort from outside: both endpoints, source masqueraded to the node
        got = many("ext", "tcp", NODE_IP, 30080)
        assert {r.split()[0] for r in got} == {"pod1", "pod2"}
        assert {r.split()[1] for r in got} <= GATEWAYS
        # pod -> cluster IP: no masquerade, except hairpin (pod reaching itself)
        got = many("pod2", "tcp", "10.96.0.10", 80)
        assert set(got) == {f"pod1 {P2}", "pod2 10.244.1.5"}
        assert {r.split()[0] for r in many("pod1", "udp", "10.96.0.10", 53, 10)} <= {"pod1", "pod2"}
        assert set(many("node", "tcp", "10.96.0.10", 80, 4)) <= {f"pod1 {g}" for g in GATEWAYS} | {
            f"pod2 {g}" for g in GATEWAYS}  # fmt: skip
        # off-cluster client to a cluster IP: masqueraded
        assert {r.split()[1] for r in many("ext", "tcp", "10.96.0.10", 80, 4)} <= GATEWAYS
        # externalTrafficPolicy Local: local endpoint only, client IP kept; pods short-circuit
        assert set(many("ext", "tcp", NODE_IP, 30081, 8)) == {f"pod1 {EXT_IP}"}
        assert set(many("ext", "tcp", "198.51.100.20", 80, 4)) == {f"pod1 {EXT_IP}"}
        assert {r.split()[0] for r in many("pod2", "tcp", "198.51.100.20", 80)} == {"pod1", "pod2"}
        # ClientIP affinity: one endpoint for a client
        assert len(set(many("ext", "tcp", NODE_IP, 30030, 8))) == 1
        # no endpoints: refused at once, from a pod, the node and outside
        for src, ip, p in (("pod1", "10.96.0.99", 80), ("node", "10.96.0.99", 80),
                           ("ext", NODE_IP, 30099)):  # fmt: skip
            assert net.call(src, "tcp", ip, p) == "refused"
        # incremental: web loses pod2
        smaller = _traffic_model(extra_endpoint=False)
        backend.apply(backend.render_incremental(model, smaller, ctx) or "")
        assert {r.split()[0] for r in many("ext", "tcp", NODE_IP, 30080, 8)} == {"pod1"}
        backend.cleanup()
