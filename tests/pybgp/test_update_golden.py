"""Golden UPDATE vectors (fixtures/bgp/golden/update-*.json), written by hand from the RFC
layouts: decode(hex) == json and encode(json) == hex. Plus the RFC 6793 §4.2.3 AS path merge
from a 2-octet peer and the §4.2.2 split toward one.

A vector file: {"name", "rfc", "context": {"asn4", "ibgp", "addpath": [families],
optionally "confederation", "peer_asn"}, "hex" (whitespace between fields is ignored),
"json" (what `pybgp decode` prints)}.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pybgp.codec_cli import decode_to_json, encode_from_json
from pybgp.wire import aspath
from pybgp.wire.constants import AS_TRANS, HEADER_LEN, Family
from pybgp.wire.context import CodecContext
from pybgp.wire.header import check_header
from pybgp.wire.message import decode_message, message_from_json
from pybgp.wire.outbound import for_peer
from pybgp.wire.pathattrs import PathAttributes
from pybgp.wire.update import Update

GOLDEN = Path(__file__).resolve().parents[2] / "fixtures" / "bgp" / "golden"
VECTORS = sorted(GOLDEN.glob("update-*.json"))
SEQ, SET, CONFED_SEQ, CONFED_SET = 2, 1, 3, 4


def load(path: Path) -> dict[str, Any]:
    vector: dict[str, Any] = json.loads(path.read_text())
    return vector


def wire(vector: dict[str, Any]) -> bytes:
    return bytes.fromhex("".join(vector["hex"].split()))


def context(vector: dict[str, Any]) -> CodecContext:
    ctx = vector["context"]
    families = frozenset(Family.from_name(name) for name in ctx.get("addpath", []))
    return CodecContext(
        asn4=ctx["asn4"],
        ibgp=ctx["ibgp"],
        confederation=ctx.get("confederation", False),
        peer_asn=ctx.get("peer_asn"),
        addpath_rx=families,
        addpath_tx=families,
    )


def by_name(path: Path) -> str:
    return path.stem


def test_there_is_a_vector_for_every_attribute() -> None:
    shown: set[str] = set()
    for path in VECTORS:
        obj = load(path)["json"]
        shown |= set(obj["attributes"]) | {"end_of_rib"} & set(obj)
    expected = {
        "origin", "as_path", "next_hop", "med", "local_pref", "atomic_aggregate",
        "aggregator", "communities", "originator_id", "cluster_list", "mp_reach_nlri",
        "mp_unreach_nlri", "extended_communities", "as4_path", "as4_aggregator",
        "large_communities", "otc", "end_of_rib",
    }  # fmt: skip
    assert expected <= shown
    assert any(name.startswith("attr_") for name in shown)


@pytest.mark.parametrize("path", VECTORS, ids=by_name)
def test_vector_lengths_add_up(path: Path) -> None:
    """The hand-written hex is self-consistent (checked without the codec): header length,
    withdrawn routes length, total path attribute length and each attribute's length."""
    vector = load(path)
    data = wire(vector)
    assert vector["name"] == path.stem and vector["rfc"].startswith("RFC")
    assert data[:16] == b"\xff" * 16 and data[18] == 2
    assert int.from_bytes(data[16:18], "big") == len(data)
    body = data[HEADER_LEN:]
    wlen = int.from_bytes(body[0:2], "big")
    alen = int.from_bytes(body[2 + wlen : 4 + wlen], "big")
    assert 4 + wlen + alen <= len(body)
    attributes, pos = body[4 + wlen : 4 + wlen + alen], 0
    while pos < alen:
        flags = attributes[pos]
        if flags & 0x10:
            pos += 4 + int.from_bytes(attributes[pos + 2 : pos + 4], "big")
        else:
            pos += 3 + attributes[pos + 2]
    assert pos == alen


# update-mp-reach-and-mp-unreach guards a fixed bug: with both MP attributes present,
# encode(decode(x)) once put MP_UNREACH_NLRI before MP_REACH_NLRI.


