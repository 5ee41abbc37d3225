"""The ``testbed-cni`` command handlers (ADD, DEL, CHECK, STATUS, GC, VERSION).

Repeated ADD policy (error, per spec): the spec forbids ADD twice for one attachment and
says an ADD must fail when the interface already exists, so an ADD whose host veth is
present fails with code 100 (``ATTACHMENT_EXISTS``) and changes nothing. If only an
IPAM reservation survived (the netns vanished without a DEL), the ADD reserves a fresh
address (ADD never reads reservation owners, to stay O(listdir)); DEL releases *every*
address held by the attachment, so nothing leaks past the DEL.

ADD is transactional: if anything fails after the address was reserved, the host veth
(if created) is deleted and a newly reserved address is released.
"""

from __future__ import annotations

import os
import sys

from testbed.cni import ip4, ipam, jsonlite, netops, result
from testbed.cni.config import SUPPORTED_VERSIONS, NetConf, PluginEnv, version_tuple
from testbed.cni.errors import (
    ATTACHMENT_EXISTS,
    INCOMPATIBLE_VERSION,
    INTERNAL,
    INVALID_CONFIG,
    NOT_AVAILABLE,
    NOT_AVAILABLE_LIMITED,
    UNKNOWN_CONTAINER,
    CniError,
)

DEFAULT_DST = (0, 0)


def _require(conf: NetConf, minimum: str, command: str) -> None:
    if version_tuple(conf.cni_version) < version_tuple(minimum):
        raise CniError(
            INCOMPATIBLE_VERSION,
            f"config version does not allow {command}",
            f"{command} needs cniVersion >= {minimum}, got {conf.cni_version}",
        )


def store_for(conf: NetConf) -> ipam.FileIpamStore:
    """The on-disk IPAM store of a network."""
    return ipam.FileIpamStore(conf.data_dir, conf.name)


def range_for(conf: NetConf) -> ipam.IpRange:
    """The allocation range of a network."""
    return ipam.IpRange(conf.network, conf.prefix, conf.range_start, conf.range_end, conf.gateway)


def effective_routes(conf: NetConf) -> list[tuple[int, int, int | None]]:
    """Configured routes, with a default route (via the gateway) always present."""
    routes = list(conf.routes)
    if not any((dst, plen) == DEFAULT_DST for dst, plen, _ in routes):
        routes.insert(0, (0, 0, None))
    return routes


def cmd_version(stdin_version: str | None) -> dict:
    """VERSION result."""
    return {
        "cniVersion": stdin_version or SUPPORTED_VERSIONS[-1],
        "supportedVersions": list(SUPPORTED_VERSIONS),
    }


def _ensure_bridge(conf: NetConf, store: ipam.FileIpamStore) -> None:
    if netops.link_exists(conf.bridge):
        return
    with store.lock():  # two first ADDs on a node must not both try to create it
        if not netops.link_exists(conf.bridge):
            mac = ip4.mac_for_ip(conf.gateway)
            netops.run_batch(
                netops.bridge_create_cmds(conf.bridge, conf.mtu, mac),
                what=f"creating bridge {conf.bridge}",
            )


def cmd_add(env: PluginEnv, conf: NetConf) -> dict:
    """Attach the container: veth pair, bridge port, address, routes; return the result."""
    host_if = netops.host_veth_name(env.container_id, env.ifname)
    if netops.link_exists(host_if):
        raise CniError(
            ATTACHMENT_EXISTS,
            f"interface {host_if} already exists",
            f"attachment {env.container_id}/{env.ifname} was already added",
        )
    if not os.path.exists(env.netns):
        raise CniError(UNKNOWN_CONTAINER, "network namespace does not exist", env.netns)
    store = store_for(conf)
    ip, newly = ipam.assign(store, range_for(conf), env.container_id, env.ifname)
    gateway = ip4.format_ip(conf.gateway)
    routes = effective_routes(conf)
    cmac = ip4.mac_for_ip(ip)
    address = ip4.format_cidr(ip, conf.prefix)
    inside = None
    try:
        _ensure_bridge(conf, store)
        # Start the netns-side `ip` now so its exec overlaps the host-side batch.
        inside = netops.Batch(env.netns)
        gw_cidr = ip4.format_cidr(conf.gateway, conf.prefix) if conf.is_gateway else None
        netops.run_batch(
            netops.bridge_ensure_cmds(conf.bridge, conf.mtu, gw_cidr)
            + netops.veth_cmds(
                host_if, env.ifname, conf.mtu, cmac, env.netns, conf.bridge, conf.hairpin
            ),
            what="host-side setup",
        )
        batch, inside = inside, None
        batch.run(
            netops.container_cmds(
                env.ifname,
                address,
                [
                    (ip4.format_cidr(dst, plen), ip4.format_ip(gw) if gw else gateway)
                    for dst, plen, gw in routes
                ],
            ),
            what="container-side setup",
        )
        netops.ensure_ip_forward()
    except BaseException:
        if inside is not None:
            _quietly(inside.run, [])
        _rollback(host_if, store, ip, newly, env)
        raise
    v = conf.cni_version
    interfaces = [
        result.interface(v, conf.bridge, netops.read_mac(conf.bridge)),
        result.interface(v, host_if, netops.read_mac(host_if)),
        result.interface(v, env.ifname, cmac, sandbox=env.netns, mtu=conf.mtu),
    ]
    ips = [result.ip_config(v, address, gateway, 2)]
    rts = [
        result.route(ip4.format_cidr(d, p), ip4.format_ip(g) if g else None) for d, p, g in routes
    ]
    return result.build(v, interfaces, ips, rts, result.dns(conf.dns), conf.prev_result)


