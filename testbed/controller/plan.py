"""One full reconcile decision: every controller over one snapshot, scheduler last."""

from __future__ import annotations

import random

from testbed.controller.actions import Action
from testbed.controller.deployment import reconcile_deployments
from testbed.controller.endpointslices import reconcile_endpointslices
from testbed.controller.gc import orphaned_pods, unfinalizable_pods
from testbed.controller.nodes import reconcile_namespaces, reconcile_nodes
from testbed.controller.scheduler import schedule
from testbed.controller.services import reconcile_services
from testbed.controller.snapshot import Snapshot
from testbed.controller.statefulset import reconcile_statefulsets


def plan(snap: Snapshot, rng: random.Random | None = None) -> list[Action]:
    """Every action needed to move the store towards the desired state (pure but for
    ``rng``, which only picks pod-name suffixes). Empty once the cluster has converged.

    The controllers touch disjoint keys (a workload only its own pods, GC only pods whose
    owner is gone or that are terminating; services only Services, their statuses and the
    managed EndpointSlices), so their actions never contradict each other;
    the scheduler runs last so it can bind the pods created in this same pass.
    """
    rng = rng or random.Random()
    actions: list[Action] = []
    actions += reconcile_nodes(snap)
    actions += reconcile_namespaces(snap)
    actions += orphaned_pods(snap)
    actions += unfinalizable_pods(snap)
    actions += reconcile_deployments(snap, rng)
    actions += reconcile_statefulsets(snap)
    actions += reconcile_services(snap)
    actions += reconcile_endpointslices(snap)
    return schedule(snap, actions)
