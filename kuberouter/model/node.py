"""Frozen view of core/v1 Node: its pod CIDRs, addresses and the kube-router.io/ annotations.

Only annotations under `kube-router.io/` are kept (others, such as kubectl's
last-applied-configuration, can be large and no controller reads them). Those with a
simple type are checked here, so a node with a bad one is refused once, with its name,
instead of failing every routing sync: node.asn, pod-cidrs, bgp-local-addresses,
rr.server / rr.client (a cluster ID: a 32-bit number or an IPv4 address), path-prepend.as
and path-prepend.repeat-n. The others (peers, communities, ...) stay as strings for the
routing controller.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from kuberouter.model import fields
from kuberouter.model.errors import FieldError, InvalidObject
from kuberouter.model.labels import NO_LABELS, Labels

ANNOTATION_PREFIX = "kube-router.io/"
ASN_ANNOTATION = "kube-router.io/node.asn"
POD_CIDRS_ANNOTATION = "kube-router.io/pod-cidrs"
LOCAL_ADDRESSES_ANNOTATION = "kube-router.io/bgp-local-addresses"
RR_SERVER_ANNOTATION = "kube-router.io/rr.server"
RR_CLIENT_ANNOTATION = "kube-router.io/rr.client"
PREPEND_AS_ANNOTATION = "kube-router.io/path-prepend.as"
PREPEND_REPEAT_ANNOTATION = "kube-router.io/path-prepend.repeat-n"
MAX_ASN = 4294967295


@attrs.frozen(kw_only=True)
class Node:
    name: str
    labels: Labels = NO_LABELS
    annotations: Labels = NO_LABELS  # the kube-router.io/ ones only
    pod_cidrs: tuple[str, ...] = ()  # spec.podCIDRs (or podCIDR), normalised networks
    internal_ips: tuple[str, ...] = ()  # status.addresses of type InternalIP
    external_ips: tuple[str, ...] = ()  # status.addresses of type ExternalIP
    asn: int | None = None  # kube-router.io/node.asn
    annotated_pod_cidrs: tuple[str, ...] = ()  # kube-router.io/pod-cidrs
    bgp_local_addresses: tuple[str, ...] = ()  # kube-router.io/bgp-local-addresses
    rr_server: str | None = None  # cluster ID from kube-router.io/rr.server
    rr_client: str | None = None  # cluster ID from kube-router.io/rr.client

    @property
    def key(self) -> str:
        return self.name

    @property
    def effective_pod_cidrs(self) -> tuple[str, ...]:
        """The annotation wins over spec.podCIDRs, as upstream."""
        return self.annotated_pod_cidrs or self.pod_cidrs

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
        _check_path_prepend(notes)
        return cls(
            name=name,
            labels=fields.labels(meta, "labels", "metadata"),
            annotations=notes,
            pod_cidrs=_spec_pod_cidrs(spec),
            internal_ips=_addresses(status, "InternalIP"),
            external_ips=_addresses(status, "ExternalIP"),
            asn=_asn(notes, ASN_ANNOTATION),
            annotated_pod_cidrs=_split(notes, POD_CIDRS_ANNOTATION, cidr),
            bgp_local_addresses=_split(notes, LOCAL_ADDRESSES_ANNOTATION, fields.ip_address),
            rr_server=_cluster_id(notes, RR_SERVER_ANNOTATION),
            rr_client=_cluster_id(notes, RR_CLIENT_ANNOTATION),
        )


def kube_router_annotations(meta: Mapping[str, Any]) -> Labels:
    """metadata.annotations, reduced to the kube-router.io/ keys."""
    every = fields.labels(meta, "annotations", "metadata")
    return Labels({k: v for k, v in every.items() if k.startswith(ANNOTATION_PREFIX)})


def annotation_path(key: str) -> str:
    return f"metadata.annotations[{key}]"


def cidr(value: Any, path: str) -> str:
    """One network, normalised (host bits dropped, as Go's net.ParseCIDR tolerates)."""
    if not isinstance(value, str) or "/" not in value:
        raise FieldError(path, f"{value!r} is not a CIDR")
    try:
        return ipaddress.ip_network(value.strip(), strict=False).compressed
    except ValueError:
        raise FieldError(path, f"{value!r} is not a CIDR") from None


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


def _split(notes: Labels, key: str, parse: Callable[[Any, str], str]) -> tuple[str, ...]:
    """A comma-separated annotation, each part parsed by `parse(value, path) -> str`."""
    if key not in notes:
        return ()
    parts = [part.strip() for part in notes[key].split(",") if part.strip()]
    return tuple(dict.fromkeys(parse(part, annotation_path(key)) for part in parts))


def _check_path_prepend(notes: Labels) -> None:
    _asn(notes, PREPEND_AS_ANNOTATION)
    if PREPEND_REPEAT_ANNOTATION in notes:
        path = annotation_path(PREPEND_REPEAT_ANNOTATION)
        fields.integer(_number(notes[PREPEND_REPEAT_ANNOTATION], path), path, 1, 255)


def _number(value: str, path: str) -> int:
    if not value.strip().isdigit():
        raise FieldError(path, f"{value!r} is not a number")
    return int(value)


def _asn(notes: Labels, key: str) -> int | None:
    if key not in notes:
        return None
    path = annotation_path(key)
    return fields.integer(_number(notes[key], path), path, 1, MAX_ASN)


def _cluster_id(notes: Labels, key: str) -> str | None:
    """Upstream accepts a 32-bit number or a dotted IPv4 address; normalised to the latter."""
    if key not in notes:
        return None
    value, path = notes[key].strip(), annotation_path(key)
    if value.isdigit() and int(value) <= MAX_ASN:
        return str(ipaddress.IPv4Address(int(value)))
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise FieldError(path, f"{value!r} is not a cluster ID (a number or IPv4)") from None
