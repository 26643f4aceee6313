"""Frozen view of core/v1 Node: its pod CIDRs, addresses and the kube-router.io/ annotations.

Only annotations under `kube-router.io/` are kept (others, such as kubectl's
last-applied-configuration, can be large and no controller reads them). The BGP ones are
read into `bgp` (kuberouter.model.node_bgp): a malformed one is a problem reported there,
never a reason to refuse the Node, whose addresses and pod CIDRs every controller needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from kuberouter.model import fields, node_bgp
from kuberouter.model.errors import FieldError, InvalidObject
from kuberouter.model.labels import NO_LABELS, Labels
from kuberouter.model.node_bgp import NodeBgp, cidr
from kuberouter.model.shared import shared

ANNOTATION_PREFIX = "kube-router.io/"
NO_BGP = NodeBgp()


@attrs.frozen(kw_only=True)
class Node:
    name: str
    labels: Labels = NO_LABELS
    annotations: Labels = NO_LABELS  # the kube-router.io/ ones only
    pod_cidrs: tuple[str, ...] = ()  # spec.podCIDRs (or podCIDR), normalised networks
    internal_ips: tuple[str, ...] = ()  # status.addresses of type InternalIP
    external_ips: tuple[str, ...] = ()  # status.addresses of type ExternalIP
    bgp: NodeBgp = NO_BGP  # the BGP annotations, and what is wrong with them

    @property
    def key(self) -> str:
        return self.name

    @property
    def effective_pod_cidrs(self) -> tuple[str, ...]:
        """The annotation wins over spec.podCIDRs, as upstream."""
        return self.bgp.pod_cidrs or self.pod_cidrs

    def primary_ip(self, family: int = 4) -> str | None:
        """The first InternalIP of a family, else the first ExternalIP (upstream's choice)."""
        for ip in (*self.internal_ips, *self.external_ips):
            if (":" in ip) == (family == 6):
                return ip
        return None

    @classmethod
    def from_k8s(cls, d: Mapping[str, Any]) -> Node:
        _, name, meta = fields.metadata(d, "Node", namespaced=False)
        try:
            return cls._parse(name, meta, d)
        except FieldError as err:
            raise InvalidObject("Node", name, str(err)) from None

    @classmethod
    def _parse(cls, name: str, meta: Mapping[str, Any], d: Mapping[str, Any]) -> Node:
        spec = fields.mapping(d, "spec", "")
        status = fields.mapping(d, "status", "")
        notes = kube_router_annotations(meta)
        return cls(
            name=name,
            labels=fields.labels(meta, "labels", "metadata"),
            annotations=notes,
            pod_cidrs=_spec_pod_cidrs(spec),
            internal_ips=_addresses(status, "InternalIP"),
            external_ips=_addresses(status, "ExternalIP"),
            bgp=node_bgp.parse(notes),
        )


def kube_router_annotations(meta: Mapping[str, Any]) -> Labels:
    """metadata.annotations, reduced to the kube-router.io/ keys."""
    every = fields.labels(meta, "annotations", "metadata")
    return shared(Labels({k: v for k, v in every.items() if k.startswith(ANNOTATION_PREFIX)}))


def _spec_pod_cidrs(spec: Mapping[str, Any]) -> tuple[str, ...]:
    found = [cidr(value, path) for path, value in fields.items(spec, "podCIDRs", "spec")]
    if not found and spec.get("podCIDR"):
        found.append(cidr(spec["podCIDR"], "spec.podCIDR"))
    return tuple(dict.fromkeys(found))


def _addresses(status: Mapping[str, Any], kind: str) -> tuple[str, ...]:
    found: list[str] = []
    for path, entry in fields.objects(status, "addresses", "status"):
        if entry.get("type") == kind:
            found.append(fields.ip_address(entry.get("address"), f"{path}.address"))
    return tuple(dict.fromkeys(found))