@pytest.mark.parametrize("path", VECTORS, ids=by_name)
def test_decode_gives_the_json(path: Path) -> None:
    vector = load(path)
    data, ctx = wire(vector), context(vector)
    msg_type, length = check_header(data[:HEADER_LEN], ctx)
    assert length == len(data)
    message = decode_message(msg_type, data[HEADER_LEN:], ctx)
    assert isinstance(message, Update) and message.problem is None
    shown = message.to_json()
    assert shown == vector["json"]
    assert list(shown["attributes"]) == list(vector["json"]["attributes"])  # wire order
    assert decode_to_json(data, ctx) == [vector["json"]]  # what `pybgp decode` prints


@pytest.mark.parametrize("path", VECTORS, ids=by_name)
def test_encode_gives_the_hex(path: Path) -> None:
    vector = load(path)
    data, ctx = wire(vector), context(vector)
    assert message_from_json(vector["json"], ctx).encode(ctx).hex() == data.hex()
    assert encode_from_json(json.dumps(vector["json"]), ctx) == [data]  # `pybgp encode`


@pytest.mark.parametrize("path", VECTORS, ids=by_name)
def test_decoded_vector_re_encodes_byte_for_byte(path: Path) -> None:
    vector = load(path)
    data, ctx = wire(vector), context(vector)
    assert Update.decode(data[HEADER_LEN:], ctx).encode(ctx).hex() == data.hex()


def test_end_of_rib_markers() -> None:
    ctx = CodecContext(ibgp=True)
    v4 = Update.decode(wire(load(GOLDEN / "update-end-of-rib-ipv4.json"))[HEADER_LEN:], ctx)
    v6 = Update.decode(wire(load(GOLDEN / "update-end-of-rib-ipv6.json"))[HEADER_LEN:], ctx)
    withdrawal = load(GOLDEN / "update-mp-unreach-ipv6.json")
    not_eor = Update.decode(wire(withdrawal)[HEADER_LEN:], ctx)
    assert (v4.end_of_rib(), v6.end_of_rib(), not_eor.end_of_rib()) == (
        Family(1, 1),
        Family(2, 1),
        None,
    )


# ---------------------------------------------------------------------------------------------
# RFC 6793 §4.2.3: the AS path from a 2-octet peer, AS_PATH merged with AS4_PATH

OLD_PEER = CodecContext(asn4=False, ibgp=True)


def path_json(path: aspath.AsPath) -> list[dict[str, object]]:
    return aspath.as_path_to_json(path)


def as_path_from_old_peer(
    as_path: aspath.AsPath,
    as4_path: aspath.AsPath | None,
    aggregator: tuple[int, int] | None = None,
) -> aspath.AsPath:
    """PathAttributes.as_path of an UPDATE a 2-octet peer sent with these attributes
    (`aggregator`: (AGGREGATOR AS, AS4_AGGREGATOR AS))."""
    attributes: dict[str, Any] = {"origin": "igp", "as_path": path_json(as_path)}
    attributes["next_hop"] = "192.0.2.1"
    if aggregator is not None:
        attributes["aggregator"] = {"asn": aggregator[0], "address": "192.0.2.9"}
    if as4_path is not None:
        attributes["as4_path"] = path_json(as4_path)
    if aggregator is not None:
        attributes["as4_aggregator"] = {"asn": aggregator[1], "address": "192.0.2.9"}
    message = Update.from_json({"attributes": attributes, "nlri": ["10.0.0.0/24"]}, OLD_PEER)
    decoded = Update.decode(message.encode(OLD_PEER)[HEADER_LEN:], OLD_PEER)
    assert decoded.problem is None and decoded.attributes is not None
    return decoded.attributes.as_path


def flat(path: aspath.AsPath) -> aspath.AsPath:
    """`path` with adjacent AS_SEQUENCE segments joined (the same path, RFC 4271 §5.1.2)."""
    out: list[aspath.Segment] = []
    for seg_type, asns in path:
        if out and seg_type == SEQ and out[-1][0] == SEQ:
            out[-1] = (SEQ, out[-1][1] + asns)
        else:
            out.append((seg_type, asns))
    return tuple(out)


