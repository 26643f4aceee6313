"""NOTIFICATION (RFC 4271 §4.5, RFC 9003), KEEPALIVE (§4.4) and ROUTE-REFRESH (RFC 2918, 7313)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pybgp.wire.constants import IPV4_UNICAST, IPV6_UNICAST, Family
from pybgp.wire.context import CodecContext
from pybgp.wire.errors import BGPError
from pybgp.wire.keepalive import Keepalive
from pybgp.wire.notification import Notification
from pybgp.wire.route_refresh import RouteRefresh
from tests.pybgp.strategies import notifications, route_refresh_messages

CTX = CodecContext()
MARKER = "ff" * 16


def hexbytes(text: str) -> bytes:
    return bytes.fromhex(text)


def body_of(wire: bytes, msg_type: int) -> bytes:
    assert wire[:16] == b"\xff" * 16
    assert int.from_bytes(wire[16:18], "big") == len(wire) and wire[18] == msg_type
    return wire[19:]


def error_of(call: object) -> tuple[int, int, str]:
    assert callable(call)
    with pytest.raises(BGPError) as info:
        call()
    return info.value.code, info.value.subcode, info.value.data.hex()


# --------------------------------------------------------------------------------- NOTIFICATION

# Cease / Administrative Shutdown with the communication "maintenance" (RFC 9003 §2).
SHUTDOWN = hexbytes(MARKER + "0021 0306 020b" + b"maintenance".hex())
# Cease / Administrative Reset with "Grüße": 5 characters, 7 octets.
RESET_UTF8 = hexbytes(MARKER + "001d 0306 0407 4772c3bcc39f65")
HOLD_TIMER_EXPIRED = hexbytes(MARKER + "0015 0304 00")
BAD_LENGTH = hexbytes(MARKER + "0017 0301 020011")  # the Length field was 17


def test_shutdown_communication() -> None:
    message = Notification.decode(body_of(SHUTDOWN, 3), CTX)
    assert (message.code, message.subcode, message.data) == (6, 2, b"\x0bmaintenance")
    assert message.communication == "maintenance" and message.communication_error is None
    assert message.to_json() == {
        "type": "NOTIFICATION",
        "code": 6,
        "subcode": 2,
        "code_name": "cease",
        "subcode_name": "administrative-shutdown",
        "data": "0b6d61696e74656e616e6365",
        "communication": "maintenance",
    }
    assert message.encode(CTX) == SHUTDOWN
    assert Notification.shutdown("maintenance") == message


def test_reset_communication_in_utf8() -> None:
    message = Notification.decode(body_of(RESET_UTF8, 3), CTX)
    assert message.subcode_name == "administrative-reset"
    assert message.communication == "Grüße"
    assert Notification.shutdown("Grüße", subcode=4).encode(CTX) == RESET_UTF8


def test_hold_timer_expired() -> None:
    message = Notification.decode(body_of(HOLD_TIMER_EXPIRED, 3), CTX)
    assert (message.code_name, message.subcode_name) == ("hold-timer-expired", "unspecific")
    assert message.communication is None and "communication" not in message.to_json()
    assert message.encode(CTX) == HOLD_TIMER_EXPIRED


def test_header_error_with_data() -> None:
    message = Notification.decode(body_of(BAD_LENGTH, 3), CTX)
    assert (message.code_name, message.subcode_name) == (
        "message-header-error",
        "bad-message-length",
    )
    assert message.to_json()["data"] == "0011"
    assert message.encode(CTX) == BAD_LENGTH


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ("0201 0004", ("open-message-error", "unsupported-version-number")),
        ("020b", ("open-message-error", "role-mismatch")),
        ("0200", ("open-message-error", "unspecific")),
        ("030b", ("update-message-error", "malformed-as-path")),
        ("0500", ("fsm-error", "unspecified-error")),
        ("0502 01", ("fsm-error", "unexpected-message-in-openconfirm")),
        ("060a", ("cease", "bfd-down")),
        ("0701", ("route-refresh-message-error", "invalid-message-length")),
        ("0800", ("send-hold-timer-expired", "unspecific")),
        ("0263", ("open-message-error", None)),
        ("6307", (None, None)),
        ("6300", (None, None)),
    ],
)
def test_code_and_subcode_names(body: str, names: tuple[str | None, str | None]) -> None:
    message = Notification.decode(hexbytes(body), CTX)
    assert (message.code_name, message.subcode_name) == names
    as_json = message.to_json()
    assert (as_json["code_name"], as_json["subcode_name"]) == names


@pytest.mark.parametrize(
    ("data", "text", "problem"),
    [
        ("05 6869", "hi", "length 5, but only 2 octets follow"),
        ("01 6869", "h", "1 octets after the 1-octet communication"),
        ("02 fffe", "\ufffd\ufffd", "not valid UTF-8"),
        ("00", "", None),
        ("81" + "41" * 129, "A" * 129, None),  # RFC 8203 capped at 128; RFC 9003 allows 255
    ],
)
def test_malformed_communication_is_shown_never_raised(
    data: str, text: str, problem: str | None
) -> None:
    message = Notification.decode(hexbytes("0602" + data), CTX)
    assert message.communication == text
    assert message.communication_error == problem
    as_json = message.to_json()
    assert as_json["communication"] == text
    assert as_json.get("communication_error") == problem
    assert message.encode(CTX)[19:] == hexbytes("0602" + data)


def test_communication_only_for_cease_shutdown_and_reset() -> None:
    assert Notification.decode(hexbytes("0603 0568656c6c6f"), CTX).communication is None
    assert Notification.decode(hexbytes("0202 0568656c6c6f"), CTX).communication is None
    assert Notification.decode(hexbytes("0602"), CTX).communication is None


def test_shutdown_is_cut_on_a_character_boundary() -> None:
    message = Notification.shutdown("é" * 200)  # 400 octets
    assert message.data[0] == 254 and message.communication == "é" * 127
    assert Notification.shutdown("x" * 200, max_octets=128).data[0] == 128
    with pytest.raises(ValueError, match="subcode"):
        Notification.shutdown("x", subcode=3)


def test_from_json_builds_data_from_communication() -> None:
    obj: dict[str, object] = {"type": "NOTIFICATION", "code": 6, "subcode": 2}
    assert Notification.from_json(obj | {"communication": "maintenance"}).encode(CTX) == SHUTDOWN
    with pytest.raises(ValueError, match="communication"):
        Notification.from_json(obj | {"communication": "x" * 256})
    with pytest.raises(ValueError, match="communication"):
        Notification.from_json(obj | {"code": 4, "communication": "x"})


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"subcode": 0}, "code"),
        ({"code": 6}, "subcode"),
        ({"code": 256, "subcode": 0}, "code"),
        ({"code": 6, "subcode": 0, "data": "xyz"}, "data"),
        ({"type": "OPEN", "code": 6, "subcode": 0}, "type"),
    ],
)
def test_notification_from_bad_json_names_the_field(obj: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Notification.from_json(obj)


def test_from_error() -> None:
    error = BGPError(2, 1, b"\x00\x04", "version 3")
    assert Notification.from_error(error) == Notification(code=2, subcode=1, data=b"\x00\x04")


def test_notification_too_short() -> None:
    assert error_of(lambda: Notification.decode(b"\x06", CTX)) == (1, 2, "0014")


def test_long_data_is_truncated_for_a_peer_without_extended_messages() -> None:
    message = Notification(code=3, subcode=1, data=bytes(5000))
    assert len(message.encode(CTX)) == 4096  # RFC 8654 §5
    assert len(message.encode(CodecContext(extended_message=True))) == 19 + 2 + 5000


@given(st.binary(max_size=300))
def test_decoding_a_notification_never_raises_past_two_octets(body: bytes) -> None:
    if len(body) < 2:
        with pytest.raises(BGPError):
            Notification.decode(body, CTX)
        return
    message = Notification.decode(body, CTX)
    json.dumps(message.to_json())
    assert message.encode(CTX)[19:] == body


@given(notifications())
def test_notification_round_trips(message: Notification) -> None:
    assert Notification.decode(body_of(message.encode(CTX), 3), CTX) == message
    assert Notification.from_json(json.loads(json.dumps(message.to_json()))) == message


# ------------------------------------------------------------------------------------ KEEPALIVE

KEEPALIVE = hexbytes(MARKER + "0013 04")


def test_keepalive() -> None:
    assert Keepalive.decode(body_of(KEEPALIVE, 4), CTX) == Keepalive()
    assert Keepalive().encode(CTX) == KEEPALIVE
    assert Keepalive().to_json() == {"type": "KEEPALIVE"}
    assert Keepalive.from_json({"type": "KEEPALIVE"}) == Keepalive()
    with pytest.raises(ValueError, match="type"):
        Keepalive.from_json({"type": "OPEN"})


def test_keepalive_with_a_body_is_bad_length() -> None:
    assert error_of(lambda: Keepalive.decode(b"\x00", CTX)) == (1, 2, "0014")
    assert error_of(lambda: Keepalive.decode(bytes(100), CTX)) == (1, 2, "0077")


@given(st.binary(max_size=100))
def test_decoding_arbitrary_keepalive_raises_only_bgp_error(body: bytes) -> None:
    try:
        Keepalive.decode(body, CTX)
    except BGPError:
        assert body


# -------------------------------------------------------------------------------- ROUTE-REFRESH

NORMAL = hexbytes(MARKER + "0017 050001 00 01")  # RFC 2918 §3: IPv4 unicast
BORR = hexbytes(MARKER + "0017 050002 01 01")  # RFC 7313 §3.2: BoRR, IPv6 unicast
EORR = hexbytes(MARKER + "0017 050002 02 01")


@pytest.mark.parametrize(
    ("wire", "message", "subtype_name"),
    [
        (NORMAL, RouteRefresh(family=IPV4_UNICAST), "normal"),
        (BORR, RouteRefresh(family=IPV6_UNICAST, subtype=1), "borr"),
        (EORR, RouteRefresh(family=IPV6_UNICAST, subtype=2), "eorr"),
    ],
)
def test_route_refresh(wire: bytes, message: RouteRefresh, subtype_name: str) -> None:
    assert RouteRefresh.decode(body_of(wire, 5), CTX) == message
    assert message.encode(CTX) == wire
    as_json = message.to_json()
    assert as_json == {
        "type": "ROUTE_REFRESH",
        "family": message.family.name,
        "subtype": message.subtype,
        "subtype_name": subtype_name,
    }
    assert RouteRefresh.from_json(json.loads(json.dumps(as_json))) == message
    assert RouteRefresh.from_json(as_json | {"subtype": subtype_name}) == message


@pytest.mark.parametrize("body", ["0001 01 01 00", "0001 02 01 0000"])
def test_borr_eorr_of_wrong_length_is_invalid_message_length(body: str) -> None:
    # RFC 7313 §5: the data is the complete ROUTE-REFRESH message.
    length = f"{19 + len(hexbytes(body)):04x}"
    whole = MARKER + length + "05" + body.replace(" ", "")
    assert error_of(lambda: RouteRefresh.decode(hexbytes(body), CTX)) == (7, 1, whole)


def test_unknown_subtype_is_decoded_for_the_caller_to_ignore() -> None:
    message = RouteRefresh.decode(hexbytes("0001 07 01 abcd"), CTX)
    assert (message.subtype, message.subtype_name, message.extra) == (7, None, b"\xab\xcd")
    assert message.to_json()["extra"] == "abcd"
    assert message.encode(CTX)[19:] == hexbytes("0001 07 01 abcd")


def test_normal_request_keeps_orf_entries_raw() -> None:
    body = hexbytes("0001 00 0101 40 0005 00 0000 0000")  # RFC 5291 layout, uninterpreted
    message = RouteRefresh.decode(body, CTX)
    assert message.family == IPV4_UNICAST and message.extra == body[4:]
    assert message.encode(CTX)[19:] == body


def test_route_refresh_bad_lengths() -> None:
    assert error_of(lambda: RouteRefresh.decode(hexbytes("000100"), CTX)) == (1, 2, "0016")
    too_long = bytes(4078)
    assert error_of(lambda: RouteRefresh.decode(too_long, CTX)) == (1, 2, "1001")
    extended = CodecContext(extended_message=True)
    assert RouteRefresh.decode(too_long, extended).extra == bytes(4074)


def test_route_refresh_from_bad_json() -> None:
    with pytest.raises(ValueError, match="family"):
        RouteRefresh.from_json({"type": "ROUTE_REFRESH"})
    with pytest.raises(ValueError, match="subtype"):
        RouteRefresh.from_json({"family": "ipv4-unicast", "subtype": "refresh-harder"})
    with pytest.raises(ValueError, match="family"):
        RouteRefresh.from_json({"family": "afi1-safi300"})
    assert RouteRefresh.from_json({"family": "afi25-safi70"}).family == Family(25, 70)


@given(st.binary(max_size=100))
def test_decoding_arbitrary_route_refresh_raises_only_bgp_error(body: bytes) -> None:
    try:
        message = RouteRefresh.decode(body, CTX)
    except BGPError as exc:
        assert (exc.code, exc.subcode) in ((1, 2), (7, 1))
    else:
        assert message.encode(CTX)[19:] == body


@given(route_refresh_messages())
def test_route_refresh_round_trips(message: RouteRefresh) -> None:
    assert RouteRefresh.decode(body_of(message.encode(CTX), 5), CTX) == message
    assert RouteRefresh.from_json(json.loads(json.dumps(message.to_json()))) == message
