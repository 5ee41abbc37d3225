"""Entry point: ``python3 -m testbed.controller`` (run by the control-plane supervisor).

Reads the store endpoint from ``TESTBED_STORE`` (``host:port``) and logs to stdout, which
the supervisor redirects to the controller's log file.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from testbed.store.base import StoreUnavailable


def main() -> None:
    """Connect to the store and run the controller until SIGTERM/SIGINT."""
    from testbed.controller.loop import Controller
    from testbed.store.etcd import EtcdStore

    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    log = logging.getLogger("controller")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    store = EtcdStore.from_endpoint(os.environ.get("TESTBED_STORE", "127.0.0.1:2379"))
    # etcd is started by the same supervisor and may come up after us: wait, don't crash-loop.
    while not stop.is_set():
        try:
            store.wait_ready(timeout=30)
            break
        except StoreUnavailable as exc:
            log.warning("store not ready yet: %s", exc)
    try:
        Controller(store).run(stop)
    finally:
        store.close()


if __name__ == "__main__":
    main()
