"""Objects every testbed runs besides the user's manifests: cluster DNS (kube-dns)."""

from __future__ import annotations

from ipaddress import IPv4Network

DNS_LABELS = {"k8s-app": "kube-dns"}
DNS_METRICS_PORT = 9153


def dns_service_ip(config: dict) -> str:
    """`<serviceSubnet>.10`, the kube-dns convention pods' resolv.conf points at."""
    return str(IPv4Network(config["networking"]["serviceSubnet"]).network_address + 10)


def dns_upstream(config: dict) -> str | None:
    """The topology's dnsUpstream, else the first external host (it serves a test zone)."""
    upstream = config["networking"].get("dnsUpstream")
    if upstream:
        return str(upstream)
    hosts = config.get("externalHosts") or []
    return hosts[0]["ip"] if hosts else None


def system_objects(config: dict) -> list[dict]:
    """The kube-dns Deployment (2 replicas, one per node) and Service (pure)."""
    net = config["networking"]
    store_ip = next(n["ip"] for n in config["nodes"] if n["role"] == "control-plane")
    command = ["python3", "-m", "testbed.dns", "--store", f"{store_ip}:2379",
               "--domain", net.get("dnsDomain", "cluster.local"), "--port", "53",
               "--metrics-port", str(DNS_METRICS_PORT)]
    upstream = dns_upstream(config)
    if upstream:
        command += ["--upstream", upstream]
    replicas = min(2, len(config["nodes"]))
    container = {
        "name": "dns", "image": "testbed/dns", "command": command,
        "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                  {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                  {"name": "metrics", "containerPort": DNS_METRICS_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": DNS_METRICS_PORT},
                           "periodSeconds": 1},
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": "kube-system", "labels": DNS_LABELS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": DNS_LABELS},
            "template": {"metadata": {"labels": DNS_LABELS}, "spec": {
                "containers": [container],
                "dnsPolicy": "Default",
                "tolerations": [{"key": "node-role.kubernetes.io/control-plane",
                                 "operator": "Exists", "effect": "NoSchedule"}],
                "affinity": {"podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [{
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": DNS_LABELS}}]}},
            }},
        },
    }
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": DNS_LABELS},
        "spec": {"selector": DNS_LABELS, "clusterIP": dns_service_ip(config), "ports": [
            {"name": "dns", "port": 53, "targetPort": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "targetPort": 53, "protocol": "TCP"},
            {"name": "metrics", "port": DNS_METRICS_PORT, "targetPort": DNS_METRICS_PORT,
             "protocol": "TCP"}]},
    }
    return [deployment, service]
