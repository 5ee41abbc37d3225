"""Entry point of the ``testbed-cni`` executable (stdin config, CNI_* env, JSON stdout).

Import cost matters here (one exec per CNI call): stdlib only, no ``json``/``re``/
``typing``/``subprocess``/``ipaddress`` on the success path.
"""

from __future__ import annotations

import os
import sys

from testbed.cni import jsonlite
from testbed.cni.config import LATEST_VERSION, decode, parse_config, parse_env
from testbed.cni.errors import INTERNAL, IO_FAILURE, CniError


def _error_version(stdin: bytes) -> str:
    try:
        version = decode(stdin).get("cniVersion")
    except CniError:
        return LATEST_VERSION
    return version if isinstance(version, str) and version else LATEST_VERSION


def run(environ: dict, stdin: bytes) -> tuple[int, str]:
    """Execute one CNI call; return ``(exit status, stdout text)``.

    Errors become the spec's error JSON with a non-zero status.
    """
    from testbed.cni import plugin

    try:
        env = parse_env(environ)
        if env.command == "VERSION":
            try:
                version = decode(stdin).get("cniVersion") if stdin.strip() else None
            except CniError:
                version = None
            ok = version if isinstance(version, str) else None
            return 0, jsonlite.dumps(plugin.cmd_version(ok)) + "\n"
        conf = parse_config(stdin)
        if env.command == "ADD":
            return 0, jsonlite.dumps(plugin.cmd_add(env, conf)) + "\n"
        if env.command == "DEL":
            plugin.cmd_del(env, conf)
        elif env.command == "CHECK":
            plugin.cmd_check(env, conf)
        elif env.command == "STATUS":
            plugin.cmd_status(conf)
        else:
            plugin.cmd_gc(conf)
        return 0, ""
    except CniError as exc:
        err = exc
    except OSError as exc:
        err = CniError(IO_FAILURE, "I/O failure", f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        err = CniError(INTERNAL, "internal error", f"{type(exc).__name__}: {exc}")
    return 1, jsonlite.dumps(err.to_dict(_error_version(stdin))) + "\n"


def main() -> None:
    """Run the plugin as a process: read stdin, write the result/error, exit."""
    try:
        stdin = sys.stdin.buffer.read()
    except OSError as exc:
        err = CniError(IO_FAILURE, "error reading from stdin", str(exc))
        sys.stdout.write(jsonlite.dumps(err.to_dict(LATEST_VERSION)) + "\n")
        sys.exit(1)
    status, out = run(dict(os.environ), stdin)
    if out:
        sys.stdout.write(out)
        sys.stdout.flush()
    if status:
        print(out.strip(), file=sys.stderr)
    sys.exit(status)
