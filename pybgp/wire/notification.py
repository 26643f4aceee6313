"""The NOTIFICATION message (RFC 4271 §4.5) and the Shutdown Communication (RFC 9003).

Decoding never fails past the 2-octet minimum the header already guarantees: an error found in a
NOTIFICATION cannot be answered with another one (RFC 4271 §6.4), so whatever its data holds is
kept and shown, never raised. A Shutdown Communication that breaks RFC 9003 is shown with the
problem next to it (§4: log it), and invalid UTF-8 is replaced, not interpreted.
"""

from __future__ import annotations

from typing import Self

import attrs
from attrs.validators import in_

from pybgp.wire.constants import HEADER_LEN, CeaseSubcode, ErrorCode, MessageType
from pybgp.wire.context import CodecContext
from pybgp.wire.errors import BGPError
from pybgp.wire.header import bad_length, frame
from pybgp.wire.jsonfields import json_check_type, json_hex, json_int, json_str

MAX_COMMUNICATION_LEN = 255  # RFC 9003 §2 (RFC 8203 allowed 128)
_SHUTDOWN_SUBCODES = (CeaseSubcode.ADMIN_SHUTDOWN, CeaseSubcode.ADMIN_RESET)

_CODE_NAMES: dict[int, str] = {
    ErrorCode.MESSAGE_HEADER: "message-header-error",
    ErrorCode.OPEN_MESSAGE: "open-message-error",
    ErrorCode.UPDATE_MESSAGE: "update-message-error",
    ErrorCode.HOLD_TIMER_EXPIRED: "hold-timer-expired",
    ErrorCode.FSM: "fsm-error",
    ErrorCode.CEASE: "cease",
    ErrorCode.ROUTE_REFRESH: "route-refresh-message-error",
    ErrorCode.SEND_HOLD_TIMER_EXPIRED: "send-hold-timer-expired",
}
# IANA "BGP Error Subcodes"; 0 is "unspecific" for every code (RFC 4271 §6.2, §6.3) unless listed.
_SUBCODE_NAMES: dict[int, dict[int, str]] = {
    ErrorCode.MESSAGE_HEADER: {
        1: "connection-not-synchronized",
        2: "bad-message-length",
        3: "bad-message-type",
    },
    ErrorCode.OPEN_MESSAGE: {
        1: "unsupported-version-number",
        2: "bad-peer-as",
        3: "bad-bgp-identifier",
        4: "unsupported-optional-parameter",
        6: "unacceptable-hold-time",
        7: "unsupported-capability",
        11: "role-mismatch",
    },
    ErrorCode.UPDATE_MESSAGE: {
        1: "malformed-attribute-list",
        2: "unrecognized-well-known-attribute",
        3: "missing-well-known-attribute",
        4: "attribute-flags-error",
        5: "attribute-length-error",
        6: "invalid-origin-attribute",
        8: "invalid-next-hop-attribute",
        9: "optional-attribute-error",
        10: "invalid-network-field",
        11: "malformed-as-path",
    },
    ErrorCode.FSM: {  # RFC 6608
        0: "unspecified-error",
        1: "unexpected-message-in-opensent",
        2: "unexpected-message-in-openconfirm",
        3: "unexpected-message-in-established",
    },
    ErrorCode.CEASE: {  # RFC 4486, RFC 8538, RFC 9384
        1: "maximum-number-of-prefixes-reached",
        2: "administrative-shutdown",
        3: "peer-de-configured",
        4: "administrative-reset",
        5: "connection-rejected",
        6: "other-configuration-change",
        7: "connection-collision-resolution",
        8: "out-of-resources",
        9: "hard-reset",
        10: "bfd-down",
    },
    ErrorCode.ROUTE_REFRESH: {1: "invalid-message-length"},  # RFC 7313 §5
}


