"""Pure parsing/validation of the plugin's environment and network configuration.

Everything here maps bad input onto the spec's well-known error codes via
:class:`~testbed.cni.errors.CniError`: missing/invalid env vars -> 4, undecodable
config -> 6, invalid config -> 7, unsupported version -> 1, IPv6 subnet -> 2.
"""

from __future__ import annotations

from testbed.cni import ip4, jsonlite
from testbed.cni.errors import (
    DECODE_FAILURE,
    INCOMPATIBLE_VERSION,
    INVALID_CONFIG,
    INVALID_ENV,
    UNSUPPORTED_FIELD,
    CniError,
)

SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST_VERSION = "1.1.0"
COMMANDS = ("ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC")
DEFAULT_BRIDGE = "tb0"
DEFAULT_MTU = 1500
DEFAULT_DATA_DIR = "/var/lib/cni/testbed"

# Which env vars each command needs (libcni skel's table; STATUS keeps CNI_PATH optional
# as the spec says).
_REQUIRED = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"),
    "GC": ("CNI_PATH",),
    "STATUS": (),
    "VERSION": (),
}


def version_tuple(version: str) -> tuple[int, ...]:
    """``"1.0.0"`` -> ``(1, 0, 0)``; raises ValueError for non-semver input."""
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts):
        raise ValueError(f"invalid version {version!r}")
    return tuple(int(p) for p in parts)


def valid_name(name: object) -> bool:
    """CNI container-id / network-name rule: ``[a-zA-Z0-9][a-zA-Z0-9_.-]*``."""
    if not isinstance(name, str) or not name or not name.isascii():
        return False
    return name[0].isalnum() and all(c.isalnum() or c in "_.-" for c in name)


def valid_ifname(name: object) -> bool:
    """Linux interface name rule: 1-15 chars, not ``.``/``..``, no ``/``, ``:``, spaces."""
    if not isinstance(name, str) or not 0 < len(name) <= 15 or name in (".", ".."):
        return False
    return not any(c in "/:" or c.isspace() for c in name)


class PluginEnv:
    """The CNI_* parameters of one plugin invocation."""

    __slots__ = ("command", "container_id", "netns", "ifname", "args", "path")

    def __init__(
        self,
        command: str,
        container_id: str = "",
        netns: str = "",
        ifname: str = "",
        args: str = "",
        path: str = "",
    ) -> None:
        self.command = command
        self.container_id = container_id
        self.netns = netns
        self.ifname = ifname
        self.args = args
        self.path = path


def parse_env(environ: dict) -> PluginEnv:
    """Validate the CNI_* variables for the requested command (errors: code 4)."""
    command = environ.get("CNI_COMMAND", "")
    if not command:
        raise CniError(INVALID_ENV, "required env variables [CNI_COMMAND] missing")
    if command not in _REQUIRED:
        raise CniError(INVALID_ENV, f"unknown CNI_COMMAND: {command}", "CNI_COMMAND")
    missing = [name for name in _REQUIRED[command] if not environ.get(name)]
    if missing:
        raise CniError(INVALID_ENV, f"required env variables [{','.join(missing)}] missing")
    env = PluginEnv(
        command,
        container_id=environ.get("CNI_CONTAINERID", ""),
        netns=environ.get("CNI_NETNS", ""),
        ifname=environ.get("CNI_IFNAME", ""),
        args=environ.get("CNI_ARGS", ""),
        path=environ.get("CNI_PATH", ""),
    )
    if "CNI_CONTAINERID" in _REQUIRED[command] and not valid_name(env.container_id):
        raise CniError(INVALID_ENV, "invalid characters in CNI_CONTAINERID", env.container_id)
    if "CNI_IFNAME" in _REQUIRED[command] and not valid_ifname(env.ifname):
        raise CniError(INVALID_ENV, "invalid interface name in CNI_IFNAME", env.ifname)
    return env


class NetConf:
    """Validated plugin configuration (addresses are ints, see :mod:`testbed.cni.ip4`)."""

    __slots__ = (
        "cni_version",
        "name",
        "type",
        "bridge",
        "mtu",
        "hairpin",
        "is_gateway",
        "network",
        "prefix",
        "gateway",
        "range_start",
        "range_end",
        "data_dir",
        "routes",
        "dns",
        "prev_result",
        "valid_attachments",
        "raw",
    )

    def __init__(self, **fields: object) -> None:
        for key in self.__slots__:
            setattr(self, key, fields[key])

    @property
    def subnet(self) -> str:
        """The subnet as CIDR text."""
        return ip4.format_cidr(self.network, self.prefix)


def decode(data: bytes | str) -> dict:
    """Decode stdin into a JSON object (errors: code 6)."""
    try:
        obj = jsonlite.loads(data)
    except jsonlite.JsonError as exc:
        raise CniError(DECODE_FAILURE, "error decoding network config", str(exc)) from None
    if not isinstance(obj, dict):
        raise CniError(DECODE_FAILURE, "network config must be a JSON object")
    return obj


