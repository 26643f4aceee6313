"""Capabilities in which the speaker describes itself: its hostname (FQDN,
draft-walton-bgp-hostname-capability) and its BGP Role (RFC 9234).
"""

from __future__ import annotations

import enum
from typing import ClassVar, Self

import attrs

from pybgp.wire.capability_base import UINT8, CapabilityBase, CapabilityCode, malformed
from pybgp.wire.jsonfields import json_name_or_int, json_str


def _short_utf8(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or len(value.encode("utf-8", "surrogatepass")) > 255:
        raise ValueError(f"{attribute.name}: expected text of at most 255 UTF-8 octets")


@attrs.frozen(kw_only=True)
class FQDN(CapabilityBase):
    """draft-walton-bgp-hostname-capability: hostname and domain name, each length-prefixed."""

    code: ClassVar[int] = CapabilityCode.FQDN.value
    name: ClassVar[str] = "fqdn"
    hostname: str = attrs.field(validator=_short_utf8)
    domain: str = attrs.field(default="", validator=_short_utf8)

    @classmethod
    def decode(cls, value: bytes) -> Self:
        host, domain = fqdn_fields(value)
        try:
            return cls(hostname=host.decode("utf-8"), domain=domain.decode("utf-8"))
        except UnicodeDecodeError:
            raise malformed(cls.name, "text is not UTF-8") from None

    def encode(self) -> bytes:
        host, domain = self.hostname.encode(), self.domain.encode()
        return bytes((len(host),)) + host + bytes((len(domain),)) + domain

    def to_json(self) -> dict[str, object]:
        return self._json_head() | {"hostname": self.hostname, "domain": self.domain}

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls(hostname=json_str(obj, "hostname"), domain=json_str(obj, "domain", ""))


def fqdn_fields(value: bytes) -> tuple[bytes, bytes]:
    """(hostname, domain name) octets; each is a length octet and that many octets."""
    host, rest = _split_length_prefixed(value, "hostname")
    domain, rest = _split_length_prefixed(rest, "domain name")
    if rest:
        raise malformed(FQDN.name, f"{len(rest)} octets after the domain name")
    return host, domain


def _split_length_prefixed(data: bytes, what: str) -> tuple[bytes, bytes]:
    if not data or 1 + data[0] > len(data):
        raise malformed(FQDN.name, f"{what} runs past the capability")
    return data[1 : 1 + data[0]], data[1 + data[0] :]


class Role(enum.IntEnum):
    """BGP Role values of RFC 9234 §4.1."""

    PROVIDER = 0
    RS = 1
    RS_CLIENT = 2
    CUSTOMER = 3
    PEER = 4


_ROLE_NAMES: dict[int, str] = {role.value: role.name.lower().replace("_", "-") for role in Role}


@attrs.frozen(kw_only=True)
class BGPRole(CapabilityBase):
    """RFC 9234 §4.1: one octet. Unassigned values are kept; the session decides on a mismatch."""

    code: ClassVar[int] = CapabilityCode.BGP_ROLE.value
    name: ClassVar[str] = "bgp-role"
    role: int = attrs.field(validator=UINT8)

    @property
    def role_name(self) -> str | None:
        return _ROLE_NAMES.get(self.role)

    @classmethod
    def decode(cls, value: bytes) -> Self:
        if len(value) != 1:
            raise malformed(cls.name, f"length {len(value)}, expected 1")
        return cls(role=value[0])

    def encode(self) -> bytes:
        return bytes((self.role,))

    def to_json(self) -> dict[str, object]:
        return self._json_head() | {"role": _ROLE_NAMES.get(self.role, self.role)}

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls(role=json_name_or_int(obj, "role", _ROLE_NAMES))