BIG1, BIG2, BIG3 = 4200000001, 4200000002, 4200000003
MERGES = {
    # name: (AS_PATH, AS4_PATH, the true path)
    "no AS4_PATH": (((SEQ, (65001, 65002)),), None, ((SEQ, (65001, 65002)),)),
    "AS4_PATH covers the whole path": (
        ((SEQ, (AS_TRANS, AS_TRANS)),),
        ((SEQ, (BIG1, BIG2)),),
        ((SEQ, (BIG1, BIG2)),),
    ),
    "leading AS numbers from AS_PATH": (
        ((SEQ, (65001, 65002, AS_TRANS, AS_TRANS)),),
        ((SEQ, (BIG1, BIG2)),),
        ((SEQ, (65001, 65002, BIG1, BIG2)),),
    ),
    "AS_SET counts one": (
        ((SEQ, (65001, AS_TRANS)), (SET, (64512, AS_TRANS, 64513))),
        ((SEQ, (BIG1,)), (SET, (64512, BIG2, 64513))),
        ((SEQ, (65001, BIG1)), (SET, (64512, BIG2, 64513))),
    ),
    "leading AS_SET kept whole": (
        ((SET, (64512, 64513)), (SEQ, (AS_TRANS,))),
        ((SEQ, (BIG1,)),),
        ((SET, (64512, 64513)), (SEQ, (BIG1,))),
    ),
    "confederation segments count zero and stay": (
        ((CONFED_SEQ, (65010, 65011)), (SEQ, (AS_TRANS,))),
        ((SEQ, (BIG1,)),),
        ((CONFED_SEQ, (65010, 65011)), (SEQ, (BIG1,))),
    ),
    "AS4_PATH longer than AS_PATH is ignored": (
        ((SEQ, (65001,)),),
        ((SEQ, (BIG1, BIG2)),),
        ((SEQ, (65001,)),),
    ),
    "AS4_PATH longer by an AS_SET is ignored": (
        ((SEQ, (65001, AS_TRANS)),),
        ((SEQ, (65001, BIG1)), (SET, (BIG2, BIG3))),
        ((SEQ, (65001, AS_TRANS)),),
    ),
}


@pytest.mark.parametrize("name", list(MERGES))
def test_as4_path_merge(name: str) -> None:
    as_path, as4_path, expected = MERGES[name]
    assert flat(aspath.merge_as4_path(as_path, as4_path)) == expected
    assert flat(as_path_from_old_peer(as_path, as4_path)) == expected


def test_as4_path_merge_keeps_one_sequence() -> None:
    # Regression (bug E, fixed): AS numbers taken from AS_PATH are put in front of AS4_PATH as a segment
    # of their own: 65001 + [4200000001 4200000002] comes out as two AS_SEQUENCE segments
    # instead of one, so the same path is a different value (and different wire bytes toward
    # 4-octet peers, and a different interned attribute set) depending on the peer it came from.
    merged = aspath.merge_as4_path(((SEQ, (65001, AS_TRANS, AS_TRANS)),), ((SEQ, (BIG1, BIG2)),))
    assert merged == ((SEQ, (65001, BIG1, BIG2)),)


def test_as4_path_ignored_when_aggregator_is_not_as_trans() -> None:
    """§4.2.3: AGGREGATOR with an AS other than AS_TRANS beside AS4_AGGREGATOR: the route was
    aggregated by a 2-octet speaker after the AS4_PATH was written; AS4_PATH is ignored."""
    as_path, as4_path = ((SEQ, (65001, AS_TRANS)),), ((SEQ, (65001, BIG1)),)
    assert as_path_from_old_peer(as_path, as4_path, (65000, BIG2)) == as_path
    assert as_path_from_old_peer(as_path, as4_path, (AS_TRANS, BIG2)) == as4_path


