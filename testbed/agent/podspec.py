"""Pure translations of a Pod spec into what the agent runs: argv, env, DNS and hosts files."""

from __future__ import annotations

import shlex
import sys
from ipaddress import IPv4Network

AGNHOST_IMAGE = "registry.k8s.io/e2e-test-images/agnhost"
PAUSE_IMAGES = ("registry.k8s.io/pause", "k8s.gcr.io/pause")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class UnsupportedContainer(Exception):
    """A container this testbed cannot run; the message says what to change."""


def _image_name(image: str) -> str:
    return image.split("@", 1)[0].rsplit(":", 1)[0] if ":" in image.split("/")[-1] else image


def container_argv(container: dict, python: str = sys.executable) -> list[str]:
    """The process to start for a container (agnhost netexec runs the built-in server)."""
    image = _image_name(container.get("image", ""))
    command = list(container.get("command") or [])
    args = [str(a) for a in container.get("args") or []]
    if command:
        return [str(c) for c in command] + args
    if image == AGNHOST_IMAGE:
        sub = args[0] if args else "pause"
        if sub == "netexec":
            return [python, "-m", "testbed.workloads.netexec", *args[1:]]
        if sub == "pause":
            return ["sleep", "infinity"]
        raise UnsupportedContainer(
            f"container {container.get('name')}: agnhost subcommand {sub!r} is not built in "
            "(built in: netexec, pause)"
        )
    if image in PAUSE_IMAGES:
        return ["sleep", "infinity"]
    if args:
        return args
    raise UnsupportedContainer(
        f"container {container.get('name')}: image {container.get('image')!r} has no built-in "
        "entrypoint here; set `command` (it runs on the node's filesystem)"
    )


def field_value(path: str, pod: dict, pod_ip: str, host_ip: str) -> str:
    meta = pod.get("metadata", {})
    values = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": pod.get("spec", {}).get("nodeName", ""),
        "spec.serviceAccountName": pod.get("spec", {}).get("serviceAccountName", "default"),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
    }
    return values.get(path, "")


def container_env(container: dict, pod: dict, pod_ip: str, host_ip: str) -> dict[str, str]:
    """Environment of a container process: PATH/HOSTNAME plus `env` (value and fieldRef)."""
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": pod_hostname(pod), "HOME": "/root",
           "PYTHONUNBUFFERED": "1"}
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif ref := (item.get("valueFrom") or {}).get("fieldRef"):
            env[item["name"]] = field_value(ref.get("fieldPath", ""), pod, pod_ip, host_ip)
    return env


def pod_hostname(pod: dict) -> str:
    return pod.get("spec", {}).get("hostname") or pod["metadata"]["name"]


def wrap_in_sandbox(argv: list[str], netns: str | None, hostname: str,
                    etc_dir: str | None = None) -> list[str]:
    """Run argv in the pod's network namespace with its own hostname (a UTS namespace).

    hostNetwork pods (no netns) keep the node's network and hostname but get their own
    resolv.conf, bind-mounted in a private mount namespace as kubelet does.
    """
    if netns is None:
        if etc_dir is None:
            return argv
        mount = f'mount --bind {etc_dir}/resolv.conf /etc/resolv.conf && exec "$@"'
        return ["unshare", "--mount", "--propagation", "private", "--",
                "sh", "-c", mount, "sh", *argv]
    set_name = 'hostname "$0" && exec "$@"'
    return ["ip", "netns", "exec", netns, "unshare", "--uts", "--",
            "sh", "-c", set_name, hostname, *argv]


def resolv_conf(pod: dict, config: dict, node_resolv: str) -> str:
    """/etc/resolv.conf for the pod by its dnsPolicy, merged with dnsConfig as Kubernetes does."""
    spec = pod.get("spec", {})
    net = config["networking"]
    domain = net.get("dnsDomain", "cluster.local")
    ns = pod["metadata"].get("namespace", "default")
    policy = spec.get("dnsPolicy", "ClusterFirst")
    cluster_dns = str(IPv4Network(net["serviceSubnet"]).network_address + 10)
    cluster = {
        "nameservers": [cluster_dns],
        "searches": [f"{ns}.svc.{domain}", f"svc.{domain}", domain],
        "options": [("ndots", "5")],
    }
    node = _parse_resolv(node_resolv)
    if policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst"
                                               and not spec.get("hostNetwork")):
        base = cluster
    elif policy == "None":
        base = {"nameservers": [], "searches": [], "options": []}
    else:  # Default, or ClusterFirst on a hostNetwork pod: the node's resolver config
        base = node
    extra = spec.get("dnsConfig") or {}
    nameservers = _dedupe(base["nameservers"] + list(extra.get("nameservers") or []))[:3]
    searches = _dedupe(base["searches"] + list(extra.get("searches") or []))[:32]
    options = dict(base["options"])
    for opt in extra.get("options") or []:
        options[opt["name"]] = opt.get("value")
    lines = [f"nameserver {ip}" for ip in nameservers]
    if searches:
        lines.append("search " + " ".join(searches))
    if options:
        lines.append("options " + " ".join(k if v is None else f"{k}:{v}"
                                           for k, v in options.items()))
    return "\n".join(lines) + "\n"


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _parse_resolv(text: str) -> dict:
    out: dict = {"nameservers": [], "searches": [], "options": []}
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith(("#", ";")):
            continue
        if words[0] == "nameserver" and len(words) > 1:
            out["nameservers"].append(words[1])
        elif words[0] in ("search", "domain"):
            out["searches"] = words[1:]
        elif words[0] == "options":
            for opt in words[1:]:
                key, _, value = opt.partition(":")
                out["options"].append((key, value or None))
    return out


def hosts_file(pod: dict, pod_ip: str, config: dict) -> str:
    """/etc/hosts with the pod's own FQDN when hostname/subdomain are set."""
    spec = pod.get("spec", {})
    name = pod_hostname(pod)
    ns = pod["metadata"].get("namespace", "default")
    domain = config["networking"].get("dnsDomain", "cluster.local")
    names = [name]
    if spec.get("subdomain"):
        names.insert(0, f"{name}.{spec['subdomain']}.{ns}.svc.{domain}")
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             f"{pod_ip}\t{' '.join(names)}"]
    for alias in spec.get("hostAliases") or []:
        lines.append(f"{alias['ip']}\t{' '.join(alias.get('hostnames', []))}")
    return "\n".join(lines) + "\n"


def describe_argv(argv: list[str]) -> str:
    return shlex.join(argv)
