"""Frozen views of the Kubernetes objects controllers use (`from_k8s(dict)` constructors).

Each kind lives in its own module and is registered in `KINDS`, so loaders (and the
watch layer in kuberouter.k8s) can dispatch on `kind`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kuberouter.model.endpointslice import Endpoint, EndpointPort, EndpointSlice
from kuberouter.model.errors import FieldError, InvalidObject
from kuberouter.model.labels import Labels
from kuberouter.model.networkpolicy import (
    IPBlock,
    NetworkPolicy,
    PolicyPeer,
    PolicyPort,
    PolicyRule,
)
from kuberouter.model.node import Node
from kuberouter.model.objects import NAMESPACE_NAME_LABEL, ContainerPort, Namespace, Pod
from kuberouter.model.selectors import LabelSelector, Requirement
from kuberouter.model.service import Service, ServicePort

# kind -> constructor; a loader looks the kind up here and skips kinds it does not know.
KINDS: Mapping[str, Callable[[Mapping[str, Any]], object]] = {
    "Namespace": Namespace.from_k8s,
    "Pod": Pod.from_k8s,
    "NetworkPolicy": NetworkPolicy.from_k8s,
    "Node": Node.from_k8s,
    "Service": Service.from_k8s,
    "EndpointSlice": EndpointSlice.from_k8s,
}

__all__ = [
    "KINDS",
    "NAMESPACE_NAME_LABEL",
    "ContainerPort",
    "Endpoint",
    "EndpointPort",
    "EndpointSlice",
    "FieldError",
    "IPBlock",
    "InvalidObject",
    "LabelSelector",
    "Labels",
    "Namespace",
    "NetworkPolicy",
    "Node",
    "Pod",
    "PolicyPeer",
    "PolicyPort",
    "PolicyRule",
    "Requirement",
    "Service",
    "ServicePort",
]
