"""OPEN (RFC 4271 §4.2, §6.2; RFC 5492; RFC 6793; RFC 9072): vectors, errors, JSON, properties."""

from __future__ import annotations

import json

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pybgp.wire.capabilities import (
    FQDN,
    AddPath,
    AddPathFamily,
    BGPRole,
    EnhancedRouteRefresh,
    ExtendedMessage,
    FourOctetAS,
    GracefulRestart,
    Multiprotocol,
    RouteRefresh,
    UnknownCapability,
)
from pybgp.wire.constants import IPV4_UNICAST, IPV6_UNICAST, Family
from pybgp.wire.context import CodecContext
from pybgp.wire.errors import BGPError
from pybgp.wire.open import Open
from tests.pybgp.strategies import open_messages

CTX = CodecContext()
MARKER = "ff" * 16


def hexbytes(text: str) -> bytes:
    return bytes.fromhex(text)


# One capability per parameter, as FRR and GoBGP send them; AS 65001 also in a 4-octet AS.
ONE_PER_PARAMETER = hexbytes(
    MARKER + "0058 01"  # length 88, OPEN
    "04 fde9 00b4 0a000001"  # version 4, AS 65001, hold time 180, BGP ID 10.0.0.1
    "3b"  # 59 octets of optional parameters
    "0206 0104 0001 0001"  # multiprotocol IPv4 unicast
    "0206 0104 0002 0001"  # multiprotocol IPv6 unicast
    "0202 0200"  # route refresh
    "0202 4600"  # enhanced route refresh
    "0206 4104 0000fde9"  # 4-octet AS 65001
    "0206 4504 0001 01 01"  # ADD-PATH IPv4 unicast receive
    "020b 4909 02 7231 05 6c6f63616c"  # FQDN "r1" "local"
    "0204 4002 c078"  # graceful restart R+N, 120 s
)

# Every capability in one parameter, as BIRD sends them; a 4-octet AS with AS_TRANS in My AS.
ALL_IN_ONE_PARAMETER = hexbytes(
    MARKER + "0032 01"  # length 50
    "04 5ba0 00f0 c0000201"  # AS_TRANS 23456, hold time 240, BGP ID 192.0.2.1
    "15"  # 21 octets
    "0213"  # one Capabilities parameter of 19 octets
    "0104 0001 0001"
    "0200"
    "4104 fa56ea01"  # AS 4200000001
    "0600"  # extended message
    "0901 04"  # role: peer
)

# RFC 9072 §2: the extended format, used although the parameters are short.
EXTENDED_FORMAT = hexbytes(
    MARKER + "0029 01"  # length 41
    "04 fde9 005a 0a000002"
    "ff ff 0009"  # Non-Ext OP Len 255, Non-Ext OP Type 255, 9 octets of parameters
    "02 0006 0104 0001 0001"  # a 2-octet parameter length
)

# RFC 9072 §3: a Non-Ext OP Len other than 255 is accepted with the extended format.
EXTENDED_FORMAT_ODD_LENGTH = hexbytes(MARKER + "0020 0104 fde9 005a 0a00000201 ff 0000")

NO_PARAMETERS = hexbytes(MARKER + "001d 0104 fde9 0000 0a00000300")  # hold time 0


def decode(wire: bytes) -> Open:
    assert wire[:16] == b"\xff" * 16
    assert int.from_bytes(wire[16:18], "big") == len(wire) and wire[18] == 1
    return Open.decode(wire[19:], CTX)


def test_one_capability_per_parameter() -> None:
    message = decode(ONE_PER_PARAMETER)
    assert (message.my_as, message.asn, message.hold_time) == (65001, 65001, 180)
    assert message.bgp_id == "10.0.0.1" and message.bgp_id_int == 0x0A000001
    assert len(message.parameters) == 8 and not message.extended_params
    assert message.families == (IPV4_UNICAST, IPV6_UNICAST)
    assert message.capability(RouteRefresh) == RouteRefresh()
    assert message.capability(EnhancedRouteRefresh) == EnhancedRouteRefresh()
    assert message.capability(FQDN) == FQDN(hostname="r1", domain="local")
    assert message.capability(AddPath) == AddPath(
        families=(AddPathFamily(family=IPV4_UNICAST, mode=1),)
    )
    restart = message.capability(GracefulRestart)
    assert restart and restart.restart_state and restart.notification
    assert restart.restart_time == 120
    assert message.capability(ExtendedMessage) is None
    assert message.encode(CTX) == ONE_PER_PARAMETER


def test_all_capabilities_in_one_parameter() -> None:
    message = decode(ALL_IN_ONE_PARAMETER)
    assert (message.my_as, message.asn) == (23456, 4200000001)
    assert message.bgp_id == "192.0.2.1"
    assert len(message.parameters) == 1
    assert message.capabilities == (
        Multiprotocol(family=IPV4_UNICAST),
        RouteRefresh(),
        FourOctetAS(asn=4200000001),
        ExtendedMessage(),
        BGPRole(role=4),
    )
    assert message.encode(CTX) == ALL_IN_ONE_PARAMETER
    built = Open.build(
        asn=4200000001, hold_time=240, bgp_id="192.0.2.1", capabilities=message.capabilities
    )
    assert built == message


