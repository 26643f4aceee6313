"""One test per RFC 7606 rule (§3, §4, §5 and each attribute of §7), plus RFC 7607,
RFC 6793 §6, RFC 8092 §6 and RFC 9234 §5: the verdict and the NOTIFICATION it names."""

from __future__ import annotations

import pytest

from pybgp.wire.constants import IPV6_UNICAST
from pybgp.wire.context import CodecContext
from pybgp.wire.errors import Action, MalformedUpdate
from pybgp.wire.update import Update

IBGP = CodecContext(ibgp=True)
EBGP = CodecContext(ibgp=False, peer_asn=65001)
OLD_EBGP = CodecContext(ibgp=False, asn4=False)


def attr(flags: int, code: int, value: bytes) -> bytes:
    if flags & 0x10:
        return bytes((flags, code)) + len(value).to_bytes(2, "big") + value
    return bytes((flags, code, len(value))) + value


ORIGIN = attr(0x40, 1, b"\x00")
AS_PATH = attr(0x40, 2, b"\x02\x01" + (65001).to_bytes(4, "big"))
NEXT_HOP = attr(0x40, 3, bytes((192, 0, 2, 1)))
MANDATORY = ORIGIN + AS_PATH + NEXT_HOP
NLRI = bytes((24, 10, 0, 1, 24, 10, 0, 2))


def body(attributes: bytes, nlri: bytes = NLRI, withdrawn: bytes = b"") -> bytes:
    return (
        len(withdrawn).to_bytes(2, "big")
        + withdrawn
        + len(attributes).to_bytes(2, "big")
        + attributes
        + nlri
    )


def verdict(data: bytes, ctx: CodecContext = IBGP) -> tuple[str, int, int, str | None]:
    """(action, code, subcode, attribute) of the strongest problem; ("ok", 0, 0, None) if none."""
    try:
        update = Update.decode(data, ctx)
    except MalformedUpdate as exc:
        p = exc.problem
        return str(p.action), p.code, p.subcode, p.attribute
    if update.problem is None:
        return "ok", 0, 0, None
    p = update.problem
    return str(p.action), p.code, p.subcode, p.attribute


def withdrawn_everything(data: bytes, ctx: CodecContext = IBGP) -> bool:
    update = Update.decode(data, ctx)
    return (
        update.problem is not None
        and update.problem.action == Action.TREAT_AS_WITHDRAW
        and not update.nlri
        and update.mp_reach is None
        and update.attributes is None
        and set(update.withdrawn) >= {NLRI[:4], NLRI[4:]}
    )


def test_well_formed_update_has_no_problem() -> None:
    assert verdict(body(MANDATORY)) == ("ok", 0, 0, None)
    assert verdict(body(MANDATORY), EBGP) == ("ok", 0, 0, None)


# §3 (b): Withdrawn Routes Length + Total Attribute Length + 23 > message length.
def test_3b_lengths_overrun_message_resets() -> None:
    data = body(MANDATORY)
    too_long = data[:2] + b"\x00\x01" + data[4:]  # attribute length one past... shifted
    assert verdict(b"\x00\x50" + data[2:])[0:3] == ("session-reset", 3, 1)
    assert verdict(data[:2] + (len(MANDATORY) + 99).to_bytes(2, "big") + data[4:])[0:3] == (
        "session-reset",
        3,
        1,
    )
    assert too_long  # the body stays constructible


# §3 (c): Optional/Transitive bits in conflict -> treat-as-withdraw.
def test_3c_wrong_flags_treat_as_withdraw() -> None:
    bad_origin = attr(0xC0, 1, b"\x00")  # well-known marked optional
    data = body(bad_origin + AS_PATH + NEXT_HOP)
    assert verdict(data) == ("treat-as-withdraw", 3, 4, "origin")
    assert withdrawn_everything(data)


def test_3c_extended_length_bit_is_not_an_error() -> None:
    extended = attr(0x50, 1, b"\x00")  # extended length on a 1-octet value
    assert verdict(body(extended + AS_PATH + NEXT_HOP)) == ("ok", 0, 0, None)


def test_3c_partial_bit_only_on_optional_transitive() -> None:
    """RFC 4271 §4.3; every attribute: tests/pybgp/test_attribute_flags.py."""
    partial_origin = attr(0x60, 1, b"\x00")
    assert verdict(body(partial_origin + AS_PATH + NEXT_HOP)) == (
        "treat-as-withdraw",
        3,
        4,
        "origin",
    )
    partial_communities = attr(0xE0, 8, b"\xfd\xe9\x00\x01")
    assert verdict(body(MANDATORY + partial_communities)) == ("ok", 0, 0, None)


