"""The node's service proxy process (kube-proxy's role): watches Services, EndpointSlices and
node heartbeats, programs the configured data-plane backend, announces LoadBalancer IPs.

Full sync at start, then incremental syncs batched on changes; a canary check restores the
rules when someone deletes them. `--flush` removes this node's proxy rules and exits.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import time

from testbed.agent import election
from testbed.agent.follow import Follower
from testbed.agent.metrics import Metrics, serve_metrics
from testbed.agent.watched import WatchedState
from testbed.proxy.tracker import ModelTracker

log = logging.getLogger("proxyd")
WATCHED = ("/registry/services/", "/registry/endpointslices/", "/status/services/",
           "/status/nodes/", "/status/pods/")
BATCH_SECONDS = 0.05
CANARY_SECONDS = 2.0
STALL_SECONDS = 10.0


def udp_backends(model) -> set[tuple[str, int]]:
    """(endpoint IP, port) of every UDP service backend in a model (pure)."""
    if model is None:
        return set()
    return {(e.ip, e.port) for svc in model if svc.protocol == "UDP" for e in svc.endpoints}


def stale_udp_backends(old, new) -> set[tuple[str, int]]:
    """UDP backends in ``old`` that no service port of ``new`` has (pure). Looks only at the
    services that changed, and at the whole model only when one of them lost a backend."""
    if old is None:
        return set()
    from testbed.proxy.model import ProxyModel, changed_services

    keys = changed_services(old, new)
    if not keys:
        return set()
    was = udp_backends(ProxyModel(p for k in keys for p in old.ports_of(k)))
    now = udp_backends(ProxyModel(p for k in keys for p in new.ports_of(k)))
    gone = was - now
    return gone - udp_backends(new) if gone else set()


def clear_stale_udp(gone: set[tuple[str, int]]) -> None:
    """Forget conntrack entries towards removed UDP backends, as kube-proxy does: a UDP client
    reusing its source port would otherwise stay pinned to a dead backend for 30 s+."""
    import subprocess

    for ip, port in sorted(gone):
        subprocess.run(["conntrack", "-D", "-p", "udp", "--reply-src", ip,
                        "--reply-port-src", str(port)], capture_output=True, check=False)


class ProxyDaemon:
    """Level-triggered on a full sync (the model is rebuilt from the whole watched state);
    between full syncs, the model tracker rebuilds only the services events touched."""

    def __init__(self, store, node: str, config: dict, backend, announcer=None) -> None:
        self.store = store
        self.node = node
        self.config = config
        self.backend = backend
        self.announcer = announcer
        self.state = WatchedState(WATCHED)
        self.tracker = ModelTracker(node)
        self.model = None
        self.metrics = Metrics()
        self.dirty_since: float | None = None
        self.last_announce = 0.0

    def ctx(self):
        from testbed.proxy.model import NodeContext

        me = next(n for n in self.config["nodes"] if n["name"] == self.node)
        return NodeContext(node_name=self.node, node_ip=me["ip"],
                           cluster_cidr=self.config["networking"]["podSubnet"],
                           node_ips=frozenset(n["ip"] for n in self.config["nodes"]))

    def sync(self, full: bool = False) -> None:
        from testbed.proxy.base import sync

        start = time.monotonic()
        if full:
            self.tracker.reset()
        model = self.tracker.model(self.state)
        how = sync(self.backend, None if full else self.model, model, self.ctx())
        clear_stale_udp(stale_udp_backends(self.model, model))
        self.model = model
        if how != "unchanged":
            self.metrics.observe("sync_proxy_rules_duration_seconds", time.monotonic() - start)
            if self.dirty_since is not None:
                self.metrics.observe("network_programming_duration_seconds",
                                     time.monotonic() - self.dirty_since)
            self.metrics.set("sync_proxy_rules_last_timestamp_seconds", time.time())
            self.metrics.set("proxy_service_ports", len(model))
        self.dirty_since = None
        self.announce(model)

    def announce(self, model) -> None:
        if self.announcer is None:
            return
        fresh = election.fresh_nodes(self.state["/status/nodes/"], dt.datetime.now(dt.UTC))
        entries = []
        for svc in model:
            ips = list(svc.load_balancer_ips)
            if ips:
                nodes = {e.node for e in svc.endpoints if e.ready and e.node}
                entries.append((ips, svc.external_policy_local, nodes))
        self.announcer.announce(election.announcements(entries, fresh, self.node))

    def on_event(self, event) -> bool:
        """Follow the event; True when it can change the proxy rules (not heartbeats)."""
        prefix = next((p for p in self.state if event.key.startswith(p)), None)
        if prefix is None or prefix in ("/status/nodes/", "/status/pods/"):
            self.state.apply(event)
            return False
        ref = event.key[len(prefix):]
        before = self.state[prefix].get(ref)
        self.state.apply(event)
        self.tracker.note(prefix, ref, before, self.state[prefix].get(ref))
        return True

    def on_event_marking(self, event) -> bool:
        """:meth:`on_event`, noting when the first unsynced change arrived."""
        changed = self.on_event(event)
        if changed and self.dirty_since is None:
            self.dirty_since = time.monotonic()
        return changed

    def tick(self) -> None:
        """Re-announce LoadBalancer IPs about once a second (node freshness changes)."""
        now = time.monotonic()
        if now - self.last_announce > 1.0 and self.model is not None:
            self.last_announce = now
            self.announce(self.model)

    def run(self) -> None:
        """Follow the store forever (see :class:`testbed.agent.follow.Follower`)."""
        Follower(self.store, self.state, self.on_event_marking, self.sync,
                 lambda: rules_present(self.backend), self.tick, name="proxyd",
                 batch_seconds=BATCH_SECONDS, canary_seconds=CANARY_SECONDS,
                 stall_seconds=STALL_SECONDS).run()


def rules_present(backend) -> bool:
    """The canary: are this backend's rules still in the kernel?"""
    import subprocess

    if hasattr(backend, "rules_present"):
        return backend.rules_present()
    cmd = {"iptables": ["iptables", "-w", "-t", "nat", "-S", "KUBE-SERVICES"],
           "nftables": ["nft", "list", "table", "ip", "testbed-proxy"]}.get(backend.name)
    return cmd is None or subprocess.run(cmd, capture_output=True).returncode == 0


def main(argv: list[str] | None = None) -> None:
    from testbed.agent.bootstrap import connect
    from testbed.proxy.base import get_backend

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flush", action="store_true", help="remove this node's proxy rules")
    args = parser.parse_args(argv)
    store, config = connect("proxyd")
    backend = get_backend(config["networking"]["kubeProxyMode"])
    if args.flush:
        backend.cleanup()
        return
    available = backend.available()
    if not available.ok:
        log.error("proxy mode %s is not available here: %s", backend.name, available.reason)
        while True:  # stay up (and say why) rather than crash-loop
            time.sleep(3600)
    from testbed.agent.arp import ArpResponder

    daemon = ProxyDaemon(store, os.environ["TESTBED_NODE"], config, backend, ArpResponder())
    serve_metrics(daemon.metrics, port=10249)
    daemon.run()


if __name__ == "__main__":
    main()
