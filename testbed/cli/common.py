"""Shared CLI plumbing: finding the testbed, its store, printing errors in one line."""

from __future__ import annotations

import functools
import os
import sys

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)
DEFAULT_NAME_ENV = "TESTBED_NAME"


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def get_runtime():
    from testbed.runtime.docker_runtime import DockerRuntime

    return DockerRuntime()


def resolve_name(runtime, name: str | None) -> str:
    """--name, else $TESTBED_NAME, else the only running testbed, else `default`."""
    from testbed.cluster.state import testbed_names

    if name:
        return name
    if os.environ.get(DEFAULT_NAME_ENV):
        return os.environ[DEFAULT_NAME_ENV]
    names = testbed_names(runtime)
    if len(names) == 1:
        return names[0]
    if "default" in names or not names:
        return "default"
    fail(f"several testbeds are running ({', '.join(names)}); pass --name")
    return ""


def store_for(ip: str):
    from testbed.store.etcd import EtcdStore

    return EtcdStore(ip, 2379)


def open_testbed(name: str | None):
    """(runtime, ref, store) for a running testbed, or a one-line error."""
    from testbed.cluster.state import require_testbed

    runtime = get_runtime()
    ref = require_testbed(runtime, resolve_name(runtime, name))
    return runtime, ref, store_for(ref.control_plane.ipv4_address)


def one_line_errors(fn):
    """Turn the testbed's own exception types into one-line messages and exit codes."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from testbed.cluster.ready import NotReady
        from testbed.cluster.state import NotFound
        from testbed.cluster.up import UpConflict
        from testbed.runtime.base import CommandFailed, RuntimeFailure
        from testbed.topology import TopologyError

        try:
            return fn(*args, **kwargs)
        except TopologyError as exc:
            for problem in exc.problems:
                err_console.print(f"[red]error:[/red] {problem}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except (NotFound, UpConflict, RuntimeFailure, CommandFailed, NotReady) as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            err_console.print("interrupted")
            sys.exit(130)

    return wrapper