# §3 (d): a missing well-known mandatory attribute -> treat-as-withdraw.
@pytest.mark.parametrize(
    ("attributes", "missing"),
    [
        (AS_PATH + NEXT_HOP, "origin"),
        (ORIGIN + NEXT_HOP, "as_path"),
        (ORIGIN + AS_PATH, "next_hop"),
    ],
)
def test_3d_missing_mandatory_treat_as_withdraw(attributes: bytes, missing: str) -> None:
    assert verdict(body(attributes)) == ("treat-as-withdraw", 3, 3, missing)


def test_3d_withdraw_only_update_needs_no_attributes() -> None:
    update = Update.decode(body(b"", nlri=b"", withdrawn=NLRI), IBGP)
    assert update.problem is None and update.withdrawn == (NLRI[:4], NLRI[4:])


def test_3d_mp_reach_only_needs_no_next_hop() -> None:
    nh = bytes(15) + b"\x01"
    mp = attr(0x80, 14, b"\x00\x02\x01\x10" + nh + b"\x00" + bytes((32, 0x20, 0x01, 0x0D, 0xB8)))
    update = Update.decode(body(mp + ORIGIN + AS_PATH, nlri=b""), IBGP)
    assert update.problem is None and update.mp_reach is not None
    assert update.mp_reach.family == IPV6_UNICAST


# §3 (f): an error in AGGREGATOR or ATOMIC_AGGREGATE -> attribute discard.
def test_3f_aggregator_errors_discard() -> None:
    bad = attr(0xC0, 7, b"\x00\x01\x02")
    update = Update.decode(body(MANDATORY + bad), IBGP)
    assert update.problem is not None and update.problem.action == Action.ATTRIBUTE_DISCARD
    assert update.nlri and update.attributes is not None and 7 not in update.attributes


# §3 (g): duplicates.
def test_3g_duplicate_attribute_keeps_the_first() -> None:
    second = attr(0x40, 1, b"\x02")
    update = Update.decode(body(MANDATORY + second), IBGP)
    assert update.problem is None and update.attributes is not None
    assert update.attributes.origin == 0
    assert update.attributes.raw == MANDATORY


def test_3g_duplicate_mp_reach_resets() -> None:
    mp = attr(0x80, 14, b"\x00\x02\x01\x10" + bytes(15) + b"\x01\x00")
    assert verdict(body(ORIGIN + AS_PATH + mp + mp, nlri=b""))[0:3] == ("session-reset", 3, 1)


# §3 (h): several problems -> the strongest wins.
def test_3h_strongest_verdict_wins() -> None:
    discard = attr(0x40, 6, b"\x01")  # ATOMIC_AGGREGATE with a value: discard
    withdraw = attr(0x80, 4, b"\x01")  # MED of one octet: treat-as-withdraw
    assert verdict(body(MANDATORY + discard + withdraw))[0] == "treat-as-withdraw"


# §3 (j) / §5.3: NLRI that cannot be parsed -> session reset (3/10).
def test_5_3_bad_prefix_length_resets() -> None:
    assert verdict(body(MANDATORY, nlri=bytes((33, 10, 0, 0, 0, 1))))[0:3] == (
        "session-reset",
        3,
        10,
    )
    assert verdict(body(MANDATORY, nlri=bytes((24, 10, 0))))[0:3] == ("session-reset", 3, 10)
    assert verdict(body(b"", nlri=b"", withdrawn=bytes((40,))))[0:3] == ("session-reset", 3, 10)


# §4: an attribute overrunning the attribute field, or a truncated header -> treat-as-withdraw.
def test_4_attribute_overrun_treat_as_withdraw() -> None:
    overrun = bytes((0x80, 4, 10)) + b"\x00\x00"
    assert verdict(body(MANDATORY + overrun))[0] == "treat-as-withdraw"
    assert verdict(body(MANDATORY + b"\x80\x04"))[0] == "treat-as-withdraw"


# §4: zero length is a syntax error for all but AS_PATH and ATOMIC_AGGREGATE.
def test_4_zero_length() -> None:
    empty_path = attr(0x40, 2, b"")
    assert verdict(body(ORIGIN + empty_path + NEXT_HOP)) == ("ok", 0, 0, None)
    assert verdict(body(MANDATORY + attr(0xC0, 8, b"")))[0] == "treat-as-withdraw"


# §5.2: attributes but no reachable NLRI: anything stronger than discard resets.
def test_5_2_no_nlri_escalates_to_reset() -> None:
    bad_origin = attr(0x40, 1, b"\x07")
    assert verdict(body(bad_origin + AS_PATH + NEXT_HOP, nlri=b""))[0:3] == ("session-reset", 3, 6)
    discard = attr(0x40, 6, b"\x01")
    assert verdict(body(MANDATORY + discard, nlri=b""))[0] == "attribute-discard"


