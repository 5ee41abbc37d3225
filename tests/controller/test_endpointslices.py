"""EndpointSlices: conditions, named ports per pod, splitting, churn, cleanup."""

from __future__ import annotations

from testbed.controller.actions import Create, Delete, Update
from testbed.controller.endpointslices import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    reconcile_endpointslices,
)
from testbed.controller.snapshot import Snapshot
from testbed.store.keys import spec_key

from .helpers import converge, deployment, make_config, pods, put, reconcile
from .svc_helpers import app_pod, endpoint_names, pod_status_key, running, service, slices

WEB = {"app": "web"}


def snapshot(objs: list[dict], statuses: dict[str, dict]) -> Snapshot:
    """A snapshot of ``objs`` with pod statuses keyed by pod name."""
    by_name = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Pod"}
    return Snapshot.from_dicts(make_config(), objs,
                               {pod_status_key(by_name[n]): st for n, st in statuses.items()})


def created(actions) -> dict[str, dict]:
    """Created slices by name."""
    return {a.obj["metadata"]["name"]: a.obj for a in actions if isinstance(a, Create)}


def test_conditions_fields_and_labels():
    svc = service("web", selector=WEB)
    pods = [app_pod("ready"), app_pod("unready", node="worker2"),
            app_pod("leaving", deleting=True), app_pod("no-ip"), app_pod("other", app="db"),
            app_pod("done"), app_pod("elsewhere", ns="shop")]
    snap = snapshot([svc, *pods], {
        "ready": running("10.244.1.2"), "unready": running("10.244.2.2", ready=False),
        "leaving": running("10.244.1.3"), "no-ip": running(None),
        "other": running("10.244.1.4"), "done": running("10.244.1.5", phase="Succeeded"),
        "elsewhere": running("10.244.1.6")})
    (sl,) = created(reconcile_endpointslices(snap)).values()
    assert sl["metadata"]["name"].startswith("web-") and sl["metadata"]["name"].endswith("-0")
    assert sl["metadata"]["labels"] == {SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: MANAGED_BY}
    ref = sl["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["uid"]) == ("Service", "web", svc["metadata"]["uid"])
    assert sl["addressType"] == "IPv4"
    assert sl["ports"] == [{"name": "http", "protocol": "TCP", "port": 8080}]
    eps = {ep["targetRef"]["name"]: ep for ep in sl["endpoints"]}
    assert sorted(eps) == ["leaving", "ready", "unready"]
    assert eps["ready"] == {
        "addresses": ["10.244.1.2"], "nodeName": "worker1",
        "conditions": {"ready": True, "serving": True, "terminating": False},
        "targetRef": {"kind": "Pod", "name": "ready", "namespace": "default",
                      "uid": pods[0]["metadata"]["uid"]}}
    assert eps["unready"]["conditions"] == {"ready": False, "serving": False,
                                            "terminating": False}
    assert eps["unready"]["nodeName"] == "worker2"
    assert eps["leaving"]["conditions"] == {"ready": False, "serving": True,
                                            "terminating": True}


def test_publish_not_ready_addresses():
    svc = service("web", selector=WEB, publishNotReadyAddresses=True)
    snap = snapshot([svc, app_pod("a")], {"a": running("10.244.1.2", ready=False)})
    (sl,) = created(reconcile_endpointslices(snap)).values()
    assert sl["endpoints"][0]["conditions"] == {"ready": True, "serving": False,
                                                "terminating": False}


def test_hostname_only_for_the_matching_subdomain():
    svc = service("db", selector=WEB, clusterIP="None")
    pods = [app_pod("db-0", hostname="db-0", subdomain="db"),
            app_pod("db-1", hostname="db-1", subdomain="other"), app_pod("db-2", hostname="x")]
    snap = snapshot([svc, *pods], {p["metadata"]["name"]: running(f"10.244.1.{i + 2}")
                                   for i, p in enumerate(pods)})
    (sl,) = created(reconcile_endpointslices(snap)).values()
    hosts = {ep["targetRef"]["name"]: ep.get("hostname") for ep in sl["endpoints"]}
    assert hosts == {"db-0": "db-0", "db-1": None, "db-2": None}


def test_named_target_port_resolved_per_pod():
    svc = service("web", selector=WEB, ports=[{"name": "http", "port": 80, "targetPort": "web"}])
    pods = [app_pod("old-1", ports={"web": 8080}), app_pod("old-2", ports={"web": 8080}),
            app_pod("new-1", ports={"web": 9090}), app_pod("none", ports={"metrics": 9100}),
            app_pod("bare")]
    snap = snapshot([svc, *pods], {p["metadata"]["name"]: running(f"10.244.1.{i + 2}")
                                   for i, p in enumerate(pods)})
    out = created(reconcile_endpointslices(snap))
    assert len(out) == 2
    by_port = {sl["ports"][0]["port"]: endpoint_names(sl) for sl in out.values()}
    assert by_port == {8080: ["old-1", "old-2"], 9090: ["new-1"]}
    assert len({name.rsplit("-", 2)[1] for name in out}) == 2, "hash differs per port set"


def test_pod_missing_one_of_several_ports_keeps_the_others():
    ports = [{"name": "http", "port": 80, "targetPort": "http"},
             {"name": "metrics", "port": 9100, "targetPort": "metrics"}]
    svc = service("web", selector=WEB, ports=ports)
    pods = [app_pod("full", ports={"http": 8080, "metrics": 9100}),
            app_pod("half", ports={"http": 8080})]
    snap = snapshot([svc, *pods], {"full": running("10.244.1.2"), "half": running("10.244.1.3")})
    out = created(reconcile_endpointslices(snap)).values()
    shapes = sorted((len(sl["ports"]), endpoint_names(sl)) for sl in out)
    assert shapes == [(1, ["half"]), (2, ["full"])]


def test_250_pods_make_three_slices(store):
    put(store, service("web", selector=WEB))
    for i in range(250):
        put(store, app_pod(f"p{i:03}"))
        store.put(pod_status_key(app_pod(f"p{i:03}")), running(f"10.244.{i // 200}.{i % 200 + 2}"))
    converge(store)
    got = slices(store)
    assert sorted(len(sl["endpoints"]) for sl in got.values()) == [50, 100, 100]
    assert len({n for sl in got.values() for n in endpoint_names(sl)}) == 250
    assert sorted(n.rsplit("-", 1)[1] for n in got) == ["0", "1", "2"]
    assert reconcile(store) == []


def test_minimal_churn(store):
    put(store, service("web", selector=WEB))
    for i in range(150):
        put(store, app_pod(f"p{i:03}"))
        store.put(pod_status_key(app_pod(f"p{i:03}")), running(f"10.244.1.{i + 2}"))
    converge(store)
    assert reconcile(store) == [], "an unchanged pass writes nothing"
    before = slices(store)
    full = next(n for n, sl in before.items() if len(sl["endpoints"]) == 100)
    # A new pod sorting first must not shuffle the full slice: it joins the one with room.
    put(store, app_pod("a-first"))
    store.put(pod_status_key(app_pod("a-first")), running("10.244.2.2"))
    applied = reconcile(store)
    assert len(applied) == 1 and isinstance(applied[0], Update)
    assert slices(store)[full] == before[full]
    # A pod turning unready rewrites only its own slice.
    store.put(pod_status_key(app_pod("p000")), running("10.244.1.2", ready=False))
    applied = reconcile(store)
    assert [a.key.rsplit("/", 1)[1] for a in applied] == [full]


def test_deleted_service_and_removed_selector_lose_their_slices(store):
    key = put(store, service("web", selector=WEB))
    put(store, service("api", selector={"app": "api"}))
    for name, app in (("w", "web"), ("a", "api")):
        put(store, app_pod(name, app=app))
        store.put(pod_status_key(app_pod(name)), running("10.244.1.2"))
    converge(store)
    assert len(slices(store)) == 2
    store.delete(key)
    applied = reconcile(store)
    assert [type(a) for a in applied if "endpointslices" in a.key] == [Delete]
    assert [sl["metadata"]["labels"][SERVICE_NAME_LABEL] for sl in slices(store).values()] \
        == ["api"]
    put(store, service("api"))  # selector removed: the controller stops managing it
    converge(store)
    assert slices(store) == {}


def test_user_managed_slices_are_left_alone(store):
    put(store, service("ext"))
    user = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "ext-1", "namespace": "default",
                         "labels": {SERVICE_NAME_LABEL: "ext"}},
            "addressType": "IPv4", "endpoints": [{"addresses": ["192.0.2.1"]}],
            "ports": [{"name": "http", "port": 80}]}
    put(store, user)
    converge(store)
    assert slices(store)["ext-1"]["endpoints"] == user["endpoints"]


def test_recreated_service_gets_its_slices_owner_updated(store):
    put(store, service("web", selector=WEB))
    put(store, app_pod("w"))
    store.put(pod_status_key(app_pod("w")), running("10.244.1.2"))
    converge(store)
    new = service("web", selector=WEB)
    store.delete(spec_key("Service", "default", "web"))
    put(store, new)
    converge(store)
    (sl,) = slices(store).values()
    assert sl["metadata"]["ownerReferences"][0]["uid"] == new["metadata"]["uid"]


def test_services_and_pods_converge_end_to_end(store, agents):
    put(store, deployment("web", replicas=3))
    put(store, service("web", selector=WEB, type="NodePort"))
    converge(store, agents)
    assert slices(store) == {}, "no pod has an IP yet"
    for i, name in enumerate(sorted(pods(store))):
        key = pod_status_key(pods(store)[name])
        store.put(key, {**store.get(key).value, "podIP": f"10.244.1.{i + 2}"})
    converge(store, agents)
    (sl,) = slices(store).values()
    assert len(sl["endpoints"]) == 3 and all(ep["conditions"]["ready"] for ep in sl["endpoints"])
    assert reconcile(store) == []