def test_extended_format_is_kept() -> None:
    message = decode(EXTENDED_FORMAT)
    assert message.extended_params and message.non_ext_op_len == 255
    assert message.capabilities == (Multiprotocol(family=IPV4_UNICAST),)
    assert message.encode(CTX) == EXTENDED_FORMAT
    classic = attrs.evolve(message, extended_params=False).encode(CTX)
    assert classic[28:] == hexbytes("08 0206 0104 0001 0001")


def test_extended_format_with_odd_non_ext_length() -> None:
    message = decode(EXTENDED_FORMAT_ODD_LENGTH)
    assert message.extended_params and message.non_ext_op_len == 1
    assert message.parameters == ()
    assert message.to_json()["non_ext_op_len"] == 1
    assert message.encode(CTX) == EXTENDED_FORMAT_ODD_LENGTH


def test_no_parameters() -> None:
    message = decode(NO_PARAMETERS)
    assert message == Open(my_as=65001, hold_time=0, bgp_id="10.0.0.3")
    assert message.capabilities == () and message.families == ()
    assert message.encode(CTX) == NO_PARAMETERS


def test_encoder_switches_to_extended_format_past_255_octets() -> None:
    # 50 multiprotocol capabilities of 6 octets: 300 octets in one parameter.
    caps = [Multiprotocol(family=Family(1, safi)) for safi in range(50)]
    wire = Open.build(asn=65001, hold_time=90, bgp_id="10.0.0.1", capabilities=caps).encode(CTX)
    body = wire[19:]
    assert body[9:13] == hexbytes("ff ff 012f")  # 3 + 300 octets of parameters
    assert body[13:16] == hexbytes("02 012c")  # one parameter of 300 octets
    assert body[16:22] == hexbytes("0104 0001 0000")
    assert len(wire) == 19 + 13 + 303
    assert Open.decode(body, CTX).extended_params


def test_open_over_4096_octets_cannot_be_encoded() -> None:
    # Extended format: 13 octets before the parameters, 3 + 2 + value octets per parameter.
    big = (UnknownCapability(code=200, value=bytes(250)),)  # a 255-octet parameter

    def last(size: int) -> tuple[UnknownCapability]:
        return (UnknownCapability(code=200, value=bytes(size)),)

    fits = Open(my_as=1, hold_time=90, bgp_id="10.0.0.1", parameters=(big,) * 15 + (last(234),))
    assert len(fits.encode(CTX)) == 19 + 13 + 15 * 255 + 239 == 4096
    with pytest.raises(ValueError, match="4096"):
        attrs.evolve(fits, parameters=(big,) * 15 + (last(235),)).encode(CTX)


def test_build_puts_as_trans_in_my_as() -> None:
    with pytest.raises(ValueError, match="asn"):
        Open.build(asn=70000, hold_time=90, bgp_id="10.0.0.1")
    message = Open.build(
        asn=70000, hold_time=90, bgp_id="10.0.0.1", capabilities=[FourOctetAS(asn=70000)]
    )
    assert (message.my_as, message.asn) == (23456, 70000)
    assert Open.build(asn=65001, hold_time=90, bgp_id="10.0.0.1").parameters == ()


BODY = "04 fde9 00b4 0a000001"  # valid fixed fields, before Opt Parm Len

ERRORS = [
    ("03 fde9 00b4 0a000001 00", (2, 1, "0004")),  # version 3: we support 4 only
    ("05 fde9 00b4 0a000001 00", (2, 1, "0004")),
    ("04 0000 00b4 0a000001 00", (2, 2, "")),  # My AS 0 (RFC 7607)
    ("04 fde9 0001 0a000001 00", (2, 6, "")),  # hold time 1
    ("04 fde9 0002 0a000001 00", (2, 6, "")),
    ("04 fde9 00b4 00000000 00", (2, 3, "")),  # BGP ID 0
    (BODY + "01", (2, 0, "")),  # 1 octet of parameters announced, none there
    (BODY + "00 02", (2, 0, "")),  # an octet after the parameters
    (BODY + "04 0203 0200", (2, 0, "")),  # a parameter overruns
    (BODY + "01 02", (2, 0, "")),  # a parameter header cut short
    (BODY + "04 0102 0000", (2, 4, "")),  # type 1 (authentication)
    (BODY + "06 0202 0200 ff00", (2, 4, "")),  # type 255 not first: no extended format
    (BODY + "ff ff 00", (2, 0, "")),  # extended length cut short
    (BODY + "ff ff 0006 02 0002 0200", (2, 0, "")),  # extended length too long
    (BODY + "ff ff 0004 02 0002 02", (2, 0, "")),  # extended parameter overruns
    (BODY + "05 0203 410102", (2, 0, "")),  # a malformed capability inside
    ("04 5ba0 00b4 0a000001 08 0206 4104 00000000", (2, 2, "")),  # 4-octet AS 0
    (BODY + "08 0206 0901 00 0901 03", (2, 11, "")),  # RFC 9234: disagreeing roles
    ("04 fde9", (1, 2, "0016")),  # shorter than the fixed fields: bad length 22
]