def _quietly(fn, *args: object) -> None:
    try:
        fn(*args)
    except Exception as exc:  # keep the original error
        print(f"testbed-cni: cleanup step failed: {exc}", file=sys.stderr)


def _rollback(
    host_if: str, store: ipam.FileIpamStore, ip: int, newly: bool, env: PluginEnv
) -> None:
    if netops.link_exists(host_if):
        _quietly(netops.run_batch, netops.delete_cmds([host_if]), None, False, "rollback")
    if newly:
        _quietly(ipam.release_ip, store, ip, env.container_id, env.ifname)


def cmd_del(env: PluginEnv, conf: NetConf) -> None:
    """Detach: delete the host veth (if present) then release the address; idempotent."""
    host_if = netops.host_veth_name(env.container_id, env.ifname)
    if netops.link_exists(host_if):
        try:
            netops.run_batch(netops.delete_cmds([host_if]), what=f"deleting {host_if}")
        except netops.NetOpsError:
            if netops.link_exists(host_if):  # not a concurrent removal: a real failure
                raise
    ipam.release(store_for(conf), env.container_id, env.ifname)


def _fail(msg: str, details: str = "") -> CniError:
    return CniError(INTERNAL, msg, details)


def cmd_check(env: PluginEnv, conf: NetConf) -> None:
    """Verify the attachment described by ``prevResult`` is intact; raise otherwise."""
    _require(conf, "0.4.0", "CHECK")
    if not conf.prev_result:
        raise CniError(INVALID_CONFIG, "prevResult is required for CHECK")
    try:
        iface, ips = result.find_attachment(conf.prev_result, env.ifname, env.netns)
    except KeyError as exc:
        raise _fail("prevResult does not describe this attachment", str(exc)) from None
    host_if = netops.host_veth_name(env.container_id, env.ifname)
    if not netops.link_exists(host_if):
        raise _fail(f"host interface {host_if} is missing")
    if netops.link_master(host_if) != conf.bridge:
        raise _fail(f"host interface {host_if} is not attached to {conf.bridge}")
    store = store_for(conf)
    for ipc in ips:
        addr = ipc["address"].split("/")[0]
        if store.owner(ip4.parse_ip(addr)) != (env.container_id, env.ifname):
            raise _fail(f"IP reservation for {addr} is missing")
    docs = jsonlite.loads_many(
        netops.run_batch(
            netops.check_cmds(env.ifname), netns_path=env.netns, json=True, what="inspecting netns"
        )
    )
    links = docs[0] if docs else []
    if not links:
        raise _fail(f"interface {env.ifname} missing in {env.netns}")
    link = links[0]
    if iface.get("mac") and link.get("address", "").lower() != iface["mac"].lower():
        raise _fail(f"{env.ifname} has MAC {link.get('address')}, expected {iface['mac']}")
    if "UP" not in link.get("flags", []):
        raise _fail(f"{env.ifname} is down")
    have = {
        f"{a['local']}/{a['prefixlen']}"
        for a in link.get("addr_info", [])
        if a.get("family") == "inet"
    }
    for ipc in ips:
        if ipc["address"] not in have:
            raise _fail(f"{env.ifname} lacks address {ipc['address']}")
    via = next(gw or conf.gateway for d, p, gw in effective_routes(conf) if (d, p) == DEFAULT_DST)
    routes = {(r.get("dst"), r.get("gateway")) for r in (docs[1] if len(docs) > 1 else [])}
    if ("default", ip4.format_ip(via)) not in routes:
        raise _fail(f"default route via {ip4.format_ip(via)} missing in {env.netns}")


def cmd_status(conf: NetConf) -> None:
    """Ready if the IPAM store is writable and has free addresses (else 50; 51 when the
    bridge is gone while addresses are in use)."""
    _require(conf, "1.1.0", "STATUS")
    store = store_for(conf)
    if not store.writable():
        raise CniError(NOT_AVAILABLE, "IPAM store is not writable", store.dir)
    used = store.reserved()
    if used and not netops.link_exists(conf.bridge):
        raise CniError(
            NOT_AVAILABLE_LIMITED,
            f"bridge {conf.bridge} is missing",
            f"{len(used)} addresses in use",
        )
    if range_for(conf).free_count(used) <= 0:
        raise CniError(NOT_AVAILABLE, "no IP addresses available", conf.subnet)


def cmd_gc(conf: NetConf) -> None:
    """Release reservations and delete our bridge's veths not in the valid attachments.

    Without ``cni.dev/valid-attachments`` nothing is collected (never guess).
    """
    _require(conf, "1.1.0", "GC")
    if conf.valid_attachments is None:
        return
    valid = set(conf.valid_attachments)
    errors = []
    try:
        ipam.gc(store_for(conf), valid)
    except Exception as exc:  # keep going: delete what we can, report at the end
        errors.append(f"IPAM: {exc}")
    keep = {netops.host_veth_name(cid, ifname) for cid, ifname in valid}
    stray = [
        p
        for p in netops.bridge_ports(conf.bridge)
        if p.startswith("veth") and len(p) == 12 and p not in keep
    ]
    if stray:
        try:
            netops.run_batch(netops.delete_cmds(stray), what="deleting stray veths", force=True)
        except CniError as exc:
            errors.append(f"veths: {exc}")
    if errors:
        raise CniError(INTERNAL, "GC incomplete", "; ".join(errors))
