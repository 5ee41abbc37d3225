"""The node's NetworkPolicy process: watches pods, namespaces and policies and enforces the
policies for this node's pods (nftables table `inet testbed-policy`, or `TESTBED-POL-*`
iptables chains in iptables mode; the ebpf mode keeps the nftables renderer).

After each applied sync it writes the IPs of the local pods the rules now cover to READY_FILE;
the agent reports a pod Ready only once its IP is there, so no pod serves traffic before its
policy is in place.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time

from testbed.agent.follow import Follower
from testbed.agent.watched import WatchedState

log = logging.getLogger("policyd")
READY_FILE = "/run/testbed/policy-synced.json"
WATCHED = ("/registry/pods/", "/status/pods/", "/registry/namespaces/",
           "/registry/networkpolicies/")
CANARY_SECONDS = 2.0
STALL_SECONDS = 10.0
RELIST_SECONDS = 30.0


def renderer_for(mode: str):
    """The policy renderer of a proxy mode (iptables mode keeps to iptables)."""
    from testbed.policy import iptables, nft

    return iptables if mode == "iptables" else nft


def policy_inputs(state: dict[str, dict[str, dict]]) -> tuple[list, dict, list]:
    """(pods with an IP, namespace labels, policies) from the watched state (pure)."""
    from testbed.policy import Pod

    statuses = state["/status/pods/"]
    pods = []
    for ref, pod in state["/registry/pods/"].items():
        status = statuses.get(ref) or {}
        if pod.get("spec", {}).get("hostNetwork") or not status.get("podIP"):
            continue
        pods.append(Pod.from_k8s(pod | {"status": status}))
    namespaces = {ref: (ns.get("metadata", {}).get("labels") or {})
                  for ref, ns in state["/registry/namespaces/"].items()}
    policies = list(state["/registry/networkpolicies/"].values())
    return pods, namespaces, policies


class PolicyDaemon:
    """Level-triggered: every sync renders the whole node ruleset; unchanged text is skipped."""

    def __init__(self, store, node: str, config: dict) -> None:
        self.store = store
        self.node = node
        self.renderer = renderer_for(config["networking"]["kubeProxyMode"])
        self.state = WatchedState(WATCHED)
        self.applied: str | None = None

    def render(self) -> tuple[str, list]:
        from testbed.policy import PolicyError, Unsupported

        pods, namespaces, policies = policy_inputs(self.state)
        try:
            return self.renderer.render(pods, namespaces, policies, self.node), pods
        except (Unsupported, PolicyError) as exc:
            # Leave out the policies that cannot be enforced, and say so on each of them.
            good = []
            for pol in policies:
                try:
                    self.renderer.render(pods, namespaces, [pol], self.node)
                    good.append(pol)
                except (Unsupported, PolicyError) as one:
                    self.reject(pol, str(one))
            log.warning("some policies rejected: %s", exc)
            return self.renderer.render(pods, namespaces, good, self.node), pods

    def reject(self, policy: dict, message: str) -> None:
        meta = policy.get("metadata", {})
        self.store.put(f"/status/networkpolicies/{meta.get('namespace')}/{meta.get('name')}",
                       {"conditions": [{"type": "Accepted", "status": "False",
                                        "reason": "Unsupported", "message": message}]})

    def sync(self, force: bool = False) -> None:
        text, pods = self.render()
        local = sorted(p.ip for p in pods if p.node == self.node)
        if force or text != self.applied:
            start = time.monotonic()
            self.renderer.apply(text)
            self.applied = text
            log.info("applied %d bytes for %d local pods, %d policies in %.3fs", len(text),
                     len(local), len(self.state["/registry/networkpolicies/"]),
                     time.monotonic() - start)
        tmp = READY_FILE + ".tmp"
        with open(tmp, "w") as f:
            json.dump(local, f)
        os.replace(tmp, READY_FILE)

    def rules_present(self) -> bool:
        from testbed.policy import iptables

        if self.renderer is iptables:
            cmd = ["iptables", "-w", "-S", iptables.FWD]
        else:
            cmd = ["nft", "list", "table", "inet", "testbed-policy"]
        return subprocess.run(cmd, capture_output=True).returncode == 0


    def run(self) -> None:
        """Follow the store forever, with a periodic re-list (see
        :class:`testbed.agent.follow.Follower`)."""
        os.makedirs(os.path.dirname(READY_FILE), exist_ok=True)
        Follower(self.store, self.state, lambda event: self.state.apply(event) is not None,
                 lambda full: self.sync(force=full), self.rules_present, name="policyd",
                 batch_seconds=0.02, canary_seconds=CANARY_SECONDS,
                 stall_seconds=STALL_SECONDS, relist_seconds=RELIST_SECONDS).run()


def main() -> None:
    from testbed.agent.bootstrap import connect

    store, config = connect("policyd")
    PolicyDaemon(store, os.environ["TESTBED_NODE"], config).run()


if __name__ == "__main__":
    main()
