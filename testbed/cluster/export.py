"""Collecting a testbed's logs, node state and objects into a directory (for CI failures)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import yaml

from testbed.cluster.read import merged
from testbed.store.keys import CONFIG_KEY, RESOURCES


def _objects(store) -> dict:
    return {resource: merged(store, resource) for resource in sorted(RESOURCES)}


def export_testbed(runtime, ref, store, directory: Path, commands: dict[str, list[str]]) -> int:
    """Write everything into `directory`; returns the number of files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        config = store.get(CONFIG_KEY)
        (directory / "config.json").write_text(json.dumps(config.value if config else {}, indent=2))
        (directory / "objects.yaml").write_text(yaml.safe_dump(_objects(store), sort_keys=False))
        written += 2
    except Exception as exc:  # the store may be the thing that broke
        (directory / "store-error.txt").write_text(f"{exc}\n")
        written += 1
    for container in ref.containers:
        cdir = directory / container.name
        cdir.mkdir(exist_ok=True)
        (cdir / "container.log").write_text(runtime.logs(container.name))
        written += 1
        if container.status != "running":
            continue
        try:
            data = runtime.copy_from(container.name, "/var/log/testbed")
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                tar.extractall(cdir, filter="data")
                written += sum(1 for m in tar.getmembers() if m.isfile())
        except Exception as exc:
            (cdir / "logs-error.txt").write_text(f"{exc}\n")
        for filename, command in commands.items():
            result = runtime.exec(container.name, command)
            (cdir / filename).write_text(result.stdout + result.stderr)
            written += 1
    return written
