"""The external host's small daemon: in the `flat` pod network it routes pod subnets to nodes."""

from __future__ import annotations

import logging
import subprocess
import time

from testbed.store.keys import CONFIG_KEY

log = logging.getLogger("hostd")


def flat_routes(config: dict) -> list[str]:
    """`ip -batch` lines: each node's pod /24 via that node (only in the flat pod network)."""
    if config["networking"].get("podNetwork") != "flat":
        return []
    return [f"route replace {n['podCIDR']} via {n['ip']}" for n in config["nodes"]]


def main() -> None:
    from testbed.agent.bootstrap import connect

    store, _ = connect("hostd", wait_config=False)
    while True:
        kv = store.get(CONFIG_KEY)
        if kv is not None:
            lines = flat_routes(kv.value)
            if lines:
                subprocess.run(["ip", "-batch", "-"], input="\n".join(lines) + "\n", text=True,
                               check=False)
        time.sleep(30 if kv is not None else 0.5)


if __name__ == "__main__":
    main()
