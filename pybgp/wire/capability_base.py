"""What every capability shares: its code, its base class, the malformed-value error and
the validators of its fields. Kept apart so the capability modules need not import each other.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import ClassVar

import attrs
from attrs.validators import in_

from pybgp.wire.constants import ErrorCode, Family
from pybgp.wire.errors import BGPError

UNSPECIFIC = 0  # OPEN Message Error subcode "Unspecific" (RFC 4271 §6.2)


class CapabilityCode(enum.IntEnum):
    MULTIPROTOCOL = 1  # RFC 4760
    ROUTE_REFRESH = 2  # RFC 2918
    EXTENDED_NEXT_HOP = 5  # RFC 8950
    EXTENDED_MESSAGE = 6  # RFC 8654
    BGP_ROLE = 9  # RFC 9234
    GRACEFUL_RESTART = 64  # RFC 4724
    FOUR_OCTET_AS = 65  # RFC 6793
    ADD_PATH = 69  # RFC 7911
    ENHANCED_ROUTE_REFRESH = 70  # RFC 7313
    FQDN = 73  # draft-walton-bgp-hostname-capability
    ROUTE_REFRESH_OLD = 128  # Cisco's pre-standard route refresh, kept as unknown


def malformed(name: str, reason: str) -> BGPError:
    return BGPError(
        ErrorCode.OPEN_MESSAGE, UNSPECIFIC, b"", f"malformed {name} capability: {reason}"
    )


def family_validator(max_safi: int) -> Callable[[object, attrs.Attribute[Family], Family], None]:
    def check(_instance: object, attribute: attrs.Attribute[Family], value: Family) -> None:
        if not (
            isinstance(value, Family) and 0 <= value.afi <= 0xFFFF and 0 <= value.safi <= max_safi
        ):
            raise ValueError(f"{attribute.name}: {value!r} does not fit AFI (16 bits) / SAFI")

    return check


SAFI_OCTET = family_validator(0xFF)
UINT8 = in_(range(0x100))


class CapabilityBase:
    code: ClassVar[int]
    name: ClassVar[str]

    def _json_head(self) -> dict[str, object]:
        return {"code": self.code, "name": self.name}