@attrs.frozen(kw_only=True)
class Notification:
    code: int = attrs.field(validator=in_(range(0x100)))
    subcode: int = attrs.field(validator=in_(range(0x100)))
    data: bytes = b""

    @classmethod
    def from_error(cls, error: BGPError) -> Self:
        """The NOTIFICATION due for a protocol error."""
        return cls(code=error.code, subcode=error.subcode, data=error.data)

    @classmethod
    def shutdown(
        cls,
        text: str = "",
        subcode: int = CeaseSubcode.ADMIN_SHUTDOWN,
        max_octets: int = MAX_COMMUNICATION_LEN,
    ) -> Self:
        """Cease with a Shutdown Communication, cut to `max_octets` on a character boundary.

        RFC 9003 §3: send more than 128 octets only to a peer known to accept them.
        """
        if subcode not in _SHUTDOWN_SUBCODES or not 0 <= max_octets <= MAX_COMMUNICATION_LEN:
            raise ValueError("subcode: a Shutdown Communication goes with Cease subcode 2 or 4")
        raw = text.encode("utf-8")
        if len(raw) > max_octets:
            raw = raw[:max_octets].decode("utf-8", "ignore").encode("utf-8")
        return cls(code=ErrorCode.CEASE, subcode=subcode, data=bytes((len(raw),)) + raw)

    @property
    def code_name(self) -> str | None:
        return _CODE_NAMES.get(self.code)

    @property
    def subcode_name(self) -> str | None:
        names = _SUBCODE_NAMES.get(self.code, {})
        if self.subcode == 0 and self.code in _CODE_NAMES:
            return names.get(0, "unspecific")
        return names.get(self.subcode)

    @property
    def has_communication(self) -> bool:
        """A Cease subcode 2 or 4 with data: RFC 9003 §2 reads the data as a communication."""
        return (
            self.code == ErrorCode.CEASE and self.subcode in _SHUTDOWN_SUBCODES and bool(self.data)
        )

    @property
    def communication(self) -> str | None:
        """The Shutdown Communication as text (bad UTF-8 replaced), or None when there is none."""
        if not self.has_communication:
            return None
        return self.data[1 : 1 + self.data[0]].decode("utf-8", "replace")

    @property
    def communication_error(self) -> str | None:
        """What is wrong with the Shutdown Communication, for the log (RFC 9003 §4), or None."""
        if not self.has_communication:
            return None
        declared, present = self.data[0], len(self.data) - 1
        if declared > present:
            return f"length {declared}, but only {present} octets follow"
        if declared < present:
            return f"{present - declared} octets after the {declared}-octet communication"
        try:
            self.data[1:].decode("utf-8")
        except UnicodeDecodeError:
            return "not valid UTF-8"
        return None

    @classmethod
    def decode(cls, body: bytes, ctx: CodecContext) -> Self:
        if len(body) < 2:
            raise bad_length(HEADER_LEN + len(body), "NOTIFICATION shorter than 21 octets")
        return cls(code=body[0], subcode=body[1], data=body[2:])

    def encode(self, ctx: CodecContext) -> bytes:
        # RFC 8654 §5: data that would make the message too long for the peer is truncated.
        room = ctx.max_message_len - HEADER_LEN - 2
        return frame(MessageType.NOTIFICATION, bytes((self.code, self.subcode)) + self.data[:room])

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "type": "NOTIFICATION",
            "code": self.code,
            "subcode": self.subcode,
            "code_name": self.code_name,
            "subcode_name": self.subcode_name,
            "data": self.data.hex(),
        }
        if self.has_communication:
            out["communication"] = self.communication
            if self.communication_error:
                out["communication_error"] = self.communication_error
        return out

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        """The JSON of to_json: "data" decides; without it, "communication" builds the data."""
        json_check_type(obj, "NOTIFICATION")
        code, subcode = json_int(obj, "code"), json_int(obj, "subcode")
        if "data" not in obj and "communication" in obj:
            text = json_str(obj, "communication")
            if len(text.encode("utf-8")) > MAX_COMMUNICATION_LEN:
                raise ValueError(f"communication: over {MAX_COMMUNICATION_LEN} octets")
            if code != ErrorCode.CEASE:
                raise ValueError("communication: only a Cease NOTIFICATION carries one")
            return cls.shutdown(text, subcode=subcode)
        return cls(code=code, subcode=subcode, data=json_hex(obj, "data", ""))
