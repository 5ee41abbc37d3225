"""Object store of the testbed: key layout, Store interface, etcd and in-memory backends.

etcd on the control-plane node is the single source of truth; the controller
and node agents read and write Kubernetes-shaped objects through
:class:`Store`. Typical level-triggered loop::

    items, rev = list_watch(store, keys.prefix("pods"))
    with store.watch(keys.prefix("pods"), rev + 1) as w:
        for event in w:            # raises Compacted/WatchError -> re-list
            ...
"""

from testbed.store import keys
from testbed.store.base import (
    Compacted,
    Conflict,
    Event,
    KeyValue,
    Store,
    StoreError,
    StoreUnavailable,
    Watch,
    WatchError,
    list_then_watch,
    list_watch,
    mutate,
)
from testbed.store.etcd import EtcdStore
from testbed.store.keys import UnknownKind
from testbed.store.memory import MemoryStore

__all__ = [
    "Compacted",
    "Conflict",
    "EtcdStore",
    "Event",
    "KeyValue",
    "MemoryStore",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "UnknownKind",
    "Watch",
    "WatchError",
    "keys",
    "list_then_watch",
    "list_watch",
    "mutate",
]
