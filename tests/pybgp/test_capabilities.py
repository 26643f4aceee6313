"""Capabilities (RFC 5492 and the RFC of each): golden vectors, errors, JSON, properties."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pybgp.wire.capabilities import (
    FQDN,
    AddPath,
    AddPathFamily,
    BGPRole,
    Capability,
    EnhancedRouteRefresh,
    ExtendedMessage,
    ExtendedNextHop,
    ExtendedNextHopFamily,
    FourOctetAS,
    GracefulRestart,
    GracefulRestartFamily,
    Multiprotocol,
    RouteRefresh,
    UnknownCapability,
    capability_from_json,
    decode_capabilities,
    encode_capability,
)
from pybgp.wire.constants import IPV4_UNICAST, IPV6_UNICAST, Family
from pybgp.wire.errors import BGPError
from tests.pybgp.strategies import capabilities

# (capability TLV in hex as the RFC lays it out: code, length, value), the object, its JSON.
GOLDEN: list[tuple[str, Capability, dict[str, object]]] = [
    (
        "01 04 0002 00 01",  # RFC 4760 §8: AFI 2, reserved, SAFI 1
        Multiprotocol(family=IPV6_UNICAST),
        {"code": 1, "name": "multiprotocol", "family": "ipv6-unicast"},
    ),
    (
        "01 04 0001 07 80",  # a non-zero reserved octet is kept; SAFI 128 has no name
        Multiprotocol(family=Family(1, 128), reserved=7),
        {"code": 1, "name": "multiprotocol", "family": "afi1-safi128", "reserved": 7},
    ),
    ("02 00", RouteRefresh(), {"code": 2, "name": "route-refresh"}),
    ("46 00", EnhancedRouteRefresh(), {"code": 70, "name": "enhanced-route-refresh"}),
    ("06 00", ExtendedMessage(), {"code": 6, "name": "extended-message"}),
    (
        "41 04 fa56ea01",  # RFC 6793 §3: AS 4200000001
        FourOctetAS(asn=4200000001),
        {"code": 65, "name": "four-octet-as", "asn": 4200000001},
    ),
    (
        # RFC 4724 §3: R and N set (0xc), restart time 120 (0x078); IPv4 unicast with F set,
        # IPv6 unicast without.
        "40 0a c078 0001 01 80 0002 01 00",
        GracefulRestart(
            restart_state=True,
            notification=True,
            restart_time=120,
            families=(
                GracefulRestartFamily(family=IPV4_UNICAST, forwarding_state=True),
                GracefulRestartFamily(family=IPV6_UNICAST, forwarding_state=False),
            ),
        ),
        {
            "code": 64,
            "name": "graceful-restart",
            "restart_state": True,
            "notification": True,
            "restart_time": 120,
            "families": [
                {"family": "ipv4-unicast", "forwarding_state": True},
                {"family": "ipv6-unicast", "forwarding_state": False},
            ],
        },
    ),
    (
        "40 02 0fff",  # no R/N, the largest restart time, no families
        GracefulRestart(restart_time=4095),
        {
            "code": 64,
            "name": "graceful-restart",
            "restart_state": False,
            "notification": False,
            "restart_time": 4095,
            "families": [],
        },
    ),
    (
        "45 08 0001 01 03 0002 01 01",  # RFC 7911 §4: IPv4 both, IPv6 receive
        AddPath(
            families=(
                AddPathFamily(family=IPV4_UNICAST, mode=3),
                AddPathFamily(family=IPV6_UNICAST, mode=1),
            )
        ),
        {
            "code": 69,
            "name": "add-path",
            "families": [
                {"family": "ipv4-unicast", "mode": "both"},
                {"family": "ipv6-unicast", "mode": "receive"},
            ],
        },
    ),
    (
        "05 06 0001 0001 0002",  # RFC 8950 §3: IPv4 unicast NLRI with an IPv6 next hop
        ExtendedNextHop(families=(ExtendedNextHopFamily(family=IPV4_UNICAST, next_hop_afi=2),)),
        {
            "code": 5,
            "name": "extended-next-hop",
            "families": [{"family": "ipv4-unicast", "next_hop_afi": "ipv6"}],
        },
    ),
    (
        "49 07 02 7231 03 6c6162",  # hostname "r1", domain "lab"
        FQDN(hostname="r1", domain="lab"),
        {"code": 73, "name": "fqdn", "hostname": "r1", "domain": "lab"},
    ),
    (
        "49 02 00 00",  # both empty
        FQDN(hostname="", domain=""),
        {"code": 73, "name": "fqdn", "hostname": "", "domain": ""},
    ),
    ("09 01 03", BGPRole(role=3), {"code": 9, "name": "bgp-role", "role": "customer"}),
    ("09 01 07", BGPRole(role=7), {"code": 9, "name": "bgp-role", "role": 7}),
    (
        "80 00",  # Cisco's pre-standard route refresh: kept, not interpreted
        UnknownCapability(code=128),
        {"code": 128, "name": "route-refresh-old", "value": ""},
    ),
    (
        "ee 03 010203",
        UnknownCapability(code=0xEE, value=b"\x01\x02\x03"),
        {"code": 238, "value": "010203"},
    ),
]


@pytest.mark.parametrize(("tlv", "cap", "as_json"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_capability(tlv: str, cap: Capability, as_json: dict[str, object]) -> None:
    wire = bytes.fromhex(tlv)
    assert decode_capabilities(wire) == (cap,)
    assert encode_capability(cap) == wire
    assert cap.to_json() == as_json
    assert capability_from_json(json.loads(json.dumps(as_json))) == cap


def test_several_capabilities_share_one_parameter() -> None:
    wire = bytes.fromhex("0104 0001 000102004104 0000fde9")
    assert decode_capabilities(wire) == (
        Multiprotocol(family=IPV4_UNICAST),
        RouteRefresh(),
        FourOctetAS(asn=65001),
    )


MALFORMED = [
    "01 03 000100",  # Multiprotocol: 3 octets
    "01 05 0001000100",  # Multiprotocol: 5 octets
    "02 01 00",  # route refresh carries nothing
    "46 01 00",
    "06 02 0000",
    "41 02 fde9",  # 4-octet AS in 2 octets
    "40 01 00",  # graceful restart shorter than its 2-octet header
    "40 05 0078 000101",  # a 3-octet family tuple
    "45 03 000101",  # ADD-PATH: a partial tuple
    "05 05 0001000100",  # extended next hop: a partial tuple
    "49 00",  # FQDN: no hostname length
    "49 03 05 7231",  # FQDN: hostname overruns
    "49 03 02 7231",  # FQDN: no domain name length
    "49 05 02 7231 00 ff",  # FQDN: an octet after the domain name
    "09 00",  # role: empty
    "09 02 0303",  # role: 2 octets
    "01",  # a lone capability code
    "02 02 00",  # length past the end of the parameter
]


@pytest.mark.parametrize("tlv", MALFORMED)
def test_malformed_capability_is_open_error_unspecific(tlv: str) -> None:
    with pytest.raises(BGPError) as info:
        decode_capabilities(bytes.fromhex(tlv))
    assert (info.value.code, info.value.subcode, info.value.data) == (2, 0, b"")


def test_fqdn_that_is_not_utf8_is_kept_raw() -> None:
    # The hostname only serves display; one we cannot read is not understood, not fatal.
    wire = bytes.fromhex("49 04 01 ff 01 41")
    (cap,) = decode_capabilities(wire)
    assert cap == UnknownCapability(code=73, value=bytes.fromhex("01ff0141"))
    assert cap.to_json() == {"code": 73, "name": "fqdn", "value": "01ff0141"}
    assert encode_capability(cap) == wire
    with pytest.raises(BGPError):
        FQDN.decode(bytes.fromhex("01ff0141"))


def test_add_path_with_bad_mode_is_kept_but_not_understood() -> None:
    (cap,) = decode_capabilities(bytes.fromhex("45 04 0001 01 07"))
    assert isinstance(cap, AddPath)
    assert not cap.understood  # RFC 7911 §4: SHOULD be ignored
    assert cap.to_json()["families"] == [{"family": "ipv4-unicast", "mode": 7}]
    assert encode_capability(cap) == bytes.fromhex("45 04 0001 01 07")
    good = AddPathFamily(family=IPV4_UNICAST, mode=3)
    assert AddPath(families=(good,)).understood
    assert good.send and good.receive
    assert not AddPathFamily(family=IPV4_UNICAST, mode=1).send


def test_role_names() -> None:
    names = [BGPRole(role=r).role_name for r in range(6)]
    assert names == ["provider", "rs", "rs-client", "customer", "peer", None]
    assert capability_from_json({"name": "bgp-role", "role": "rs-client"}) == BGPRole(role=2)


def test_capability_from_json_by_name_or_code() -> None:
    assert capability_from_json({"name": "route-refresh"}) == RouteRefresh()
    assert capability_from_json({"code": 6}) == ExtendedMessage()


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"code": 1}, "family"),
        ({"code": 1, "family": "ipv9-unicast"}, "family"),
        ({"code": 1, "family": 1}, "family"),
        ({"code": 65, "asn": "x"}, "asn"),
        ({"code": 65, "asn": 1 << 32}, "asn"),
        ({"code": 64, "restart_time": 5000}, "restart_time"),
        (
            {
                "code": 64,
                "restart_time": 1,
                "families": [{"family": "ipv4-unicast", "forwarding_state": 1}],
            },
            "forwarding_state",
        ),
        ({"code": 69, "families": [{"family": "ipv4-unicast", "mode": "sometimes"}]}, "mode"),
        ({"code": 69, "families": "ipv4-unicast"}, "families"),
        ({"code": 73, "hostname": "x" * 256}, "hostname"),
        ({"code": 9, "role": 256}, "role"),
        ({"code": 200}, "code"),
        ({"name": "teleport"}, "name"),
        ({"code": 200, "value": "zz"}, "value"),
        ({}, "name"),
    ],
)
def test_capability_from_bad_json_names_the_field(obj: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        capability_from_json(obj)


def test_oversized_capability_value_cannot_be_encoded() -> None:
    big = GracefulRestart(
        restart_time=1, families=(GracefulRestartFamily(family=IPV4_UNICAST),) * 64
    )
    with pytest.raises(ValueError, match="over 255"):
        encode_capability(big)


@given(st.binary(max_size=300))
def test_decoding_arbitrary_bytes_raises_only_bgp_error(data: bytes) -> None:
    try:
        decode_capabilities(data)
    except BGPError as exc:
        assert (exc.code, exc.subcode) == (2, 0)


@given(capabilities())
def test_capability_round_trips(cap: Capability) -> None:
    wire = encode_capability(cap)
    assert decode_capabilities(wire) == (cap,)
    assert capability_from_json(json.loads(json.dumps(cap.to_json()))) == cap
