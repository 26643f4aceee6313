"""BFD Control packets (RFC 5880 §4.1): the mandatory section, bytes <-> `ControlPacket`.

    0                   1                   2                   3
    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
   |                       My Discriminator                        |
   |                      Your Discriminator                       |
   |                    Desired Min TX Interval                    |
   |                   Required Min RX Interval                    |
   |                 Required Min Echo RX Interval                 |

Intervals are in microseconds on the wire and here. `ControlPacket.decode` applies the
checks of RFC 5880 §6.8.6 that need no session (version, length, Detect Mult, Multipoint,
My Discriminator, Your Discriminator against the state) and raises `BfdPacketError` with the
reason; the authentication section, when the A bit is set, is kept as bytes for the session
to judge (we use no authentication, so a session discards such packets).
"""

from __future__ import annotations

import enum
import struct
from typing import Self

import attrs

VERSION = 1  # RFC 5880 §4.1
MANDATORY_LEN = 24
MIN_AUTH_LEN = 2  # Auth Type and Auth Len (RFC 5880 §4.1)
_MANDATORY = struct.Struct("!BBBBIIIII")
_U32 = 1 << 32


class BfdPacketError(ValueError):
    """A received packet that RFC 5880 §6.8.6 says to discard; the message says why."""


class BfdState(enum.IntEnum):
    """bfd.SessionState and the Sta field (RFC 5880 §4.1)."""

    ADMIN_DOWN = 0
    DOWN = 1
    INIT = 2
    UP = 3

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    BfdState.ADMIN_DOWN: "AdminDown",
    BfdState.DOWN: "Down",
    BfdState.INIT: "Init",
    BfdState.UP: "Up",
}


class Diag(enum.IntEnum):
    """Diagnostic codes (RFC 5880 §4.1)."""

    NONE = 0
    CONTROL_DETECTION_TIME_EXPIRED = 1
    ECHO_FUNCTION_FAILED = 2
    NEIGHBOR_SIGNALED_SESSION_DOWN = 3
    FORWARDING_PLANE_RESET = 4
    PATH_DOWN = 5
    CONCATENATED_PATH_DOWN = 6
    ADMINISTRATIVELY_DOWN = 7
    REVERSE_CONCATENATED_PATH_DOWN = 8

    @classmethod
    def of(cls, value: int) -> Diag | int:
        """The named code, or the number itself for codes 9-31 (reserved, still valid)."""
        try:
            return cls(value)
        except ValueError:
            return value


def _u32(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 0 <= value < _U32:
        raise ValueError(f"{attribute.name}: {value} does not fit 32 bits")


def _u8(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{attribute.name}: {value} does not fit 8 bits")


def _diag(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 0 <= value <= 31:
        raise ValueError(f"{attribute.name}: {value} does not fit 5 bits")


def _auth(instance: ControlPacket, attribute: attrs.Attribute[bytes], value: bytes) -> None:
    if instance.auth_present != bool(value):
        raise ValueError("auth: present exactly when auth_present (the A bit) is set")
    if value and (len(value) < MIN_AUTH_LEN or MANDATORY_LEN + len(value) > 0xFF):
        raise ValueError(f"auth: {len(value)} octets do not make an authentication section")


@attrs.frozen(kw_only=True)
class ControlPacket:
    """One BFD Control packet; field names follow RFC 5880 §4.1, intervals in microseconds."""

    state: BfdState
    diag: int = attrs.field(default=0, validator=_diag)  # a Diag, or 9-31 (reserved)
    poll: bool = False
    final: bool = False
    control_plane_independent: bool = False
    auth_present: bool = False
    demand: bool = False
    multipoint: bool = False
    detect_mult: int = attrs.field(validator=_u8)
    my_discriminator: int = attrs.field(validator=_u32)
    your_discriminator: int = attrs.field(default=0, validator=_u32)
    desired_min_tx: int = attrs.field(validator=_u32)
    required_min_rx: int = attrs.field(validator=_u32)
    required_min_echo_rx: int = attrs.field(default=0, validator=_u32)
    auth: bytes = attrs.field(default=b"", validator=_auth)
    version: int = attrs.field(default=VERSION, validator=attrs.validators.in_(range(8)))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """A received UDP payload; `BfdPacketError` when RFC 5880 §6.8.6 says to discard."""
        if len(data) < MANDATORY_LEN:
            raise BfdPacketError(f"{len(data)} octets, shorter than the mandatory section")
        b0, b1, mult, length, mine, yours, tx, rx, echo = _MANDATORY.unpack_from(data)
        version, diag = b0 >> 5, b0 & 0x1F
        state = BfdState(b1 >> 6)
        auth_present = bool(b1 & 0x04)
        # RFC 5880 §6.8.6: each of these means "the packet MUST be discarded".
        if version != VERSION:
            raise BfdPacketError(f"version {version}, not {VERSION}")
        least = MANDATORY_LEN + (MIN_AUTH_LEN if auth_present else 0)
        if length < least:
            raise BfdPacketError(f"Length {length}, less than {least}")
        if length > len(data):
            raise BfdPacketError(f"Length {length}, more than the {len(data)} octets received")
        if mult == 0:
            raise BfdPacketError("Detect Mult is zero")
        if b1 & 0x01:
            raise BfdPacketError("Multipoint (M) bit set")
        if mine == 0:
            raise BfdPacketError("My Discriminator is zero")
        if yours == 0 and state not in (BfdState.DOWN, BfdState.ADMIN_DOWN):
            raise BfdPacketError(f"Your Discriminator is zero in state {state.label}")
        auth = bytes(data[MANDATORY_LEN:length]) if auth_present else b""
        if auth_present and auth[1] != len(auth):  # Auth Len covers the whole section
            raise BfdPacketError(f"Auth Len {auth[1]}, but the section has {len(auth)} octets")
        return cls(
            version=version,
            diag=diag,
            state=state,
            poll=bool(b1 & 0x20),
            final=bool(b1 & 0x10),
            control_plane_independent=bool(b1 & 0x08),
            auth_present=auth_present,
            demand=bool(b1 & 0x02),
            multipoint=False,
            detect_mult=mult,
            my_discriminator=mine,
            your_discriminator=yours,
            desired_min_tx=tx,
            required_min_rx=rx,
            required_min_echo_rx=echo,
            auth=auth,
        )

    def encode(self) -> bytes:
        flags = (
            self.state << 6
            | self.poll << 5
            | self.final << 4
            | self.control_plane_independent << 3
            | self.auth_present << 2
            | self.demand << 1
            | self.multipoint
        )
        return (
            _MANDATORY.pack(
                self.version << 5 | self.diag,
                flags,
                self.detect_mult,
                MANDATORY_LEN + len(self.auth),
                self.my_discriminator,
                self.your_discriminator,
                self.desired_min_tx,
                self.required_min_rx,
                self.required_min_echo_rx,
            )
            + self.auth
        )
