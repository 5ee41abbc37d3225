"""EbpfBackend over the shared model, with fake bpf() maps and a fake kernel: frontends and
pools per traffic policy, incremental syncs, id recovery after a restart, availability."""

from __future__ import annotations

import json

from testbed.proxy.base import Backend
from testbed.proxy.ebpf import EbpfBackend
from testbed.proxy.ebpf.backend import missing_kernel_parts
from testbed.proxy.model import NodeContext, build_model

from .fakes import FakeMapIO

CTX = NodeContext(node_name="node-a", node_ip="172.30.0.2", cluster_cidr="10.244.0.0/16")


def svc(name, ip, ports, **spec):
    """A v1 Service dict."""
    status = spec.pop("status", None)
    out = {"metadata": {"name": name, "namespace": "default"},
           "spec": {"clusterIP": ip, "ports": ports, **spec}}
    return out | ({"status": status} if status else {})


def sl(name, eps, ports):
    """An EndpointSlice dict."""
    return {"metadata": {"name": name + "-x", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}, "nodeName": node}
                          for ip, node in eps],
            "ports": [{"name": n, "port": p, "protocol": pr} for n, p, pr in ports]}


def model(web_eps=(("10.244.1.5", "node-a"), ("10.244.2.5", "node-b")), extra=()):
    """The shared model for node-a with one of each traffic policy."""
    services = [
        svc("web", "10.96.0.10", [{"name": "http", "port": 80, "nodePort": 30080}],
            type="NodePort"),
        svc("empty", "10.96.0.99", [{"port": 80}]),
        svc("lb", "10.96.0.20", [{"name": "https", "port": 443, "nodePort": 30443}],
            type="LoadBalancer", externalTrafficPolicy="Local",
            status={"loadBalancer": {"ingress": [{"ip": "198.51.100.20"}]}}),
        svc("sticky", "10.96.0.30", [{"port": 53, "protocol": "UDP"}],
            sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}),
        svc("itp", "10.96.0.40", [{"port": 80}], internalTrafficPolicy="Local"),
        *extra,
    ]
    slices = [
        sl("web", web_eps, [("http", 8080, "TCP")]),
        sl("lb", [("10.244.2.8", "node-b")], [("https", 8443, "TCP")]),
        sl("sticky", [("10.244.1.10", "node-a")], [("", 5353, "UDP")]),
        sl("itp", [("10.244.1.11", "node-a"), ("10.244.2.11", "node-b")], [("", 80, "TCP")]),
    ]
    return build_model(services, slices, "node-a")


def frontends(backend) -> dict[tuple[str, str], dict]:
    """Live frontends keyed (address, scope)."""
    return {(s["frontend"], s["scope"]): s for s in backend.maps().dump()["services"]}


def test_is_a_backend(backend):
    assert isinstance(backend, Backend) and backend.name == "ebpf"


def test_full_sync_programs_every_traffic_policy(backend, kernel):
    backend.apply(backend.render(model(), CTX))
    fe = frontends(backend)
    assert fe[("10.96.0.10:80", "sock")]["backends"] == ["10.244.1.5:8080", "10.244.2.5:8080"]
    assert fe[("172.30.0.2:30080", "sock")]["backends"] == fe[("10.96.0.10:80", "sock")][
        "backends"]
    assert fe[("172.30.0.2:30080", "ext")]["snat"] is True
    assert fe[("10.96.0.99:80", "sock")]["count"] == 0  # no endpoints: refuse
    # externalTrafficPolicy Local: no local endpoint → tc drops, no SNAT; pods short-circuit
    assert fe[("198.51.100.20:443", "ext")]["count"] == 0
    assert fe[("198.51.100.20:443", "ext")]["snat"] is False
    assert fe[("198.51.100.20:443", "sock")]["backends"] == ["10.244.2.8:8443"]
    assert fe[("172.30.0.2:30443", "ext")]["count"] == 0
    # internalTrafficPolicy Local: only this node's endpoint
    assert fe[("10.96.0.40:80", "sock")]["backends"] == ["10.244.1.11:80"]
    sticky = fe[("10.96.0.30:53", "sock")]
    assert sticky["proto"] == "UDP" and sticky["affinity"] and sticky["affinityTimeout"] == 60
    assert backend.rules_present() and kernel.tc is not None


def test_incremental_touches_only_the_changed_service(backend):
    old = model()
    backend.apply(backend.render(old, CTX))
    new = model(web_eps=(("10.244.1.6", "node-a"),))
    text = backend.render_incremental(old, new, CTX)
    doc = json.loads(text)
    assert doc["kind"] == "incremental"
    assert [(o["map"], o["op"]) for o in doc["ops"]] == [
        ("be", "update"), ("svc", "update"), ("be", "delete")]
    assert len(doc["ops"][1]["entries"]) == 3  # ClusterIP, NodePort sock, NodePort ext
    backend.apply(text)
    assert frontends(backend)[("10.96.0.10:80", "sock")]["backends"] == ["10.244.1.6:8080"]
    assert backend.render_incremental(new, new, CTX) is not None
    assert json.loads(backend.render_incremental(new, new, CTX))["ops"] == []


