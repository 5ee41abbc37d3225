"""Start-up shared by every node process: logging, the store, and the cluster config."""

from __future__ import annotations

import logging
import os
import time

from testbed.store.keys import CONFIG_KEY


def connect(name: str, wait_config: bool = True):
    """(store, config) once etcd answers and `up` has written the config (config may be None
    when `wait_config` is False and it is not there yet)."""
    from testbed.store.etcd import EtcdStore

    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name} %(message)s")
    store = EtcdStore.from_endpoint(os.environ["TESTBED_STORE"])
    store.wait_ready(timeout=300)
    while True:
        kv = store.get(CONFIG_KEY)
        if kv is not None or not wait_config:
            return store, (kv.value if kv else None)
        time.sleep(0.2)
