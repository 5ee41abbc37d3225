"""LoadBalancer addresses from ``networking.loadBalancerPool`` (written to the status)."""

from __future__ import annotations

from ipaddress import IPv4Address

from testbed.controller.ranges import Ranges
from testbed.store.keys import CONFIG_KEY, spec_key

from .helpers import converge, reconcile
from .svc_helpers import allocated_condition, lb_config, service, svc_spec, svc_status


def lb(name: str, **spec) -> dict:
    """A LoadBalancer service."""
    return service(name, type="LoadBalancer", **spec)


def ingress(store, name: str) -> list:
    """The ingress list of a service's status."""
    return (svc_status(store, name) or {}).get("loadBalancer", {}).get("ingress", [])


def test_pool_addresses_skip_node_subnet_edges_and_used_addresses():
    cfg = lb_config("172.30.0.252/30")  # .252-.255; .255 is the node subnet's broadcast
    ips = [str(IPv4Address(a)) for a in Ranges.from_config(cfg).pool_ips]
    assert ips == ["172.30.0.252", "172.30.0.253", "172.30.0.254"]
    cfg["nodes"][0]["ip"] = "172.30.0.253"
    assert len(Ranges.from_config(cfg).pool_ips) == 2


def test_load_balancer_gets_the_first_pool_address(store):
    store.put(CONFIG_KEY, lb_config())
    store.put(spec_key("Service", "default", "web"), lb("web"))
    converge(store)
    assert ingress(store, "web") == [{"ip": "172.30.0.240", "ipMode": "VIP"}]
    spec = svc_spec(store, "web")
    assert spec["clusterIP"] and 30000 <= spec["ports"][0]["nodePort"] <= 32767
    cond = allocated_condition(svc_status(store, "web"), "LoadBalancerAllocated")
    assert cond == {"type": "LoadBalancerAllocated", "status": "True", "reason": "Allocated",
                    "message": "ingress IP 172.30.0.240 from networking.loadBalancerPool "
                               "172.30.0.240/30"}
    assert reconcile(store) == []


def test_requested_load_balancer_ip(store):
    store.put(CONFIG_KEY, lb_config())
    store.put(spec_key("Service", "default", "a"), lb("a", loadBalancerIP="172.30.0.242"))
    store.put(spec_key("Service", "default", "b"), lb("b", loadBalancerIP="10.0.0.1"))
    store.put(spec_key("Service", "default", "c"), lb("c", loadBalancerIP="172.30.0.242"))
    converge(store)
    assert ingress(store, "a") == [{"ip": "172.30.0.242", "ipMode": "VIP"}]
    b = allocated_condition(svc_status(store, "b"), "LoadBalancerAllocated")
    assert (b["status"], b["reason"]) == ("False", "LoadBalancerIPNotInPool")
    assert b["message"].startswith("spec.loadBalancerIP: '10.0.0.1' is not a usable address")
    c = allocated_condition(svc_status(store, "c"), "LoadBalancerAllocated")
    assert c["reason"] == "LoadBalancerIPTaken" and "default/a" in c["message"]
    # A pending address does not take the ClusterIP/NodePort away (as in Kubernetes).
    assert allocated_condition(svc_status(store, "c"))["status"] == "True"
    assert svc_spec(store, "c")["clusterIP"]


def test_pool_exhausted_then_freed(store):
    store.put(CONFIG_KEY, lb_config("172.30.0.240/31"))
    for i, name in enumerate(["a", "b", "c"]):
        store.put(spec_key("Service", "default", name),
                  lb(name, created=f"2024-01-0{i + 1}T00:00:00Z"))
    converge(store)
    assert [ingress(store, n)[0]["ip"] for n in "ab"] == ["172.30.0.240", "172.30.0.241"]
    cond = allocated_condition(svc_status(store, "c"), "LoadBalancerAllocated")
    assert cond["reason"] == "PoolExhausted"
    assert cond["message"] == ("status.loadBalancer: no free address left in "
                               "networking.loadBalancerPool 172.30.0.240/31; delete a "
                               "LoadBalancer service or enlarge the pool")
    assert ingress(store, "c") == []
    store.delete(spec_key("Service", "default", "a"))
    converge(store)
    assert ingress(store, "c") == [{"ip": "172.30.0.240", "ipMode": "VIP"}]
    assert ingress(store, "b") == [{"ip": "172.30.0.241", "ipMode": "VIP"}]


def test_no_pool_configured(store):
    store.put(CONFIG_KEY, lb_config(None))
    store.put(spec_key("Service", "default", "web"), lb("web"))
    converge(store)
    cond = allocated_condition(svc_status(store, "web"), "LoadBalancerAllocated")
    assert cond["reason"] == "PoolExhausted"
    assert "no networking.loadBalancerPool is configured" in cond["message"]


def test_address_survives_reapply_and_is_released_on_type_change(store):
    store.put(CONFIG_KEY, lb_config())
    key = spec_key("Service", "default", "a")
    store.put(key, lb("a", created="2024-01-01T00:00:00Z"))
    converge(store)
    store.put(spec_key("Service", "default", "b"), lb("b", created="2024-01-02T00:00:00Z"))
    converge(store)
    assert ingress(store, "b")[0]["ip"] == "172.30.0.241"
    store.put(key, lb("a", created="2024-01-01T00:00:00Z"))  # re-apply: status stays
    converge(store)
    assert ingress(store, "a")[0]["ip"] == "172.30.0.240"
    store.put(key, service("a", created="2024-01-01T00:00:00Z"))
    converge(store)
    assert ingress(store, "a") == []
    assert allocated_condition(svc_status(store, "a"), "LoadBalancerAllocated") is None
    assert "nodePort" not in svc_spec(store, "a")["ports"][0]


def test_allocate_load_balancer_node_ports_false(store):
    store.put(CONFIG_KEY, lb_config())
    store.put(spec_key("Service", "default", "a"),
              lb("a", allocateLoadBalancerNodePorts=False))
    converge(store)
    assert "nodePort" not in svc_spec(store, "a")["ports"][0]
    assert ingress(store, "a")
