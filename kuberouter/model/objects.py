"""Frozen views of core/v1 Namespace and Pod, holding only what controllers use.

`from_k8s` is the filter between the API's untyped dicts and these values: it checks
types, normalises addresses and raises `InvalidObject` for what it cannot accept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import attrs

from kuberouter.model import fields
from kuberouter.model.errors import FieldError, InvalidObject
from kuberouter.model.labels import NO_LABELS, Labels
from kuberouter.model.shared import shared, shared_tuple, text

# Set by the API server on every namespace since 1.21 (immutable); policies select on it.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
PROTOCOLS = ("TCP", "UDP", "SCTP")
FINISHED_PHASES = frozenset({"Succeeded", "Failed"})


@attrs.frozen(kw_only=True)
class Namespace:
    name: str
    labels: Labels = NO_LABELS

    @classmethod
    def implicit(cls, name: str) -> Namespace:
        """A namespace we only know by name: it still carries the automatic name label."""
        return cls(name=name, labels=shared(Labels({NAMESPACE_NAME_LABEL: name})))

    @classmethod
    def from_k8s(cls, d: Mapping[str, Any]) -> Namespace:
        _, name, meta = fields.metadata(d, "Namespace", namespaced=False)
        try:
            labels = dict(fields.labels(meta, "labels", "metadata"))
        except FieldError as err:
            raise InvalidObject("Namespace", name, str(err)) from None
        # Files written by hand often lack the label the API server would have added.
        labels.setdefault(NAMESPACE_NAME_LABEL, text(name))
        return cls(name=text(name), labels=shared(Labels(labels)))


class ContainerPort(NamedTuple):
    name: str | None
    port: int
    protocol: str


@attrs.frozen(kw_only=True)
class Pod:
    namespace: str
    name: str
    labels: Labels = NO_LABELS
    node_name: str = ""
    ips: tuple[str, ...] = ()  # status.podIPs (or podIP), normalised, v4 and/or v6
    host_ips: tuple[str, ...] = ()  # status.hostIPs (or hostIP): addresses of the node
    host_network: bool = False
    container_ports: tuple[ContainerPort, ...] = ()
    phase: str = ""
    # Made once, read by the thousand: "namespace/name" and the addresses per family.
    key: str = attrs.field(init=False, eq=False, repr=False)
    _by_family: tuple[tuple[str, ...], tuple[str, ...]] = attrs.field(
        init=False, eq=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.namespace}/{self.name}")
        v6 = tuple(ip for ip in self.ips if ":" in ip)
        v4 = self.ips if not v6 else tuple(ip for ip in self.ips if ":" not in ip)
        object.__setattr__(self, "_by_family", (v4, v6 if v6 else ()))

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED_PHASES

    def ips_of_family(self, family: int) -> tuple[str, ...]:
        return self._by_family[family == 6]

    @classmethod
    def from_k8s(cls, d: Mapping[str, Any]) -> Pod:
        namespace, name, meta = fields.metadata(d, "Pod", namespaced=True)
        try:
            return cls._parse(namespace, name, meta, d)
        except FieldError as err:
            raise InvalidObject("Pod", f"{namespace}/{name}", str(err)) from None

    @classmethod
    def _parse(
        cls, namespace: str, name: str, meta: Mapping[str, Any], d: Mapping[str, Any]
    ) -> Pod:
        spec = fields.mapping(d, "spec", "")
        status = fields.mapping(d, "status", "")
        return cls(
            namespace=text(namespace),
            name=name,
            labels=fields.labels(meta, "labels", "metadata"),
            node_name=text(fields.string(spec, "nodeName", "spec", default="")),
            ips=_addresses(status, "podIPs", "podIP"),
            host_ips=shared_tuple(tuple(map(text, _addresses(status, "hostIPs", "hostIP")))),
            host_network=fields.boolean(spec, "hostNetwork", "spec"),
            container_ports=_container_ports(spec),
            phase=text(fields.string(status, "phase", "status", default="")),
        )


def _addresses(status: Mapping[str, Any], plural: str, singular: str) -> tuple[str, ...]:
    """status.podIPs is authoritative when present; podIP is its first entry."""
    found: list[str] = []
    for path, entry in fields.objects(status, plural, "status"):
        found.append(fields.ip_address(entry.get("ip"), f"{path}.ip"))
    if not found and status.get(singular):
        found.append(fields.ip_address(status[singular], f"status.{singular}"))
    return tuple(dict.fromkeys(found))


def _container_ports(spec: Mapping[str, Any]) -> tuple[ContainerPort, ...]:
    ports: list[ContainerPort] = []
    for container_path, container in fields.objects(spec, "containers", "spec"):
        for path, port in fields.objects(container, "ports", container_path):
            number = fields.integer(port.get("containerPort"), f"{path}.containerPort", 1, 65535)
            protocol = fields.string(port, "protocol", path, default="TCP")
            if protocol not in PROTOCOLS:
                raise FieldError(f"{path}.protocol", f"unsupported protocol {protocol!r}")
            name = fields.optional_string(port, "name", path)
            ports.append(shared_tuple(ContainerPort(name and text(name), number, text(protocol))))
    return shared_tuple(tuple(ports))