def test_golden_as4_path_vector_merges() -> None:
    vector = load(GOLDEN / "update-as4-path-as4-aggregator.json")
    update = Update.decode(wire(vector)[HEADER_LEN:], context(vector))
    assert update.attributes is not None
    assert update.attributes.as_path == ((SEQ, (65001, BIG1, BIG2)),)


def test_as4_path_from_a_4_octet_peer_is_discarded() -> None:
    """§4.1: AS4_PATH from a NEW speaker is discarded and the UPDATE processed on."""
    ctx = CodecContext(asn4=True, ibgp=True)
    attrs = "40 01 01 00  40 02 06 02 01 0000fde9  40 03 04 c0000201  c0 11 06 02 01 fa56ea01"
    raw = bytes.fromhex("".join(attrs.split()))
    body = b"\x00\x00" + len(raw).to_bytes(2, "big") + raw + bytes.fromhex("180a0000")
    update = Update.decode(body, ctx)
    assert update.problem is not None and update.problem.attribute == "as4_path"
    assert update.attributes is not None
    assert update.attributes.as_path == ((SEQ, (65001,)),)
    assert "as4_path" not in update.to_json()["attributes"]


# ---------------------------------------------------------------------------------------------
# RFC 6793 §4.2.2: the path toward a 2-octet peer

SPLITS = {
    # name: (path, AS_PATH sent, AS4_PATH sent or None)
    "all 2-octet: no AS4_PATH": (
        ((SEQ, (65001, 65002)), (SET, (1, 2))),
        ((SEQ, (65001, 65002)), (SET, (1, 2))),
        None,
    ),
    "4-octet AS numbers become AS_TRANS": (
        ((SEQ, (65001, BIG1)), (SET, (BIG2, 2))),
        ((SEQ, (65001, AS_TRANS)), (SET, (AS_TRANS, 2))),
        ((SEQ, (65001, BIG1)), (SET, (BIG2, 2))),
    ),
    "confederation segments stay out of AS4_PATH": (
        ((CONFED_SEQ, (BIG3,)), (CONFED_SET, (65010,)), (SEQ, (BIG1,))),
        ((CONFED_SEQ, (AS_TRANS,)), (CONFED_SET, (65010,)), (SEQ, (AS_TRANS,))),
        ((SEQ, (BIG1,)),),
    ),
}


@pytest.mark.parametrize("name", list(SPLITS))
def test_split_as4_path(name: str) -> None:
    path, two, four = SPLITS[name]
    assert aspath.split_as4_path(path) == (two, four)
    assert aspath.merge_as4_path(two, four) == tuple(
        (t, tuple(AS_TRANS if t >= CONFED_SEQ and a > 0xFFFF else a for a in asns))
        for t, asns in path
    )


def test_split_as4_path_without_an_empty_as4_path() -> None:
    # Regression (bug C, fixed): a path whose only 4-octet AS numbers are in confederation segments gives an
    # empty AS4_PATH, ((), not None); pybgp.wire.outbound.for_peer then sends an AS4_PATH of
    # length 0, which the 2-octet peer (pybgp itself included) judges malformed and discards
    # (RFC 7606 attribute discard, logged as an error). Nothing needs an AS4_PATH here.
    path = ((CONFED_SEQ, (BIG3,)),)
    assert aspath.split_as4_path(path) == (((CONFED_SEQ, (AS_TRANS,)),), None)


def test_split_as4_path_result_is_accepted_by_a_2_octet_peer() -> None:
    # Regression (bug C, fixed), as the peer sees it: the UPDATE carries an AS4_PATH it must discard.
    ours = PathAttributes.build({1: 0, 2: ((CONFED_SEQ, (BIG3,)),), 3: "192.0.2.1"})
    sent = for_peer(ours, CodecContext(asn4=False, ibgp=True)).raw
    body = b"\x00\x00" + len(sent).to_bytes(2, "big") + sent + bytes.fromhex("180a0000")
    assert Update.decode(body, CodecContext(asn4=False, ibgp=True)).problem is None