# §7.1 ORIGIN.
def test_7_1_origin() -> None:
    assert verdict(body(attr(0x40, 1, b"\x03") + AS_PATH + NEXT_HOP)) == (
        "treat-as-withdraw",
        3,
        6,
        "origin",
    )
    assert verdict(body(attr(0x40, 1, b"\x00\x00") + AS_PATH + NEXT_HOP))[0] == "treat-as-withdraw"


# §7.2 AS_PATH: malformed segments, RFC 7607 AS 0, confederation segments, first AS.
@pytest.mark.parametrize(
    "value",
    [
        b"\x05\x01\x00\x00\xfd\xe9",  # unknown segment type
        b"\x02\x00",  # empty segment
        b"\x02\x02\x00\x00\xfd\xe9",  # overrun
        b"\x02",  # truncated header
        b"\x02\x01\x00\x00\x00\x00",  # AS 0 (RFC 7607)
    ],
)
def test_7_2_as_path_malformed(value: bytes) -> None:
    data = body(ORIGIN + attr(0x40, 2, value) + NEXT_HOP)
    assert verdict(data) == ("treat-as-withdraw", 3, 11, "as_path")
    assert withdrawn_everything(data)


def test_7_2_confederation_segment_from_external_peer() -> None:
    confed = attr(0x40, 2, b"\x03\x01\x00\x00\xfd\xe8" + b"\x02\x01\x00\x00\xfd\xe9")
    assert verdict(body(ORIGIN + confed + NEXT_HOP), EBGP) == (
        "treat-as-withdraw",
        3,
        11,
        "as_path",
    )
    assert verdict(body(ORIGIN + confed + NEXT_HOP), IBGP) == ("ok", 0, 0, None)


def test_7_2_first_as_must_be_the_peer() -> None:
    other = attr(0x40, 2, b"\x02\x01\x00\x00\xfd\xea")
    assert verdict(body(ORIGIN + other + NEXT_HOP), EBGP) == ("treat-as-withdraw", 3, 11, "as_path")


# §7.3 NEXT_HOP.
@pytest.mark.parametrize("value", [b"\xc0\x00\x02", b"\x00\x00\x00\x00", b"\xe0\x00\x00\x05"])
def test_7_3_next_hop(value: bytes) -> None:
    assert verdict(body(ORIGIN + AS_PATH + attr(0x40, 3, value)))[0] == "treat-as-withdraw"


# §7.4 MULTI_EXIT_DISC.
def test_7_4_med() -> None:
    assert verdict(body(MANDATORY + attr(0x80, 4, b"\x00\x01"))) == (
        "treat-as-withdraw",
        3,
        5,
        "med",
    )


# §7.5 LOCAL_PREF: from an external peer discarded; bad length from internal: withdraw.
def test_7_5_local_pref() -> None:
    lp = attr(0x40, 5, (200).to_bytes(4, "big"))
    update = Update.decode(body(MANDATORY + lp), EBGP)
    assert update.problem is not None and update.problem.action == Action.ATTRIBUTE_DISCARD
    assert update.attributes is not None and update.attributes.local_pref is None and update.nlri
    assert Update.decode(body(MANDATORY + lp), IBGP).attributes.local_pref == 200  # type: ignore[union-attr]
    assert verdict(body(MANDATORY + attr(0x40, 5, b"\x01")))[0] == "treat-as-withdraw"


# §7.6 ATOMIC_AGGREGATE.
def test_7_6_atomic_aggregate() -> None:
    assert verdict(body(MANDATORY + attr(0x40, 6, b"\x01")))[0:2] == ("attribute-discard", 3)
    assert verdict(body(MANDATORY + attr(0x40, 6, b""))) == ("ok", 0, 0, None)


# §7.7 AGGREGATOR, with RFC 7607 AS 0.
def test_7_7_aggregator() -> None:
    good = attr(0xC0, 7, (65001).to_bytes(4, "big") + bytes((192, 0, 2, 9)))
    assert verdict(body(MANDATORY + good)) == ("ok", 0, 0, None)
    two_octet = attr(0xC0, 7, (65001).to_bytes(2, "big") + bytes((192, 0, 2, 9)))
    assert verdict(body(MANDATORY + two_octet))[0] == "attribute-discard"
    zero = attr(0xC0, 7, bytes(4) + bytes((192, 0, 2, 9)))
    assert verdict(body(MANDATORY + zero))[0] == "attribute-discard"


# §7.8 COMMUNITIES.
def test_7_8_communities() -> None:
    assert verdict(body(MANDATORY + attr(0xC0, 8, b"\x00\x01\x00")))[0] == "treat-as-withdraw"


# §7.9 ORIGINATOR_ID and §7.10 CLUSTER_LIST.
def test_7_9_originator_id() -> None:
    oid = attr(0x80, 9, bytes((10, 0, 0, 1)))
    assert verdict(body(MANDATORY + oid), EBGP)[0] == "attribute-discard"
    assert verdict(body(MANDATORY + attr(0x80, 9, b"\x01")))[0] == "treat-as-withdraw"
    assert verdict(body(MANDATORY + oid)) == ("ok", 0, 0, None)


