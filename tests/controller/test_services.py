"""Service allocation: ClusterIPs, NodePorts, rejections, restarts, concurrent creation."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from testbed.cluster.apply import apply_objects
from testbed.controller.loop import Controller
from testbed.controller.ranges import Band, band_offset, node_port_band, service_ip_band
from testbed.controller.services import ALLOCATED_ANNOTATION, reconcile_services
from testbed.controller.snapshot import Snapshot
from testbed.store.keys import spec_key

from .helpers import converge, make_config, put, reconcile
from .svc_helpers import allocated_condition, service, svc_spec, svc_status

SUBNET = IPv4Network("10.96.0.0/16")


def test_bands_follow_the_kubernetes_split():
    assert band_offset(65534, 16, 256, 16) == 256
    assert band_offset(254, 16, 256, 16) == 16
    assert band_offset(14, 16, 256, 16) == 0
    assert node_port_band().offset == 86
    ips = service_ip_band(SUBNET)
    assert (IPv4Address(ips.first), IPv4Address(ips.last), ips.offset) == (
        IPv4Address("10.96.0.1"), IPv4Address("10.96.255.254"), 256)
    band = Band(1, 10, 4)  # static 1-4, dynamic 5-10
    taken = set(range(5, 11))
    assert band.pick("x", taken) == 4, "static band is used top down once dynamic is full"
    assert band.pick("x", taken | {2, 3, 4}) == 1
    assert band.pick("x", set(range(1, 11))) is None
    assert band.pick("x", set()) == band.pick("x", set()), "stable for the same seed"


def test_dynamic_cluster_ip_comes_from_the_upper_band(store):
    put(store, service("web"))
    converge(store)
    spec = svc_spec(store, "web")
    ip = IPv4Address(spec["clusterIP"])
    assert ip in SUBNET and int(ip) > int(SUBNET.network_address) + 256
    assert spec["clusterIPs"] == [spec["clusterIP"]]
    assert spec["ports"][0] == {"name": "http", "port": 80, "targetPort": 8080,
                                "protocol": "TCP"}
    assert "nodePort" not in spec["ports"][0]
    assert ALLOCATED_ANNOTATION in store.get(spec_key("Service", "default", "web")).value[
        "metadata"]["annotations"]
    assert svc_status(store, "web") == {"loadBalancer": {}, "conditions": [
        {"type": "Allocated", "status": "True", "reason": "Allocated",
         "message": f"clusterIP {ip}"}]}


def test_requested_cluster_ip_is_honoured(store):
    put(store, service("kube-dns", "kube-system", clusterIP="10.96.0.10"))
    converge(store)
    spec = svc_spec(store, "kube-dns", "kube-system")
    assert (spec["clusterIP"], spec["clusterIPs"]) == ("10.96.0.10", ["10.96.0.10"])
    assert allocated_condition(svc_status(store, "kube-dns", "kube-system"))["status"] == "True"


def test_taken_cluster_ip_is_rejected_without_touching_the_spec(store):
    put(store, service("first", clusterIP="10.96.0.10"))
    converge(store)
    put(store, service("second", clusterIP="10.96.0.10", type="NodePort"))
    converge(store)
    spec = svc_spec(store, "second")
    assert "clusterIPs" not in spec and "nodePort" not in spec["ports"][0], "no half-apply"
    cond = allocated_condition(svc_status(store, "second"))
    assert (cond["status"], cond["reason"]) == ("False", "ClusterIPTaken")
    assert cond["message"].startswith("spec.clusterIP: 10.96.0.10 is already allocated to "
                                      "service default/first")
    assert svc_status(store, "second")["loadBalancer"] == {}


def test_first_address_is_reserved_for_kubernetes(store):
    put(store, service("sneaky", clusterIP="10.96.0.1"))
    converge(store)
    cond = allocated_condition(svc_status(store, "sneaky"))
    assert cond["reason"] == "ClusterIPTaken" and "default/kubernetes" in cond["message"]


def test_out_of_range_and_invalid_cluster_ips(store):
    put(store, service("far", clusterIP="10.0.0.5"))
    put(store, service("net", clusterIP="10.96.0.0"))
    put(store, service("junk", clusterIP="ten"))
    converge(store)
    far = allocated_condition(svc_status(store, "far"))
    assert far["reason"] == "ClusterIPOutOfRange"
    assert far["message"] == (
        "spec.clusterIP: 10.0.0.5 is outside the service range; expected an address in "
        "10.96.0.1-10.96.255.254 (networking.serviceSubnet 10.96.0.0/16), 'None' for a "
        "headless service, or no value to have one allocated")
    assert allocated_condition(svc_status(store, "net"))["reason"] == "ClusterIPOutOfRange"
    assert allocated_condition(svc_status(store, "junk"))["reason"] == "ClusterIPInvalid"
    assert svc_spec(store, "far")["clusterIP"] == "10.0.0.5"  # the request is left as is


def test_headless(store):
    put(store, service("db", clusterIP="None"))
    put(store, service("bad", clusterIP="None", type="NodePort"))
    converge(store)
    spec = svc_spec(store, "db")
    assert (spec["clusterIP"], spec["clusterIPs"]) == ("None", ["None"])
    assert allocated_condition(svc_status(store, "db"))["message"] == "headless (clusterIP None)"
    assert allocated_condition(svc_status(store, "bad"))["reason"] == "ClusterIPInvalid"


def test_node_ports_one_per_port_and_requested_honoured(store):
    ports = [{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"},
             {"name": "admin", "port": 9000, "nodePort": 30500}]
    put(store, service("edge", type="NodePort", ports=ports))
    converge(store)
    got = [p["nodePort"] for p in svc_spec(store, "edge")["ports"]]
    assert got[2] == 30500 and len(set(got)) == 3
    assert all(30086 <= p <= 32767 for p in got[:2]), "dynamic ports from the upper band"
    assert svc_spec(store, "edge")["externalTrafficPolicy"] == "Cluster"
    msg = allocated_condition(svc_status(store, "edge"))["message"]
    assert msg.endswith(f"nodePorts {got[0]}, {got[1]}, 30500")


def test_node_port_conflicts_and_range(store):
    put(store, service("a", type="NodePort", ports=[{"port": 80, "nodePort": 30080}]))
    converge(store)
    ip_before = svc_spec(store, "a")["clusterIP"]
    put(store, service("b", type="NodePort", ports=[{"port": 80, "nodePort": 30080}]))
    put(store, service("c", type="NodePort", ports=[{"port": 80, "nodePort": 80}]))
    converge(store)
    b = allocated_condition(svc_status(store, "b"))
    assert b["reason"] == "NodePortTaken"
    assert b["message"].startswith("spec.ports[0].nodePort: 30080 is already allocated to "
                                   "service default/a")
    assert "clusterIP" not in svc_spec(store, "b"), "no clusterIP while a port is rejected"
    assert allocated_condition(svc_status(store, "c"))["reason"] == "NodePortOutOfRange"
    assert svc_spec(store, "a")["clusterIP"] == ip_before


def test_cluster_ip_service_drops_node_ports(store):
    put(store, service("x", ports=[{"port": 80, "nodePort": 30001}]))
    converge(store)
    assert "nodePort" not in svc_spec(store, "x")["ports"][0]


def test_rejected_request_succeeds_once_the_value_is_free(store):
    key = put(store, service("first", clusterIP="10.96.0.10"))
    converge(store)
    put(store, service("second", clusterIP="10.96.0.10"))
    converge(store)
    store.delete(key)
    converge(store)
    assert svc_spec(store, "second")["clusterIPs"] == ["10.96.0.10"]
    assert allocated_condition(svc_status(store, "second"))["status"] == "True"


def test_held_values_are_not_stolen_by_an_older_service(store):
    put(store, service("old", created="2024-01-01T00:00:00Z"))
    converge(store)
    put(store, service("new", created="2024-01-02T00:00:00Z"))
    converge(store)
    theirs = svc_spec(store, "new")["clusterIP"]
    put(store, service("old", created="2024-01-01T00:00:00Z", clusterIP=theirs))
    converge(store)
    assert svc_spec(store, "new")["clusterIP"] == theirs
    assert allocated_condition(svc_status(store, "old"))["reason"] == "ClusterIPTaken"


def test_services_created_at_once_resolve_deterministically():
    same = "2024-01-01T00:00:00Z"
    # "zeta" is written first (lower revision) so it wins although "alpha" sorts first.
    objs = [service("zeta", created=same, clusterIP="10.96.0.20"),
            service("alpha", created=same, clusterIP="10.96.0.20")]
    objs += [service(f"s{i}", created=same, type="NodePort") for i in range(40)]
    snap = Snapshot.from_dicts(make_config(), objs)
    def decide():  # default/kubernetes is created with a fresh uid each time
        return [a for a in reconcile_services(snap) if not a.key.endswith("/kubernetes")]
    actions = decide()
    assert actions == decide(), "same snapshot, same decision"
    updates = {a.key.rsplit("/", 1)[1]: a.obj for a in actions if a.key.startswith("/registry/")}
    assert updates["zeta"]["spec"]["clusterIPs"] == ["10.96.0.20"] and "alpha" not in updates
    ips = [o["spec"]["clusterIP"] for o in updates.values() if o["kind"] == "Service"]
    ports = [p["nodePort"] for o in updates.values() for p in o["spec"]["ports"]
             if "nodePort" in p]
    assert len(ips) == len(set(ips)) == 41 and len(ports) == len(set(ports)) == 40


def test_dynamic_picks_avoid_values_requested_in_the_same_pass():
    objs = [service("dyn", type="NodePort", created="2024-01-01T00:00:00Z")]
    snap = Snapshot.from_dicts(make_config(), objs)
    picked = next(a.obj for a in reconcile_services(snap) if a.key.endswith("/dyn"))
    port = picked["spec"]["ports"][0]["nodePort"]
    ip = picked["spec"]["clusterIP"]
    later = service("req", type="NodePort", created="2024-01-02T00:00:00Z", clusterIP=ip,
                    ports=[{"port": 80, "nodePort": port}])
    snap = Snapshot.from_dicts(make_config(), [*objs, later])
    out = {a.key.rsplit("/", 1)[1]: a.obj for a in reconcile_services(snap)
           if a.key.startswith("/registry/")}
    assert out["req"]["spec"]["clusterIP"] == ip
    assert out["req"]["spec"]["ports"][0]["nodePort"] == port
    assert out["dyn"]["spec"]["clusterIP"] != ip


def test_restart_and_reapply_keep_allocations(store):
    put(store, service("web", type="NodePort"))
    converge(store)
    before = svc_spec(store, "web")
    assert Controller(store).reconcile().applied == [], "a fresh controller changes nothing"
    apply_objects(store, [service("web", type="NodePort")])  # re-apply keeps the allocation
    kept = svc_spec(store, "web")
    assert kept["clusterIP"] == before["clusterIP"]
    assert kept["ports"][0]["nodePort"] == before["ports"][0]["nodePort"]
    converge(store)
    assert svc_spec(store, "web") == before, "the same values come back"
    assert reconcile(store) == []


def test_external_name_gets_nothing(store):
    put(store, service("ext", type="ExternalName", externalName="example.com"))
    converge(store)
    assert "clusterIP" not in svc_spec(store, "ext")
    assert svc_status(store, "ext") == {"loadBalancer": {}}
    put(store, service("web"))
    converge(store)
    cur = store.get(spec_key("Service", "default", "web")).value
    cur["spec"] = dict(cur["spec"], type="ExternalName", externalName="example.com")
    put(store, cur)
    converge(store)
    assert "clusterIP" not in svc_spec(store, "web")


def test_kubernetes_service_is_created_with_the_first_address(store):
    converge(store)
    spec = svc_spec(store, "kubernetes")
    assert spec["clusterIP"] == "10.96.0.1" and "selector" not in spec
    assert spec["ports"] == [{"name": "https", "protocol": "TCP", "port": 443,
                              "targetPort": 6443}]
    assert allocated_condition(svc_status(store, "kubernetes"))["status"] == "True"
    store.delete(spec_key("Service", "default", "kubernetes"))
    converge(store)
    assert svc_spec(store, "kubernetes")["clusterIP"] == "10.96.0.1"


def test_malformed_service_does_not_block_the_others(store, caplog):
    bad = service("bad")
    bad["spec"]["ports"] = "eighty"
    put(store, bad)
    put(store, service("good"))
    converge(store)
    assert "clusterIP" in svc_spec(store, "good")
    assert "skipping service" in caplog.text
