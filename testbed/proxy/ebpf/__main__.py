"""`python3 -m testbed.proxy.ebpf dump|status|flush|build` inside a node.

Uses $TESTBED_NAME and $TESTBED_NODE (set in every node container) to find the pins.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Dump the maps, report availability/canary, remove everything, or compile objects."""
    parser = argparse.ArgumentParser(prog="python3 -m testbed.proxy.ebpf", description=__doc__)
    parser.add_argument("command", choices=("dump", "status", "flush", "build"))
    parser.add_argument("--json", action="store_true", help="dump as JSON")
    parser.add_argument("--uplink", default="eth0")
    args = parser.parse_args(argv)
    if args.command == "build":
        from testbed.proxy.ebpf.build import main as build_main

        return build_main([])
    from testbed.proxy.ebpf.backend import EbpfBackend

    backend = EbpfBackend(uplink=args.uplink)
    if args.command == "dump":
        print(backend.dump(as_json=args.json))
    elif args.command == "status":
        avail = backend.available()
        print(f"available: {avail.ok} {avail.reason}".rstrip())
        print(f"pins: {backend.paths.root}  present: {backend.rules_present()}")
    else:
        backend.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