def test_7_10_cluster_list() -> None:
    assert verdict(body(MANDATORY + attr(0x80, 10, b"\x01\x02")))[0] == "treat-as-withdraw"
    assert verdict(body(MANDATORY + attr(0x80, 10, bytes(4))), EBGP)[0] == "attribute-discard"


# §7.11 MP_REACH_NLRI and §7.12 MP_UNREACH_NLRI: AFI/SAFI disable or session reset (3/9).
def test_7_11_mp_reach() -> None:
    bad_nh = attr(0x80, 14, b"\x00\x02\x01\x05" + bytes(5) + b"\x00")
    assert verdict(body(ORIGIN + AS_PATH + bad_nh, nlri=b""))[0:3] == ("afi-safi-disable", 3, 9)
    bad_nlri = attr(0x80, 14, b"\x00\x02\x01\x10" + bytes(16) + b"\x00" + bytes((129,)))
    with pytest.raises(MalformedUpdate) as info:
        Update.decode(body(ORIGIN + AS_PATH + bad_nlri, nlri=b""), IBGP)
    assert info.value.problem.action == Action.AFI_SAFI_DISABLE
    assert info.value.family == IPV6_UNICAST
    short = attr(0x80, 14, b"\x00\x02")
    assert verdict(body(ORIGIN + AS_PATH + short, nlri=b""))[0:3] == ("session-reset", 3, 9)


def test_7_12_mp_unreach() -> None:
    bad = attr(0x80, 15, b"\x00\x02\x01" + bytes((200,)))
    assert verdict(body(bad, nlri=b""))[0:3] == ("afi-safi-disable", 3, 9)


# §7.14 EXTENDED_COMMUNITIES.
def test_7_14_extended_communities() -> None:
    assert verdict(body(MANDATORY + attr(0xC0, 16, bytes(7))))[0] == "treat-as-withdraw"
    assert verdict(body(MANDATORY + attr(0xC0, 16, bytes(8)))) == ("ok", 0, 0, None)


# RFC 8092 §6 LARGE_COMMUNITIES and RFC 9234 §5 OTC.
def test_rfc8092_large_communities() -> None:
    assert verdict(body(MANDATORY + attr(0xC0, 32, bytes(11))))[0] == "treat-as-withdraw"


def test_rfc9234_otc() -> None:
    assert verdict(body(MANDATORY + attr(0xC0, 35, bytes(3))))[0] == "treat-as-withdraw"
    assert verdict(body(MANDATORY + attr(0xC0, 35, bytes(4)))) == ("ok", 0, 0, None)


# RFC 6793 §6: AS4_PATH / AS4_AGGREGATOR malformed (or from a 4-octet speaker) -> discard.
def test_rfc6793_as4_attributes() -> None:
    path2 = attr(0x40, 2, b"\x02\x01" + (23456).to_bytes(2, "big"))
    base = ORIGIN + path2 + NEXT_HOP
    as4 = attr(0xC0, 17, b"\x02\x01" + (4200000001).to_bytes(4, "big"))
    update = Update.decode(body(base + as4), OLD_EBGP)
    assert update.problem is None and update.attributes is not None
    assert update.attributes.as_path == ((2, (4200000001,)),)
    assert verdict(body(base + attr(0xC0, 17, b"\x02\x02\x00")), OLD_EBGP)[0] == "attribute-discard"
    assert (
        verdict(body(base + attr(0xC0, 17, b"\x02\x01" + bytes(4))), OLD_EBGP)[0]
        == "attribute-discard"
    )
    assert verdict(body(MANDATORY + as4))[0] == "attribute-discard"  # from a 4-octet speaker
    agg4 = attr(0xC0, 18, bytes(4) + bytes((192, 0, 2, 1)))
    assert verdict(body(base + agg4), OLD_EBGP)[0] == "attribute-discard"


# RFC 4271 §6.3: an unrecognized well-known attribute still resets (3/2).
def test_unrecognized_well_known_resets() -> None:
    assert verdict(body(MANDATORY + attr(0x40, 99, b"x")))[0:3] == ("session-reset", 3, 2)


def test_unknown_optional_transitive_is_kept() -> None:
    unknown = attr(0xC0, 99, b"xyz")
    update = Update.decode(body(MANDATORY + unknown), IBGP)
    assert update.problem is None and update.attributes is not None
    assert update.attributes.values[99] == b"xyz"


def test_7_2_empty_as_path_from_external_peer() -> None:
    empty = attr(0x40, 2, b"")
    assert verdict(body(ORIGIN + empty + NEXT_HOP), EBGP) == ("treat-as-withdraw", 3, 11, "as_path")