def check_version(raw: dict) -> str:
    """Return the config's cniVersion if supported (errors: 1, or 7 if not a string)."""
    version = raw.get("cniVersion", "")
    if not isinstance(version, str):
        raise CniError(INVALID_CONFIG, "cniVersion must be a string", repr(version))
    if version not in SUPPORTED_VERSIONS:
        raise CniError(
            INCOMPATIBLE_VERSION,
            "incompatible CNI versions",
            f"config is {version or '(none)'!r}, plugin supports {list(SUPPORTED_VERSIONS)}",
        )
    return version


def _bad(msg: str, details: object = "") -> CniError:
    return CniError(INVALID_CONFIG, msg, details if isinstance(details, str) else repr(details))


def _typed(obj: dict, key: str, kind: type | tuple, default: object, where: str = "") -> object:
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _bad(f"{where}{key} has the wrong type", value)
    return value


def _addr(obj: dict, key: str, default: int) -> int:
    value = _typed(obj, key, str, None, "ipam.")
    if value is None:
        return default
    if ":" in value:
        raise CniError(UNSUPPORTED_FIELD, f"unsupported field ipam.{key}={value} (IPv4 only)")
    try:
        return ip4.parse_ip(value)
    except ValueError as exc:
        raise _bad(f"invalid ipam.{key}", str(exc)) from None


def _routes(ipam: dict) -> tuple:
    routes = _typed(ipam, "routes", list, [{"dst": "0.0.0.0/0"}], "ipam.")
    out = []
    for route in routes:
        if not isinstance(route, dict) or not isinstance(route.get("dst"), str):
            raise _bad("ipam.routes entries need a string 'dst'", route)
        try:
            dst, plen = ip4.parse_cidr(route["dst"], strict=False)
            gw = route.get("gw")
            gw = None if gw is None else ip4.parse_ip(gw)
        except (ValueError, AttributeError) as exc:
            raise _bad("invalid ipam.routes entry", str(exc)) from None
        out.append((dst & ip4.mask(plen), plen, gw))
    return tuple(out)


def _attachments(raw: dict) -> list | None:
    value = raw.get("cni.dev/valid-attachments", raw.get("cni.dev/attachments"))
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(a, dict)
        and isinstance(a.get("containerID"), str)
        and isinstance(a.get("ifname"), str)
        for a in value
    ):
        raise _bad("cni.dev/valid-attachments must be a list of {containerID, ifname}")
    return [(a["containerID"], a["ifname"]) for a in value]


def parse_config(data: bytes | str | dict) -> NetConf:
    """Decode and validate a plugin configuration (as received on stdin)."""
    raw = data if isinstance(data, dict) else decode(data)
    version = check_version(raw)
    name = raw.get("name")
    if not valid_name(name):
        raise _bad("missing or invalid network name", name if name is not None else "")
    ptype = _typed(raw, "type", str, "")
    if not ptype:
        raise _bad("missing plugin type")
    bridge = _typed(raw, "bridge", str, DEFAULT_BRIDGE)
    if not valid_ifname(bridge):
        raise _bad("invalid bridge name", bridge)
    mtu = _typed(raw, "mtu", int, DEFAULT_MTU)
    if not 68 <= mtu <= 65535:
        raise _bad("mtu must be within 68..65535", mtu)
    hairpin = _typed(raw, "hairpinMode", bool, True)
    is_gateway = _typed(raw, "isGateway", bool, True)
    dns = _typed(raw, "dns", dict, {})
    prev = _typed(raw, "prevResult", dict, None)
    ipam = _typed(raw, "ipam", dict, None)
    if not ipam or ipam.get("subnet") is None:
        raise _bad("ipam.subnet is required")
    subnet = _typed(ipam, "subnet", str, "", "ipam.")
    if ":" in subnet:
        raise CniError(UNSUPPORTED_FIELD, f"unsupported field ipam.subnet={subnet} (IPv4 only)")
    try:
        network, prefix = ip4.parse_cidr(subnet, strict=False)
    except ValueError as exc:
        raise _bad("invalid ipam.subnet", str(exc)) from None
    network &= ip4.mask(prefix)
    if prefix > 30:
        raise _bad(f"network {subnet} too small to allocate from")
    bcast = ip4.broadcast(network, prefix)
    gateway = _addr(ipam, "gateway", network + 1)
    start = _addr(ipam, "rangeStart", network + 1)
    end = _addr(ipam, "rangeEnd", bcast - 1)
    for key, value in (("gateway", gateway), ("rangeStart", start), ("rangeEnd", end)):
        if not network < value < bcast:
            raise _bad(f"ipam.{key} {ip4.format_ip(value)} is not a host address of {subnet}")
    if start > end:
        raise _bad("ipam.rangeStart is after ipam.rangeEnd")
    data_dir = _typed(ipam, "dataDir", str, DEFAULT_DATA_DIR, "ipam.")
    if not data_dir.startswith("/"):
        raise _bad("ipam.dataDir must be an absolute path", data_dir)
    return NetConf(
        cni_version=version,
        name=name,
        type=ptype,
        bridge=bridge,
        mtu=mtu,
        hairpin=hairpin,
        is_gateway=is_gateway,
        network=network,
        prefix=prefix,
        gateway=gateway,
        range_start=start,
        range_end=end,
        data_dir=data_dir,
        routes=_routes(ipam),
        dns=dns,
        prev_result=prev,
        valid_attachments=_attachments(raw),
        raw=raw,
    )
