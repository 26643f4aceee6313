"""Frozen view of discovery.k8s.io/v1 EndpointSlice.

Conditions follow the API reference: a missing `ready` or `serving` reads as true, a
missing `terminating` as false. Addresses of IPv4/IPv6 slices are normalised and must
match the slice's family; FQDN slices keep their names as given. A port with no number
means every port, an empty name is the service's unnamed port.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from kuberouter.model import fields
from kuberouter.model.errors import FieldError, InvalidObject
from kuberouter.model.objects import PROTOCOLS

AddressType = Literal["IPv4", "IPv6", "FQDN"]
ADDRESS_TYPES: tuple[AddressType, ...] = ("IPv4", "IPv6", "FQDN")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@attrs.frozen(kw_only=True)
class Endpoint:
    addresses: tuple[str, ...]
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node_name: str = ""
    zone: str = ""

    @classmethod
    def from_k8s(cls, d: Mapping[str, Any], path: str, address_type: AddressType) -> Endpoint:
        conditions = fields.mapping(d, "conditions", path)
        cpath = f"{path}.conditions"
        return cls(
            addresses=_addresses(d, path, address_type),
            ready=_condition(conditions, "ready", cpath, default=True),
            serving=_condition(conditions, "serving", cpath, default=True),
            terminating=_condition(conditions, "terminating", cpath, default=False),
            node_name=fields.string(d, "nodeName", path, default=""),
            zone=fields.string(d, "zone", path, default=""),
        )


@attrs.frozen(kw_only=True)
class EndpointPort:
    name: str = ""
    protocol: str = "TCP"
    port: int | None = None  # None: every port

    @classmethod
    def from_k8s(cls, d: Mapping[str, Any], path: str) -> EndpointPort:
        protocol = fields.string(d, "protocol", path, default="TCP")
        if protocol not in PROTOCOLS:
            raise FieldError(f"{path}.protocol", f"unsupported protocol {protocol!r}")
        port = None
        if d.get("port") is not None:
            port = fields.integer(d["port"], f"{path}.port", 1, 65535)
        return cls(name=fields.string(d, "name", path, default=""), protocol=protocol, port=port)


@attrs.frozen(kw_only=True)
class EndpointSlice:
    namespace: str
    name: str
    service_name: str = ""  # the kubernetes.io/service-name label; "" for a slice of no service
    address_type: AddressType = "IPv4"
    endpoints: tuple[Endpoint, ...] = ()
    ports: tuple[EndpointPort, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def service_key(self) -> str | None:
        """namespace/name of the owning Service, as Service.key spells it."""
        return f"{self.namespace}/{self.service_name}" if self.service_name else None

    @classmethod
    def from_k8s(cls, d: Mapping[str, Any]) -> EndpointSlice:
        namespace, name, meta = fields.metadata(d, "EndpointSlice", namespaced=True)
        try:
            return cls._parse(namespace, name, meta, d)
        except FieldError as err:
            raise InvalidObject("EndpointSlice", f"{namespace}/{name}", str(err)) from None

    @classmethod
    def _parse(
        cls, namespace: str, name: str, meta: Mapping[str, Any], d: Mapping[str, Any]
    ) -> EndpointSlice:
        address_type = _address_type(d)
        labels = fields.labels(meta, "labels", "metadata")
        return cls(
            namespace=namespace,
            name=name,
            service_name=labels.get(SERVICE_NAME_LABEL, ""),
            address_type=address_type,
            endpoints=tuple(
                Endpoint.from_k8s(entry, path, address_type)
                for path, entry in fields.objects(d, "endpoints", "")
            ),
            ports=tuple(
                EndpointPort.from_k8s(entry, path) for path, entry in fields.objects(d, "ports", "")
            ),
        )


def _address_type(d: Mapping[str, Any]) -> AddressType:
    value = fields.string(d, "addressType", "")
    for choice in ADDRESS_TYPES:
        if value == choice:
            return choice
    raise FieldError("addressType", f"{value!r} is not one of {', '.join(ADDRESS_TYPES)}")


def _addresses(d: Mapping[str, Any], path: str, address_type: AddressType) -> tuple[str, ...]:
    found: list[str] = []
    for element_path, value in fields.items(d, "addresses", path):
        if address_type == "FQDN":
            if not isinstance(value, str) or not value:
                raise FieldError(element_path, f"expected a host name, got {value!r}")
            found.append(value)
            continue
        address = fields.ip_address(value, element_path)
        if (":" in address) != (address_type == "IPv6"):
            raise FieldError(element_path, f"{address} is not an {address_type} address")
        found.append(address)
    if not found:
        raise FieldError(f"{path}.addresses", "an endpoint needs at least one address")
    return tuple(dict.fromkeys(found))


def _condition(conditions: Mapping[str, Any], key: str, path: str, *, default: bool) -> bool:
    if conditions.get(key) is None:
        return default
    return fields.boolean(conditions, key, path)
