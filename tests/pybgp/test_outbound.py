"""Building UPDATEs to send: packing, End-of-RIB, attributes as a given peer sees them."""

from __future__ import annotations

import pytest

from pybgp.wire.constants import AS_TRANS, IPV4_UNICAST, IPV6_UNICAST, PARTIAL, AttrType
from pybgp.wire.context import CodecContext
from pybgp.wire.header import split_messages
from pybgp.wire.nlri import nlri_from_str
from pybgp.wire.outbound import end_of_rib, for_peer, pack_announcements, pack_withdrawals
from pybgp.wire.pathattrs import PathAttributes
from pybgp.wire.update import Update

CTX = CodecContext(ibgp=True)
ATTRS = PathAttributes.build(
    {AttrType.ORIGIN: 0, AttrType.AS_PATH: ((2, (65001, 4200000001)),), AttrType.LOCAL_PREF: 100}
)


def decode_all(stream: bytes, ctx: CodecContext = CTX) -> list[Update]:
    return [Update.decode(body, ctx) for _, body in split_messages(bytearray(stream), ctx)]


def v4_prefixes(count: int) -> list[bytes]:
    return [nlri_from_str(f"10.{i >> 8}.{i & 255}.0/24", IPV4_UNICAST) for i in range(count)]


def test_ipv4_prefixes_fill_messages_to_the_limit() -> None:
    prefixes = v4_prefixes(5000)
    messages = pack_announcements(ATTRS, IPV4_UNICAST, "192.0.2.1", prefixes, CTX)
    assert all(len(m) <= 4096 for m in messages)
    per_message = (4096 - 23 - len(ATTRS.raw) - 7) // 4
    assert len(messages) == -(-5000 // per_message)  # as few as the size allows
    updates = decode_all(b"".join(messages))
    assert [k for u in updates for k in u.nlri] == prefixes
    assert all(u.attributes is not None and u.attributes.next_hop == "192.0.2.1" for u in updates)
    assert all(u.problem is None for u in updates)


def test_extended_message_allows_bigger_updates() -> None:
    ctx = CodecContext(ibgp=True, extended_message=True)
    messages = pack_announcements(ATTRS, IPV4_UNICAST, "192.0.2.1", v4_prefixes(5000), ctx)
    assert len(messages) == 1 and 4096 < len(messages[0]) <= 65535


def test_ipv6_goes_in_mp_reach_first() -> None:
    prefixes = [nlri_from_str(f"2001:db8:{i:x}::/48", IPV6_UNICAST) for i in range(2000)]
    messages = pack_announcements(ATTRS, IPV6_UNICAST, "2001:db8::1", prefixes, CTX)
    assert all(len(m) <= 4096 for m in messages) and len(messages) > 1
    for message in messages:
        assert message[23 + 1] == AttrType.MP_REACH_NLRI  # first attribute after the lengths
    updates = decode_all(b"".join(messages))
    assert [k for u in updates for k in u.mp_reach.nlri] == prefixes  # type: ignore[union-attr]
    assert {u.mp_reach.next_hops for u in updates} == {("2001:db8::1",)}  # type: ignore[union-attr]


def test_ipv4_with_ipv6_next_hop_uses_mp_reach() -> None:
    messages = pack_announcements(ATTRS, IPV4_UNICAST, "2001:db8::1", v4_prefixes(3), CTX)
    (update,) = decode_all(b"".join(messages))
    assert update.mp_reach is not None and update.mp_reach.family == IPV4_UNICAST
    assert update.mp_reach.next_hops == ("2001:db8::1",) and not update.nlri


@pytest.mark.parametrize("family", [IPV4_UNICAST, IPV6_UNICAST])
def test_withdrawals_and_end_of_rib(family: object) -> None:
    prefixes = (
        v4_prefixes(3000)
        if family == IPV4_UNICAST
        else [nlri_from_str(f"2001:db8:{i:x}::/48", IPV6_UNICAST) for i in range(3000)]
    )
    updates = decode_all(b"".join(pack_withdrawals(family, prefixes, CTX)))  # type: ignore[arg-type]
    got = [k for u in updates for k in (u.withdrawn or u.mp_unreach.nlri)]  # type: ignore[union-attr]
    assert got == prefixes
    (eor,) = decode_all(end_of_rib(family))  # type: ignore[arg-type]
    assert eor.end_of_rib() == family


def test_addpath_keys_travel_as_given() -> None:
    ctx = CodecContext(
        ibgp=True, addpath_rx=frozenset({IPV4_UNICAST}), addpath_tx=frozenset({IPV4_UNICAST})
    )
    keys = [nlri_from_str("10.0.0.0/24", IPV4_UNICAST, path_id) for path_id in (1, 2)]
    (update,) = decode_all(
        b"".join(pack_announcements(ATTRS, IPV4_UNICAST, "192.0.2.1", keys, ctx)), ctx
    )
    assert update.nlri == tuple(keys)


def test_for_two_octet_peer_uses_as_trans_and_as4_path() -> None:
    old = CodecContext(ibgp=False, asn4=False)
    attrs = PathAttributes.build(
        {
            AttrType.ORIGIN: 0,
            AttrType.AS_PATH: ((2, (4200000001, 65001)),),
            AttrType.AGGREGATOR: (4200000001, "192.0.2.7"),
        }
    )
    sent = for_peer(attrs, old)
    values = sent.values
    assert values[AttrType.AS_PATH] == ((2, (AS_TRANS, 65001)),)
    assert values[AttrType.AS4_PATH] == ((2, (4200000001, 65001)),)
    assert values[AttrType.AGGREGATOR] == (AS_TRANS, "192.0.2.7")
    assert values[AttrType.AS4_AGGREGATOR] == (4200000001, "192.0.2.7")
    assert sent.as_path == attrs.as_path  # and back (RFC 6793 §4.2.3)


def test_for_two_octet_peer_small_asns_need_no_as4_path() -> None:
    attrs = PathAttributes.build({AttrType.ORIGIN: 0, AttrType.AS_PATH: ((2, (65001,)),)})
    sent = for_peer(attrs, CodecContext(asn4=False))
    assert AttrType.AS4_PATH not in sent and sent.values[AttrType.AS_PATH] == ((2, (65001,)),)


def test_unknown_attributes_when_passed_on() -> None:
    transitive = bytes((0xC0, 99, 2)) + b"ab"
    non_transitive = bytes((0x80, 98, 2)) + b"cd"
    attrs = PathAttributes(ATTRS.raw + transitive + non_transitive)
    sent = for_peer(attrs, CTX)
    flags = {code: f for f, code, _ in sent.tlvs()}
    assert flags[99] & PARTIAL and 98 not in flags


def test_as4_path_ignored_when_aggregator_is_a_real_two_octet_as() -> None:
    # RFC 6793 §4.2.3: AGGREGATOR not AS_TRANS while AS4_AGGREGATOR present: use AS_PATH.
    raw = (
        bytes((0x40, 1, 1, 0))
        + bytes((0x40, 2, 4, 2, 1)) + (65010).to_bytes(2, "big")
        + bytes((0xC0, 7, 6)) + (65010).to_bytes(2, "big") + bytes((192, 0, 2, 1))
        + bytes((0xC0, 17, 6, 2, 1)) + (4200000001).to_bytes(4, "big")
        + bytes((0xC0, 18, 8)) + (4200000001).to_bytes(4, "big") + bytes((192, 0, 2, 1))
    )  # fmt: skip
    assert PathAttributes(raw, asn4=False).as_path == ((2, (65010,)),)
