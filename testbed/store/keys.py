"""Key layout of the testbed store (pure functions, no I/O).

Layout::

    /registry/<resource>/<namespace>/<name>   spec of a namespaced object
    /registry/<resource>/<name>               spec of a cluster-scoped object
    /status/<resource>/<namespace>/<name>     status, written only by its owner
    /status/<resource>/<name>                 status of a cluster-scoped object
    /testbed/config                           testbed configuration

Spec and status live under different keys so that the spec writer (user or
controller) and the status writer (e.g. the node agent) never overwrite each
other's updates.
"""

from __future__ import annotations

from typing import Any

REGISTRY_ROOT = "/registry"
STATUS_ROOT = "/status"
CONFIG_KEY = "/testbed/config"
DEFAULT_NAMESPACE = "default"

#: Kind -> (resource, namespaced)
KINDS: dict[str, tuple[str, bool]] = {
    "Pod": ("pods", True),
    "Deployment": ("deployments", True),
    "StatefulSet": ("statefulsets", True),
    "Service": ("services", True),
    "EndpointSlice": ("endpointslices", True),
    "Namespace": ("namespaces", False),
    "Node": ("nodes", False),
    "NetworkPolicy": ("networkpolicies", True),
    "Ingress": ("ingresses", True),
    "ConfigMap": ("configmaps", True),
    "DaemonSet": ("daemonsets", True),
    "ReplicaSet": ("replicasets", True),
    "Job": ("jobs", True),
}

#: resource -> (Kind, namespaced)
RESOURCES: dict[str, tuple[str, bool]] = {
    res: (kind, namespaced) for kind, (res, namespaced) in KINDS.items()
}


class UnknownKind(ValueError):
    """Raised for a Kind (or resource) that is not in :data:`KINDS`."""

    def __init__(self, kind: str) -> None:
        known = ", ".join(sorted(KINDS))
        super().__init__(f"unknown kind {kind!r}; known kinds: {known}")
        self.kind = kind


def _lookup(kind_or_resource: str) -> tuple[str, bool]:
    """Return (resource, namespaced) for a Kind or a resource name."""
    if kind_or_resource in KINDS:
        return KINDS[kind_or_resource]
    if kind_or_resource in RESOURCES:
        return kind_or_resource, RESOURCES[kind_or_resource][1]
    raise UnknownKind(kind_or_resource)


def resource_for(kind: str) -> str:
    """Return the lowercase plural resource name of ``kind`` (e.g. Pod -> pods)."""
    return _lookup(kind)[0]


def kind_for(resource: str) -> str:
    """Return the Kind of a resource name (e.g. pods -> Pod)."""
    if resource not in RESOURCES:
        raise UnknownKind(resource)
    return RESOURCES[resource][0]


def is_namespaced(kind_or_resource: str) -> bool:
    """True if objects of this Kind/resource live in a namespace."""
    return _lookup(kind_or_resource)[1]


def _check_segment(what: str, value: str) -> str:
    if not value or "/" in value:
        raise ValueError(f"invalid {what} {value!r}: must be non-empty and contain no '/'")
    return value


def _key(root: str, kind_or_resource: str, namespace: str | None, name: str) -> str:
    resource, namespaced = _lookup(kind_or_resource)
    _check_segment("name", name)
    if namespaced:
        ns = _check_segment("namespace", namespace or DEFAULT_NAMESPACE)
        return f"{root}/{resource}/{ns}/{name}"
    return f"{root}/{resource}/{name}"


def spec_key(kind: str, namespace: str | None, name: str) -> str:
    """Key of an object's spec; ``namespace`` is ignored for cluster-scoped kinds.

    A namespaced kind with no namespace goes to ``default`` (as in Kubernetes).
    """
    return _key(REGISTRY_ROOT, kind, namespace, name)


def object_key(obj: dict[str, Any]) -> str:
    """Key of a Kubernetes-shaped object (uses ``kind`` and ``metadata``)."""
    kind = obj.get("kind")
    if not isinstance(kind, str):
        raise UnknownKind(repr(kind))
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if not isinstance(name, str):
        raise ValueError(f"{kind} object has no metadata.name")
    return spec_key(kind, meta.get("namespace"), name)


def status_key(kind: str, namespace: str | None, name: str) -> str:
    """Key of an object's status (written only by the object's owner)."""
    return _key(STATUS_ROOT, kind, namespace, name)


def prefix(resource: str, namespace: str | None = None, *, root: str = REGISTRY_ROOT) -> str:
    """Prefix (ending in ``/``) covering all objects of a resource, optionally in a namespace.

    ``resource`` may also be given as a Kind. ``root`` selects the spec
    (``/registry``, default) or status (``/status``) tree.
    """
    res, namespaced = _lookup(resource)
    if namespace is None:
        return f"{root}/{res}/"
    if not namespaced:
        raise ValueError(f"{res} is cluster-scoped; it has no namespace")
    return f"{root}/{res}/{_check_segment('namespace', namespace)}/"


def status_prefix(resource: str, namespace: str | None = None) -> str:
    """Like :func:`prefix` but for the ``/status`` tree."""
    return prefix(resource, namespace, root=STATUS_ROOT)


def parse_key(key: str) -> tuple[str, str | None, str]:
    """Split a ``/registry/...`` or ``/status/...`` key into (resource, namespace, name).

    ``namespace`` is None for cluster-scoped resources.
    """
    parts = key.split("/")
    if len(parts) < 4 or parts[0] != "" or f"/{parts[1]}" not in (REGISTRY_ROOT, STATUS_ROOT):
        raise ValueError(f"not an object key: {key!r}")
    resource = parts[2]
    if resource not in RESOURCES:
        raise UnknownKind(resource)
    rest = parts[3:]
    namespaced = RESOURCES[resource][1]
    if namespaced and len(rest) == 2 and all(rest):
        return resource, rest[0], rest[1]
    if not namespaced and len(rest) == 1 and rest[0]:
        return resource, None, rest[0]
    raise ValueError(f"malformed key for {resource}: {key!r}")
