"""Frozen view of networking.k8s.io/v1 NetworkPolicy.

Validation mirrors what the API server would reject, because a file given to
`kube-router-ctl` never went through it: a peer names exactly one of (pod and/or
namespace selector) or ipBlock; ipBlock CIDRs parse and every `except` is a strict subset
of `cidr`; ports use TCP, UDP or SCTP, numbers 1-65535, names per IANA_SVC_NAME, and
`endPort` only with a numeric `port` and not below it.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from kuberouter.model import fields
from kuberouter.model.errors import FieldError, InvalidObject
from kuberouter.model.objects import PROTOCOLS
from kuberouter.model.selectors import LabelSelector
from kuberouter.model.shared import shared, shared_tuple, text

Direction = Literal["ingress", "egress"]
POLICY_TYPES = ("Ingress", "Egress")
_PORT_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


@attrs.frozen(kw_only=True)
class IPBlock:
    cidr: str  # normalised network, e.g. "10.0.0.0/16"
    except_: tuple[str, ...] = ()

    @property
    def family(self) -> int:
        return 6 if ":" in self.cidr else 4

    def contains(self, ip: str) -> bool:
        address = ipaddress.ip_address(ip)
        if address not in _parsed(self.cidr):
            return False
        return not any(address in _parsed(block) for block in self.except_)

    def __str__(self) -> str:
        excepts = f" except {','.join(self.except_)}" if self.except_ else ""
        return f"ipBlock {self.cidr}{excepts}"

    @classmethod
    def from_k8s(cls, d: Mapping[str, Any], path: str) -> IPBlock:
        cidr = _network(fields.string(d, "cidr", path), f"{path}.cidr")
        excepts: list[str] = []
        for except_path, value in fields.items(d, "except", path):
            block = _network(value, except_path)
            inside = block.version == cidr.version and block.network_address in cidr
            if not inside or block.prefixlen <= cidr.prefixlen:
                raise FieldError(except_path, f"{block} is not a strict subset of {cidr}")
            excepts.append(block.compressed)
        return shared(cls(cidr=cidr.compressed, except_=tuple(dict.fromkeys(excepts))))


@functools.lru_cache(maxsize=4096)
def _parsed(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr)


def _network(value: Any, path: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not isinstance(value, str) or "/" not in value:
        raise FieldError(path, f"{value!r} is not a CIDR")
    try:
        # Host bits are tolerated (as Go's net.ParseCIDR does) and dropped.
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise FieldError(path, f"{value!r} is not a CIDR") from None


@attrs.frozen(kw_only=True)
class PolicyPeer:
    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: IPBlock | None = None

    def __str__(self) -> str:
        if self.ip_block is not None:
            return str(self.ip_block)
        parts = []
        if self.namespace_selector is not None:
            parts.append(f"namespaceSelector {self.namespace_selector}")
        if self.pod_selector is not None:
            parts.append(f"podSelector {self.pod_selector}")
        return " and ".join(parts)

    @classmethod
    def from_k8s(cls, d: Mapping[str, Any], path: str) -> PolicyPeer:
        pods = _optional_selector(d, "podSelector", path)
        namespaces = _optional_selector(d, "namespaceSelector", path)
        block = d.get("ipBlock")
        if block is not None and not isinstance(block, Mapping):
            raise FieldError(f"{path}.ipBlock", "expected an object")
        if block is None and pods is None and namespaces is None:
            raise FieldError(path, "a peer must set podSelector, namespaceSelector or ipBlock")
        if block is not None and (pods is not None or namespaces is not None):
            raise FieldError(path, "ipBlock cannot be combined with a pod or namespace selector")
        ip_block = IPBlock.from_k8s(block, f"{path}.ipBlock") if block is not None else None
        return shared(cls(pod_selector=pods, namespace_selector=namespaces, ip_block=ip_block))


def _optional_selector(d: Mapping[str, Any], key: str, path: str) -> LabelSelector | None:
    if d.get(key) is None:
        return None
    return LabelSelector.from_k8s(d[key], f"{path}.{key}")


@attrs.frozen(kw_only=True)
class PolicyPort:
    protocol: str = "TCP"
    port: int | str | None = None  # None: every port of the protocol; str: a named port
    end_port: int | None = None

    def __str__(self) -> str:
        if self.port is None:
            return f"any/{self.protocol}"
        if self.end_port is not None:
            return f"{self.port}-{self.end_port}/{self.protocol}"
        return f"{self.port}/{self.protocol}"

    @classmethod
    def from_k8s(cls, d: Mapping[str, Any], path: str) -> PolicyPort:
        protocol = fields.string(d, "protocol", path, default="TCP")
        if protocol not in PROTOCOLS:
            raise FieldError(f"{path}.protocol", f"unsupported protocol {protocol!r}")
        raw = d.get("port")
        port: int | str | None
        if raw is None:
            port = None
        elif isinstance(raw, str):
            if len(raw) > 15 or not _PORT_NAME.match(raw):
                raise FieldError(f"{path}.port", f"{raw!r} is not a valid port name")
            port = text(raw)
        else:
            port = fields.integer(raw, f"{path}.port", 1, 65535)
        end_port = None
        if d.get("endPort") is not None:
            if not isinstance(port, int):
                raise FieldError(f"{path}.endPort", "needs a numeric port")
            end_port = fields.integer(d["endPort"], f"{path}.endPort", port, 65535)
        return shared(cls(protocol=text(protocol), port=port, end_port=end_port))


@attrs.frozen(kw_only=True)
class PolicyRule:
    """One ingress rule (peers = `from`) or egress rule (peers = `to`)."""

    peers: tuple[PolicyPeer, ...] = ()  # empty: every peer
    ports: tuple[PolicyPort, ...] = ()  # empty: every port and protocol

    @classmethod
    def from_k8s(cls, d: Mapping[str, Any], path: str, peers_key: str) -> PolicyRule:
        peers = tuple(
            PolicyPeer.from_k8s(element, element_path)
            for element_path, element in fields.objects(d, peers_key, path)
        )
        ports = tuple(
            PolicyPort.from_k8s(element, element_path)
            for element_path, element in fields.objects(d, "ports", path)
        )
        return shared(cls(peers=shared_tuple(peers), ports=shared_tuple(ports)))


@attrs.frozen(kw_only=True)
class NetworkPolicy:
    namespace: str
    name: str
    pod_selector: LabelSelector = attrs.field(factory=LabelSelector)
    policy_types: tuple[str, ...] = ("Ingress",)
    ingress: tuple[PolicyRule, ...] = ()
    egress: tuple[PolicyRule, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def affects_ingress(self) -> bool:
        return "Ingress" in self.policy_types

    @property
    def affects_egress(self) -> bool:
        return "Egress" in self.policy_types

    def rules(self, direction: Direction) -> tuple[PolicyRule, ...]:
        return self.ingress if direction == "ingress" else self.egress

    def affects(self, direction: Direction) -> bool:
        return self.affects_ingress if direction == "ingress" else self.affects_egress

    @classmethod
    def from_k8s(cls, d: Mapping[str, Any]) -> NetworkPolicy:
        namespace, name, _ = fields.metadata(d, "NetworkPolicy", namespaced=True)
        try:
            return cls._parse(namespace, name, fields.mapping(d, "spec", ""))
        except FieldError as err:
            raise InvalidObject("NetworkPolicy", f"{namespace}/{name}", str(err)) from None

    @classmethod
    def _parse(cls, namespace: str, name: str, spec: Mapping[str, Any]) -> NetworkPolicy:
        ingress = tuple(
            PolicyRule.from_k8s(rule, path, "from")
            for path, rule in fields.objects(spec, "ingress", "spec")
        )
        egress = tuple(
            PolicyRule.from_k8s(rule, path, "to")
            for path, rule in fields.objects(spec, "egress", "spec")
        )
        return cls(
            namespace=text(namespace),
            name=name,
            pod_selector=LabelSelector.from_k8s(spec.get("podSelector"), "spec.podSelector"),
            policy_types=shared_tuple(_policy_types(spec, has_egress=bool(egress))),
            ingress=shared_tuple(ingress),
            egress=shared_tuple(egress),
        )


def _policy_types(spec: Mapping[str, Any], has_egress: bool) -> tuple[str, ...]:
    """The API's default when omitted: Ingress always, Egress when egress rules exist."""
    given: list[str] = []
    for path, value in fields.items(spec, "policyTypes", "spec"):
        if value not in POLICY_TYPES:
            raise FieldError(path, f"unknown policy type {value!r}")
        given.append(value)
    if given:
        return tuple(kind for kind in POLICY_TYPES if kind in given)
    return ("Ingress", "Egress") if has_egress else ("Ingress",)
