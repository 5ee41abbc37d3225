"""Hypothesis strategies: small random clusters and random (valid) NetworkPolicies."""

from __future__ import annotations

from hypothesis import strategies as st

from testbed.policy import ContainerPort, Pod

NS = ("x", "y")
LABEL_VALUES = {"app": ("a", "b"), "tier": ("web", "db")}
CONTAINER_PORTS = (
    ContainerPort(80, "http"),
    ContainerPort(8080, "http"),
    ContainerPort(81, "metrics"),
    ContainerPort(80, "dns", "UDP"),
)
QUERY_PORTS = (("TCP", 80), ("TCP", 81), ("TCP", 8080), ("UDP", 80))
SUBNET = "10.20.0."
EXTERNAL_IPS = ("10.20.1.9", "192.0.2.5")


@st.composite
def label_maps(draw, max_size: int = 2) -> dict:
    keys = draw(st.lists(st.sampled_from(sorted(LABEL_VALUES)), unique=True, max_size=max_size))
    return {k: draw(st.sampled_from(LABEL_VALUES[k])) for k in keys}


@st.composite
def clusters(draw, min_pods: int = 2, max_pods: int = 5) -> tuple[list[Pod], dict]:
    """``(pods, namespaces)``: pods spread over nodes n1/n2 and namespaces x/y."""
    n = draw(st.integers(min_pods, max_pods))
    pods = []
    for i in range(n):
        ports = tuple(draw(st.lists(st.sampled_from(CONTAINER_PORTS), unique=True,
                                    min_size=1, max_size=3)))
        # a pod cannot have the same name twice with one protocol; keep the first
        seen, uniq = set(), []
        for cp in ports:
            if (cp.name, cp.protocol) not in seen:
                seen.add((cp.name, cp.protocol))
                uniq.append(cp)
        pods.append(Pod(draw(st.sampled_from(NS)), f"p{i}", draw(label_maps()),
                        f"{SUBNET}{10 + i}", draw(st.sampled_from(("n1", "n2"))), tuple(uniq)))
    namespaces = {ns: draw(label_maps()) for ns in NS}
    return pods, namespaces


@st.composite
def selectors(draw) -> dict:
    """Often empty (select all), else one or two requirements."""
    sel: dict = {}
    if draw(st.integers(0, 2)) == 0:
        return sel
    ml = draw(label_maps(max_size=1))
    if ml:
        sel["matchLabels"] = ml
    exprs = []
    for key in draw(st.lists(st.sampled_from(sorted(LABEL_VALUES)), unique=True, max_size=1)):
        op = draw(st.sampled_from(("In", "NotIn", "Exists", "DoesNotExist")))
        e = {"key": key, "operator": op}
        if op in ("In", "NotIn"):
            e["values"] = draw(st.lists(st.sampled_from(LABEL_VALUES[key]), min_size=1,
                                        unique=True))
        exprs.append(e)
    if exprs:
        sel["matchExpressions"] = exprs
    return sel


@st.composite
def peers(draw) -> dict:
    kind = draw(st.sampled_from(("pod", "ns", "both", "ip")))
    if kind == "ip":
        cidr = draw(st.sampled_from(("10.20.0.0/24", "10.20.0.0/28", "10.20.0.8/29",
                                     "10.20.0.12/30", "0.0.0.0/0")))
        block: dict = {"cidr": cidr}
        if draw(st.booleans()) and not cidr.endswith("/30"):
            block["except"] = draw(st.lists(st.sampled_from(
                ("10.20.0.10/31", "10.20.0.12/30", "10.20.0.11/32")), min_size=1, unique=True))
        return {"ipBlock": block}
    out = {}
    if kind in ("pod", "both"):
        out["podSelector"] = draw(selectors())
    if kind in ("ns", "both"):
        out["namespaceSelector"] = draw(selectors())
    return out


PORT_ENTRIES = (
    {"port": 80}, {"port": 81}, {"port": "http"}, {"port": "metrics"},
    {"port": "dns", "protocol": "UDP"}, {"port": 80, "endPort": 81},
    {"port": 8000, "endPort": 8080}, {"protocol": "UDP", "port": 80}, {"protocol": "TCP"},
    {"protocol": "UDP"},
)


@st.composite
def rules(draw, peers_field: str) -> dict:
    rule: dict = {}
    if draw(st.integers(0, 2)):
        rule[peers_field] = draw(st.lists(peers(), max_size=2))
    if draw(st.integers(0, 2)):
        rule["ports"] = draw(st.lists(st.sampled_from(PORT_ENTRIES), max_size=3))
    return rule


@st.composite
def policies(draw, name: str) -> dict:
    spec: dict = {"podSelector": draw(selectors())}
    types = draw(st.sampled_from((None, ["Ingress"], ["Egress"], ["Ingress", "Egress"])))
    if types is not None:
        spec["policyTypes"] = types
    if draw(st.integers(0, 2)):
        spec["ingress"] = draw(st.lists(rules("from"), max_size=2))
    if draw(st.integers(0, 2)):
        spec["egress"] = draw(st.lists(rules("to"), max_size=2))
    return {"metadata": {"namespace": draw(st.sampled_from(NS)), "name": name}, "spec": spec}


@st.composite
def policy_lists(draw, max_size: int = 3) -> list[dict]:
    n = draw(st.integers(1, max_size))
    return [draw(policies(f"pol{i}")) for i in range(n)]