@pytest.mark.parametrize(("body", "expected"), ERRORS, ids=[e[0] for e in ERRORS])
def test_open_errors(body: str, expected: tuple[int, int, str]) -> None:
    with pytest.raises(BGPError) as info:
        Open.decode(hexbytes(body), CTX)
    error = info.value
    assert (error.code, error.subcode, error.data.hex()) == expected


def test_open_longer_than_4096_is_bad_length_even_with_extended_messages() -> None:
    with pytest.raises(BGPError) as info:
        Open.decode(bytes(4078), CodecContext(extended_message=True))
    assert (info.value.code, info.value.subcode, info.value.data) == (1, 2, b"\x10\x01")


@pytest.mark.parametrize(
    "body",
    [
        "04 fde9 0000 0a000001 00",  # hold time 0: no keepalives
        "04 fde9 0003 0a000001 00",  # hold time 3: the smallest non-zero
        "04 fde9 00b4 e0000001 00",  # RFC 6286: a multicast-looking ID is a valid ID
        "04 fde9 00b4 ffffffff 00",
        BODY + "08 0206 0901 03 0901 03",  # the same role twice
        BODY + "02 0200",  # an empty Capabilities parameter
    ],
)
def test_open_accepted(body: str) -> None:
    message = Open.decode(hexbytes(body), CTX)
    assert message.encode(CTX)[19:] == hexbytes(body)


def test_repeated_capabilities_are_all_kept() -> None:
    message = decode(ONE_PER_PARAMETER)
    assert message.capabilities_of(Multiprotocol) == (
        Multiprotocol(family=IPV4_UNICAST),
        Multiprotocol(family=IPV6_UNICAST),
    )


def test_json() -> None:
    message = decode(ALL_IN_ONE_PARAMETER)
    assert message.to_json() == {
        "type": "OPEN",
        "version": 4,
        "my_as": 23456,
        "asn": 4200000001,
        "hold_time": 240,
        "bgp_id": "192.0.2.1",
        "extended_params": False,
        "optional_parameters": [
            {
                "capabilities": [
                    {"code": 1, "name": "multiprotocol", "family": "ipv4-unicast"},
                    {"code": 2, "name": "route-refresh"},
                    {"code": 65, "name": "four-octet-as", "asn": 4200000001},
                    {"code": 6, "name": "extended-message"},
                    {"code": 9, "name": "bgp-role", "role": "peer"},
                ]
            }
        ],
    }


@pytest.mark.parametrize(
    "wire",
    [ONE_PER_PARAMETER, ALL_IN_ONE_PARAMETER, EXTENDED_FORMAT, EXTENDED_FORMAT_ODD_LENGTH],
)
def test_json_round_trip_is_byte_exact(wire: bytes) -> None:
    text = json.dumps(decode(wire).to_json())
    assert Open.from_json(json.loads(text)).encode(CTX) == wire


def test_from_json_derives_my_as_from_asn() -> None:
    obj: dict[str, object] = {"asn": 4200000001, "hold_time": 90, "bgp_id": "10.0.0.1"}
    assert Open.from_json(obj).my_as == 23456


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"hold_time": None}, "hold_time"),
        ({"hold_time": 70000}, "hold_time"),
        ({"bgp_id": "10.0.0"}, "bgp_id"),
        ({"bgp_id": 167772161}, "bgp_id"),
        ({"my_as": -1}, "my_as"),
        ({"version": 3}, "version"),
        ({"type": "UPDATE"}, "type"),
        ({"extended_params": "yes"}, "extended_params"),
        ({"non_ext_op_len": 0}, "non_ext_op_len"),
        ({"optional_parameters": [{"caps": []}]}, "capabilities"),
        ({"optional_parameters": [{"capabilities": [{"code": 65}]}]}, "asn"),
    ],
)
def test_from_bad_json_names_the_field(change: dict[str, object], field: str) -> None:
    obj = decode(ALL_IN_ONE_PARAMETER).to_json() | change
    obj = {key: value for key, value in obj.items() if value is not None}
    with pytest.raises(ValueError, match=field):
        Open.from_json(obj)


@given(st.binary(max_size=600))
def test_decoding_arbitrary_bytes_raises_only_bgp_error(body: bytes) -> None:
    try:
        message = Open.decode(body, CTX)
    except BGPError:
        return
    assert message.encode(CTX)[19:] == body  # whatever is accepted re-encodes exactly


@given(st.binary(min_size=1, max_size=600))
def test_decoding_arbitrary_parameters_raises_only_bgp_error(params: bytes) -> None:
    try:
        message = Open.decode(hexbytes(BODY) + params, CTX)
    except BGPError as exc:
        assert exc.code == 2
    else:
        assert message.encode(CTX)[19:] == hexbytes(BODY) + params


@given(open_messages())
def test_open_round_trips(message: Open) -> None:
    wire = message.encode(CTX)
    assert decode(wire) == message
    assert Open.from_json(json.loads(json.dumps(message.to_json()))) == message
