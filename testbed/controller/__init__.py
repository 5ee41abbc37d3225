"""The controller: kube-controller-manager and kube-scheduler roles of the testbed.

Runs on the control-plane node (``python3 -m testbed.controller``). Each pass reads a
:class:`~testbed.controller.snapshot.Snapshot` of the store, lets pure decision functions
turn it into store actions, and applies them with compare-and-swap:

- :mod:`~testbed.controller.nodes`: Node objects from the config, Namespaces in use;
- :mod:`~testbed.controller.deployment`, :mod:`~testbed.controller.statefulset`: pods;
- :mod:`~testbed.controller.services`: ClusterIPs, NodePorts, LoadBalancer addresses and
  the ``default/kubernetes`` Service; :mod:`~testbed.controller.endpointslices`: the pods
  behind each Service with a selector;
- :mod:`~testbed.controller.gc`: orphaned pods, unfinalisable pods, stale statuses;
- :mod:`~testbed.controller.scheduler`: binds pods to nodes (runs last in a pass);
- :mod:`~testbed.controller.loop`: the level-triggered watch/reconcile loop.

Pod deletion protocol: the controller marks a bound pod (``metadata.deletionTimestamp``);
the agent of ``spec.nodeName`` tears it down, then deletes the spec key (CAS) and the
status key. Unbound pods, or pods bound to a node not in the config, are deleted by the
controller itself.
"""

from testbed.controller.actions import Create, Delete, MarkDeleting, Update, apply_actions
from testbed.controller.loop import Controller
from testbed.controller.plan import plan
from testbed.controller.snapshot import Snapshot

__all__ = [
    "Controller",
    "Create",
    "Delete",
    "MarkDeleting",
    "Snapshot",
    "Update",
    "apply_actions",
    "plan",
]
