"""Pure construction of version-specific CNI results.

Shapes (as libcni's ``types/040`` and ``types/100`` marshal them):

* 0.3.0, 0.3.1, 0.4.0: ``ips[]`` carry ``"version": "4"``;
* 1.0.0: ``version`` dropped;
* 1.1.0: additionally ``interfaces[].mtu`` where known.

All versions: ``cniVersion``, ``interfaces`` (``name``, ``mac``, ``sandbox`` for container
interfaces), ``ips`` (``address`` CIDR, ``gateway``, ``interface`` index), ``routes``
(``dst``, optional ``gw``) and ``dns`` (``{}`` when unset).
"""

from __future__ import annotations

_DNS_KEYS = ("nameservers", "domain", "search", "options")


def has_ip_version(cni_version: str) -> bool:
    """Whether ``ips[]`` entries carry a ``version`` field in this spec version."""
    return cni_version.startswith("0.")


def interface(
    cni_version: str, name: str, mac: str, sandbox: str = "", mtu: int | None = None
) -> dict:
    """One ``interfaces[]`` entry (``sandbox`` omitted for host interfaces)."""
    out = {"name": name, "mac": mac}
    if mtu is not None and cni_version == "1.1.0":
        out["mtu"] = mtu
    if sandbox:
        out["sandbox"] = sandbox
    return out


def ip_config(cni_version: str, address: str, gateway: str | None, index: int | None) -> dict:
    """One ``ips[]`` entry; ``address`` is CIDR text, ``index`` points into interfaces."""
    out: dict = {}
    if has_ip_version(cni_version):
        out["version"] = "6" if ":" in address else "4"
    if index is not None:
        out["interface"] = index
    out["address"] = address
    if gateway:
        out["gateway"] = gateway
    return out


def route(dst: str, gw: str | None = None) -> dict:
    """One ``routes[]`` entry."""
    return {"dst": dst, "gw": gw} if gw else {"dst": dst}


def dns(conf_dns: dict | None) -> dict:
    """The ``dns`` block: the well-known keys of the config's ``dns``, else ``{}``."""
    if not conf_dns:
        return {}
    return {k: conf_dns[k] for k in _DNS_KEYS if conf_dns.get(k)}


def convert(result: dict, cni_version: str) -> dict:
    """Re-shape a result for ``cni_version`` (adds/drops ``ips[].version``, ``mtu``)."""
    out = dict(result)
    out["cniVersion"] = cni_version
    ips = []
    for ipc in result.get("ips") or []:
        ipc = dict(ipc)
        if has_ip_version(cni_version):
            ipc.setdefault("version", "6" if ":" in ipc.get("address", "") else "4")
        else:
            ipc.pop("version", None)
        ips.append(ipc)
    out["ips"] = ips
    ifaces = []
    for iface in result.get("interfaces") or []:
        iface = dict(iface)
        if cni_version != "1.1.0":
            iface.pop("mtu", None)
        ifaces.append(iface)
    out["interfaces"] = ifaces
    out.setdefault("dns", {})
    return out


def build(
    cni_version: str,
    interfaces: list[dict],
    ips: list[dict],
    routes: list[dict],
    dns_block: dict | None = None,
    prev_result: dict | None = None,
) -> dict:
    """Assemble an ADD result, appending to ``prev_result`` (chained) if given.

    ``ips[].interface`` indexes in ``ips`` refer to ``interfaces`` as passed and are
    shifted past the previous result's interfaces when chaining.
    """
    if prev_result:
        prev = convert(prev_result, cni_version)
        offset = len(prev["interfaces"])
        for ipc in ips:
            if "interface" in ipc:
                ipc["interface"] += offset
        interfaces = prev["interfaces"] + interfaces
        ips = prev["ips"] + ips
        routes = list(prev.get("routes") or []) + routes
        dns_block = dns_block or prev.get("dns") or {}
    out: dict = {"cniVersion": cni_version, "interfaces": interfaces, "ips": ips}
    if routes:
        out["routes"] = routes
    out["dns"] = dns_block or {}
    return out


def find_attachment(result: dict, ifname: str, sandbox: str) -> tuple[dict, list[dict]]:
    """From a (prev)result, the container interface ``ifname`` in ``sandbox`` and its IPs.

    Raises KeyError if the result does not describe that interface.
    """
    ifaces = result.get("interfaces") or []
    for index, iface in enumerate(ifaces):
        if iface.get("name") == ifname and iface.get("sandbox") == sandbox:
            ips = [ipc for ipc in result.get("ips") or [] if ipc.get("interface") == index]
            return iface, ips
    raise KeyError(f"no interface {ifname} in sandbox {sandbox} in prevResult")