def test_add_and_remove_a_service_incrementally(backend):
    old = model()
    backend.apply(backend.render(old, CTX))
    new = model(extra=[svc("more", "10.96.0.77", [{"port": 80}])])
    backend.apply(backend.render_incremental(old, new, CTX))
    assert ("10.96.0.77:80", "sock") in frontends(backend)
    assert backend.ids["default/more/TCP"] == max(backend.ids.values())
    backend.apply(backend.render_incremental(new, old, CTX))
    assert ("10.96.0.77:80", "sock") not in frontends(backend)
    assert "default/more/TCP" not in backend.ids


def test_incremental_needs_full_first_and_after_node_ip_change(backend):
    assert backend.render_incremental(model(), model(), CTX) is None
    backend.apply(backend.render(model(), CTX))
    moved = NodeContext("node-a", "172.30.0.9", "10.244.0.0/16")
    assert backend.render_incremental(model(), model(), moved) is None


def test_restart_recovers_ids_from_live_maps(backend, paths, kernel, loader):
    m = model()
    backend.apply(backend.render(m, CTX))
    before = dict(backend.ids)
    fresh = EbpfBackend(paths=paths, io=backend._io, run=kernel)
    fresh.loader = loader
    doc = json.loads(fresh.render(m, CTX))
    assert doc["ids"] == before
    fresh.apply(json.dumps(doc))  # not its own render text: state is then "unknown plans"
    assert fresh.render_incremental(m, m, CTX) is None


def test_dump_text(backend):
    backend.apply(backend.render(model(), CTX))
    text = backend.dump()
    assert "10.96.0.10:80" in text and "<none: refuse>" in text and "<none: drop>" in text
    assert json.loads(backend.dump(as_json=True))["nodeIP"] == "172.30.0.2"


def test_cleanup_resets_state(backend, kernel, paths):
    backend.apply(backend.render(model(), CTX))
    backend.cleanup()
    assert not paths.root.exists() and kernel.cgroup == [] and backend.ids is None
    assert not backend.rules_present()


def test_missing_kernel_parts_are_named(tmp_path):
    fs = tmp_path / "filesystems"
    fs.write_text("nodev\tsysfs\nnodev\tbpf\n")
    btf = tmp_path / "vmlinux"
    btf.write_bytes(b"\0bpf_skb_ct_lookup\0bpf_ct_release\0")
    why = " ".join(missing_kernel_parts(str(btf), str(fs)))
    assert "cgroup2" in why and "bpffs" not in why
    assert "bpf_skb_ct_alloc" in why and "bpf_ct_set_nat_info" in why
    assert "bpf_skb_ct_lookup," not in why
    assert "kernel BTF" in " ".join(missing_kernel_parts(str(tmp_path / "none"), str(fs)))


def test_available_reports_reasons(monkeypatch):
    import testbed.proxy.ebpf.backend as mod

    monkeypatch.setattr(mod, "bpf_syscall_works", lambda: "bpf() syscall fails: EPERM")
    monkeypatch.setattr(mod, "missing_kernel_parts", lambda: ["kernel BTF at x"])
    monkeypatch.setattr(mod.shutil, "which", lambda t: None if t == "bpftool" else "/bin/" + t)
    avail = EbpfBackend(testbed="t", node="n", io=FakeMapIO()).available()
    assert not avail.ok
    assert "EPERM" in avail.reason and "kernel BTF" in avail.reason
    assert "bpftool not installed" in avail.reason


def test_registry_factory_form(monkeypatch):
    from testbed.proxy.runner import Runner

    b = EbpfBackend(Runner())  # what `"ebpf": "testbed.proxy.ebpf:EbpfBackend"` would call
    assert b.netns is None and b.name == "ebpf"
    assert "network namespace 'x'" in EbpfBackend(Runner("x")).available().reason


def test_changed_ports_merge_walk():
    from testbed.proxy.model import changed_ports

    a = model()
    b = model(web_eps=(("10.244.1.6", "node-a"),),
              extra=[svc("aaa", "10.96.0.70", [{"port": 80}]), svc("zzz", "10.96.0.71",
                                                                      [{"port": 80}])])
    gone, changed = changed_ports(a, b)
    assert gone == []
    assert sorted(s.name for s in changed) == ["aaa", "web", "zzz"]
    gone, changed = changed_ports(b, a)
    assert sorted(s.name for s in gone) == ["aaa", "zzz"]
    assert [s.name for s in changed] == ["web"]
    assert changed_ports(a, model()) == ([], [])
