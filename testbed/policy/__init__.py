"""NetworkPolicy (networking.k8s.io/v1): a pure oracle and pure enforcement renderers.

* :mod:`~testbed.policy.oracle` -- reference semantics, one flow at a time
  (:class:`Oracle`, :func:`matrix`, :func:`explain`), for tests and ``policy explain``.
* :mod:`~testbed.policy.plan` -- compiles policies into per-node address/port sets.
* :mod:`~testbed.policy.nft` / :mod:`~testbed.policy.iptables` -- render a node's plan as
  one atomic ``nft -f`` script (table ``inet testbed-policy``) or ``iptables-restore
  --noflush`` input (``TESTBED-POL-*`` chains); ``apply(text)`` and ``cleanup()``.

The node agent calls, per reconcile::

    from testbed.policy import Pod, nft
    pods = [Pod.from_k8s(p) for p in all_pods]          # ALL pods: remote ones are peers
    nft.apply(nft.render(pods, {ns: labels, ...}, policy_dicts, node=my_node_name))

and ``nft.cleanup()`` on teardown (same functions in :mod:`testbed.policy.iptables`).

ipBlock: matches any address in ``cidr`` minus ``except``, pod IPs included (the data plane
sees real pod source addresses; upstream leaves this to the implementation).
"""

from testbed.policy.model import (
    SCTP_MESSAGE,
    ContainerPort,
    External,
    Peer,
    Pod,
    PolicyError,
    Unsupported,
    validate,
)
from testbed.policy.oracle import Oracle, Verdict, allowed, explain, matrix
from testbed.policy.plan import NodePlan, compile_node

__all__ = [
    "SCTP_MESSAGE",
    "ContainerPort",
    "External",
    "NodePlan",
    "Oracle",
    "Peer",
    "PolicyError",
    "Pod",
    "Unsupported",
    "Verdict",
    "allowed",
    "compile_node",
    "explain",
    "matrix",
    "validate",
]
