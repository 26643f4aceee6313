"""Protocol numbers: message types, attribute codes, error codes, families (IANA registries)."""

from __future__ import annotations

import enum

import attrs

MARKER = b"\xff" * 16
HEADER_LEN = 19
MAX_MESSAGE_LEN = 4096  # RFC 4271 §4.1
MAX_EXTENDED_MESSAGE_LEN = 65535  # RFC 8654 §3
AS_TRANS = 23456  # RFC 6793 §9
BGP_VERSION = 4


class MessageType(enum.IntEnum):
    OPEN = 1
    UPDATE = 2
    NOTIFICATION = 3
    KEEPALIVE = 4
    ROUTE_REFRESH = 5


class AttrType(enum.IntEnum):
    ORIGIN = 1
    AS_PATH = 2
    NEXT_HOP = 3
    MULTI_EXIT_DISC = 4
    LOCAL_PREF = 5
    ATOMIC_AGGREGATE = 6
    AGGREGATOR = 7
    COMMUNITIES = 8
    ORIGINATOR_ID = 9
    CLUSTER_LIST = 10
    MP_REACH_NLRI = 14
    MP_UNREACH_NLRI = 15
    EXTENDED_COMMUNITIES = 16
    AS4_PATH = 17
    AS4_AGGREGATOR = 18
    LARGE_COMMUNITIES = 32
    OTC = 35


# Attribute flag bits, RFC 4271 §4.3.
OPTIONAL = 0x80
TRANSITIVE = 0x40
PARTIAL = 0x20
EXTENDED_LENGTH = 0x10


class Origin(enum.IntEnum):
    IGP = 0
    EGP = 1
    INCOMPLETE = 2


class SegmentType(enum.IntEnum):
    AS_SET = 1
    AS_SEQUENCE = 2
    AS_CONFED_SEQUENCE = 3  # RFC 5065 §3
    AS_CONFED_SET = 4


class ErrorCode(enum.IntEnum):
    MESSAGE_HEADER = 1
    OPEN_MESSAGE = 2
    UPDATE_MESSAGE = 3
    HOLD_TIMER_EXPIRED = 4
    FSM = 5
    CEASE = 6
    ROUTE_REFRESH = 7  # RFC 7313 §5
    SEND_HOLD_TIMER_EXPIRED = 8  # RFC 9687


class HeaderError(enum.IntEnum):
    CONNECTION_NOT_SYNCHRONIZED = 1
    BAD_MESSAGE_LENGTH = 2
    BAD_MESSAGE_TYPE = 3


class OpenError(enum.IntEnum):
    UNSUPPORTED_VERSION = 1
    BAD_PEER_AS = 2
    BAD_BGP_ID = 3
    UNSUPPORTED_OPTIONAL_PARAMETER = 4
    UNACCEPTABLE_HOLD_TIME = 6
    UNSUPPORTED_CAPABILITY = 7  # RFC 5492 §5
    ROLE_MISMATCH = 11  # RFC 9234 §4.2


class UpdateError(enum.IntEnum):
    MALFORMED_ATTRIBUTE_LIST = 1
    UNRECOGNIZED_WELL_KNOWN = 2
    MISSING_WELL_KNOWN = 3
    ATTRIBUTE_FLAGS = 4
    ATTRIBUTE_LENGTH = 5
    INVALID_ORIGIN = 6
    INVALID_NEXT_HOP = 8
    OPTIONAL_ATTRIBUTE = 9
    INVALID_NETWORK_FIELD = 10
    MALFORMED_AS_PATH = 11


class CeaseSubcode(enum.IntEnum):  # RFC 4486, RFC 8538, RFC 9384
    MAX_PREFIXES = 1
    ADMIN_SHUTDOWN = 2
    PEER_DECONFIGURED = 3
    ADMIN_RESET = 4
    CONNECTION_REJECTED = 5
    OTHER_CONFIGURATION_CHANGE = 6
    CONNECTION_COLLISION = 7
    OUT_OF_RESOURCES = 8
    HARD_RESET = 9
    BFD_DOWN = 10


class FsmSubcode(enum.IntEnum):  # RFC 6608
    UNSPECIFIED = 0
    UNEXPECTED_IN_OPENSENT = 1
    UNEXPECTED_IN_OPENCONFIRM = 2
    UNEXPECTED_IN_ESTABLISHED = 3


AFI_IPV4 = 1
AFI_IPV6 = 2
SAFI_UNICAST = 1


@attrs.frozen(cache_hash=True)
class Family:
    """An address family (AFI, SAFI); names as operators write them ("ipv4-unicast")."""

    afi: int
    safi: int

    @property
    def name(self) -> str:
        return _FAMILY_NAMES.get((self.afi, self.safi), f"afi{self.afi}-safi{self.safi}")

    @property
    def address_len(self) -> int:
        """Octets in one address of this family (4 or 16)."""
        return 16 if self.afi == AFI_IPV6 else 4

    @classmethod
    def from_name(cls, name: str) -> Family:
        for key, known in _FAMILY_NAMES.items():
            if known == name:
                return cls(*key)
        raise ValueError(
            f"unknown address family {name!r} (known: {', '.join(_FAMILY_NAMES.values())})"
        )

    def __str__(self) -> str:
        return self.name


_FAMILY_NAMES = {(AFI_IPV4, SAFI_UNICAST): "ipv4-unicast", (AFI_IPV6, SAFI_UNICAST): "ipv6-unicast"}

IPV4_UNICAST = Family(AFI_IPV4, SAFI_UNICAST)
IPV6_UNICAST = Family(AFI_IPV6, SAFI_UNICAST)
