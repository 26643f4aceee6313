"""UPDATE properties (hypothesis): round trips through bytes, JSON and the CLI functions; no
untyped exception on any input; RFC 7606 verdicts leave a consistent UPDATE behind; a byte
stream splits the same way whatever chunks it arrives in."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pybgp.codec_cli import UsageError, decode_to_json, encode_from_json
from pybgp.wire import aspath
from pybgp.wire.attributes import attribute_name
from pybgp.wire.constants import AS_TRANS, HEADER_LEN, IPV4_UNICAST, MessageType, SegmentType
from pybgp.wire.context import CodecContext
from pybgp.wire.errors import Action, BGPError
from pybgp.wire.header import check_header, split_messages
from pybgp.wire.keepalive import Keepalive
from pybgp.wire.message import decode_message
from pybgp.wire.pathattrs import PathAttributes
from pybgp.wire.update import Update
from tests.pybgp.strategies import (
    UpdateCase,
    as_paths,
    notifications,
    open_messages,
    route_refresh_messages,
    update_cases,
    update_contexts,
)

# The whole file runs in well under 40 s on 2 cores; raise these locally to search harder.
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ONE_MP = update_cases()  # UPDATEs with MP_REACH and MP_UNREACH in any order included


def body_of(message: bytes) -> bytes:
    return message[HEADER_LEN:]


def wire_attribute_codes(body: bytes) -> list[int]:
    """Type codes of the path attributes of a well-formed UPDATE body, in wire order."""
    wlen = int.from_bytes(body[0:2], "big")
    alen = int.from_bytes(body[2 + wlen : 4 + wlen], "big")
    data, pos, codes = body[4 + wlen : 4 + wlen + alen], 0, []
    while pos < len(data):
        flags, code = data[pos], data[pos + 1]
        if flags & 0x10:
            pos += 4 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        else:
            pos += 3 + data[pos + 2]
        codes.append(code)
    return codes


def json_attribute_codes(obj: dict[str, Any]) -> list[int]:
    by_name = {attribute_name(code): code for code in range(256)}
    return [by_name[name] for name in obj["attributes"]]


# ---------------------------------------------------------------------------------------------
# Round trips


@FAST
@given(ONE_MP)
def test_bytes_round_trip(case: UpdateCase) -> None:
    raw = case.update.encode(case.ctx)
    assert len(raw) <= case.ctx.max_message_len
    assert int.from_bytes(raw[16:18], "big") == len(raw) and raw[18] == MessageType.UPDATE
    decoded = Update.decode(body_of(raw), case.ctx)
    assert decoded.problem is None
    assert decoded == case.update
    assert decoded.encode(case.ctx) == raw


@FAST
@given(update_cases())
def test_decoded_json_is_the_json_it_was_built_from(case: UpdateCase) -> None:
    decoded = Update.decode(body_of(case.update.encode(case.ctx)), case.ctx)
    assert decoded.to_json() == case.obj


@FAST
@given(update_cases())
def test_wire_order_follows_the_json_order(case: UpdateCase) -> None:
    # Regression (bug A, fixed): Update.encode inserts MP_REACH/MP_UNREACH at their `position` one after the
    # other without counting the MP attribute inserted first, so with both present the
    # second lands one slot early (and at equal positions the two swap places).
    raw = case.update.encode(case.ctx)
    assert wire_attribute_codes(body_of(raw)) == json_attribute_codes(case.obj)


@FAST
@given(update_cases())
def test_json_attribute_order_is_the_wire_order(case: UpdateCase) -> None:
    # Regression (bug B, fixed): Update.to_json prints MP_REACH before MP_UNREACH when they stand at the same
    # position, whatever their wire order (MP_UNREACH then MP_REACH comes out reversed).
    body = body_of(case.update.encode(case.ctx))
    shown = Update.decode(body, case.ctx).to_json()
    assert json_attribute_codes(shown) == wire_attribute_codes(body)


@FAST
@given(update_cases())
def test_json_round_trip(case: UpdateCase) -> None:
    text = json.dumps(case.update.to_json())
    again = Update.from_json(json.loads(text), case.ctx)
    assert again.encode(case.ctx) == case.update.encode(case.ctx)


@FAST
@given(ONE_MP)
def test_cli_round_trip(case: UpdateCase) -> None:
    raw = case.update.encode(case.ctx)
    shown = decode_to_json(raw, case.ctx)
    assert shown == [case.obj]
    assert encode_from_json(json.dumps(shown), case.ctx) == [raw]
    # One object per line, as `pybgp decode` prints them, reads back too.
    lines = "\n".join(json.dumps(obj) for obj in shown + shown)
    assert encode_from_json(lines, case.ctx) == [raw, raw]


@FAST
@given(update_cases(unknown=False, odd_flags=False))
def test_build_gives_the_attributes_the_json_gives(case: UpdateCase) -> None:
    # PathAttributes.build writes canonical flags and knows no unknown attributes.
    assert case.canonical_flags
    assume(case.values)
    built = PathAttributes.build(case.values, case.ctx.asn4)
    assert built == case.update.attributes
    assert dict(built.values) == case.values


ADDPATH_V4 = CodecContext(
    ibgp=True, addpath_rx=frozenset({IPV4_UNICAST}), addpath_tx=frozenset({IPV4_UNICAST})
)


@pytest.mark.parametrize(
    ("ctx", "nlri"),
    [
        (CodecContext(ibgp=True), [{"prefix": "10.1.0.0/16", "path_id": 1}]),
        (ADDPATH_V4, ["10.1.0.0/16"]),
        (ADDPATH_V4, ["10.1.0.0/16", {"prefix": "10.2.0.0/16", "path_id": 1}]),
    ],
    ids=["path-id-without-addpath", "no-path-id-with-addpath", "mixed"],
)
def test_encode_follows_the_negotiated_addpath(ctx: CodecContext, nlri: list[Any]) -> None:
    # Regression (bug F, fixed): Update.from_json/encode ignore ctx.addpath_tx and write path identifiers exactly
    # where the JSON has {"prefix", "path_id"} objects, prefix by prefix. `pybgp encode` then
    # prints messages that `pybgp decode` with the same options rejects (session reset) or,
    # worse, reads as other prefixes without any error (the first and third case). Refusing
    # such JSON (UsageError) or following the context would both pass.
    obj = {
        "type": "UPDATE",
        "attributes": {"origin": "igp", "as_path": [], "next_hop": "192.0.2.1"},
        "nlri": nlri,
    }
    try:
        (raw,) = encode_from_json(json.dumps(obj), ctx)
    except UsageError:
        return
    (shown,) = decode_to_json(raw, ctx)
    assert "error" not in shown
    texts = [item["prefix"] if isinstance(item, dict) else item for item in nlri]
    assert [item["prefix"] if isinstance(item, dict) else item for item in shown["nlri"]] == texts


# ---------------------------------------------------------------------------------------------
# Any input: only the codec's typed errors, and what is returned is usable


def _prefix_keys(data: bytes, addpath: bool) -> list[tuple[int | None, int, int]] | None:
    """(path id, length, prefix bits) of each prefix in an NLRI field, host bits cleared;
    None when the field does not split (written independently of pybgp.wire.nlri)."""
    out, pos, off = [], 0, 4 if addpath else 0
    while pos < len(data):
        if pos + off >= len(data) or data[pos + off] > 32:
            return None
        plen = data[pos + off]
        end = pos + off + 1 + (plen + 7) // 8
        if end > len(data):
            return None
        bits = int.from_bytes(data[pos + off + 1 : end].ljust(4, b"\0"), "big")
        bits &= (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
        path_id = int.from_bytes(data[pos : pos + 4], "big") if addpath else None
        out.append((path_id, plen, bits))
        pos = end
    return out


def _keys_of(keys: tuple[bytes, ...], addpath: bool) -> list[tuple[int | None, int, int]]:
    found = _prefix_keys(b"".join(keys), addpath)
    assert found is not None
    return found


def check_decode(body: bytes, ctx: CodecContext) -> Update | None:
    """Decode; only BGPError may escape. A returned UPDATE re-encodes, prints as JSON, and
    obeys its RFC 7606 verdict."""
    try:
        update = Update.decode(body, ctx)
    except BGPError as exc:
        assert 1 <= exc.code <= 6 and isinstance(exc.data, bytes)
        return None
    again = update.encode(ctx)
    assert check_header(again[:HEADER_LEN], attrs.evolve(ctx, extended_message=True))
    json.dumps(update.to_json())
    problem = update.problem
    if problem is None:
        return update
    assert problem.action in (Action.TREAT_AS_WITHDRAW, Action.ATTRIBUTE_DISCARD)
    v4_addpath = IPV4_UNICAST in ctx.addpath_rx
    wlen = int.from_bytes(body[0:2], "big")
    alen = int.from_bytes(body[2 + wlen : 4 + wlen], "big")
    withdrawn = _prefix_keys(body[2 : 2 + wlen], v4_addpath)
    nlri = _prefix_keys(body[4 + wlen + alen :], v4_addpath)
    assert withdrawn is not None and nlri is not None  # else the session resets (§5.3)
    if problem.action == Action.TREAT_AS_WITHDRAW:
        # RFC 7606 §2: every prefix withdrawn, nothing announced, no attributes kept.
        assert not update.nlri and update.mp_reach is None and update.attributes is None
        assert set(withdrawn + nlri) <= set(_keys_of(update.withdrawn, v4_addpath))
    else:
        # RFC 7606 §2: attribute discard keeps every prefix, drops the bad attribute.
        assert _keys_of(update.nlri, v4_addpath) == nlri
        assert _keys_of(update.withdrawn, v4_addpath) == withdrawn
        assert problem.attribute not in update.to_json()["attributes"]
    return update


@FAST
@given(st.binary(max_size=300), update_contexts())
def test_decode_arbitrary_bytes(body: bytes, ctx: CodecContext) -> None:
    check_decode(body, ctx)


@st.composite
def mutations(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with a few bytes flipped, set to boundary values, inserted or removed, or cut."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, max(len(buf) - 1, 0)))
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        if op == "flip" and buf:
            buf[where] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and buf:
            buf[where] = draw(st.sampled_from([0, 1, 2, 3, 4, 0x10, 0x20, 0x40, 0x80, 0xC0, 0xFF]))
        elif op == "insert":
            buf[where:where] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del buf[where : where + draw(st.integers(1, 4))]
        else:
            del buf[where:]
    return bytes(buf)


Tlv = tuple[int, int, bytes]


def split_body(body: bytes) -> tuple[bytes, list[Tlv], bytes]:
    """(withdrawn field, attributes as (flags, code, value), NLRI field) of a valid body."""
    wlen = int.from_bytes(body[0:2], "big")
    alen = int.from_bytes(body[2 + wlen : 4 + wlen], "big")
    data, pos, tlvs = body[4 + wlen : 4 + wlen + alen], 0, []
    while pos < len(data):
        flags, code = data[pos], data[pos + 1]
        if flags & 0x10:
            start, length = pos + 4, int.from_bytes(data[pos + 2 : pos + 4], "big")
        else:
            start, length = pos + 3, data[pos + 2]
        tlvs.append((flags, code, data[start : start + length]))
        pos = start + length
    return body[2 : 2 + wlen], tlvs, body[4 + wlen + alen :]


def join_body(withdrawn: bytes, tlvs: list[Tlv], nlri: bytes) -> bytes:
    """An UPDATE body with consistent lengths (the Extended Length bit decides each width)."""
    attributes = b"".join(
        bytes((flags, code)) + len(value).to_bytes(2 if flags & 0x10 else 1, "big") + value
        for flags, code, value in tlvs
    )
    return (
        len(withdrawn).to_bytes(2, "big")
        + withdrawn
        + len(attributes).to_bytes(2, "big")
        + attributes
        + nlri
    )


@st.composite
def attribute_mutations(draw: st.DrawFn, body: bytes) -> bytes:
    """`body` with an attribute's flags, type code or value changed, an attribute repeated or
    dropped, all lengths kept consistent: what RFC 7606 §3-§7 judge attribute by attribute."""
    withdrawn, tlvs, nlri = split_body(body)
    for _ in range(draw(st.integers(1, 2))):
        if not tlvs:
            tlvs.append((draw(st.integers(0, 255)), draw(st.integers(0, 255)), b""))
        i = draw(st.integers(0, len(tlvs) - 1))
        flags, code, value = tlvs[i]
        op = draw(st.sampled_from(["flags", "code", "value", "resize", "repeat", "drop"]))
        if op == "flags":
            tlvs[i] = (draw(st.integers(0, 255)) & ~0x10 | flags & 0x10, code, value)
        elif op == "code":
            tlvs[i] = (
                flags,
                draw(st.sampled_from([1, 2, 3, 4, 5, 7, 8, 14, 15, 17, 18, 32])),
                value,
            )
        elif op == "value" and value:
            tlvs[i] = (flags, code, draw(mutations(value))[: 255 if not flags & 0x10 else 4000])
        elif op == "resize":
            tlvs[i] = (flags | 0x10, code, draw(st.binary(max_size=12)))
        elif op == "repeat":
            tlvs.insert(draw(st.integers(0, len(tlvs))), tlvs[i])
        elif op == "drop":
            del tlvs[i]
    return join_body(withdrawn, tlvs, nlri)


@FAST
@given(update_cases(), st.data())
def test_decode_mutated_updates(case: UpdateCase, data: st.DataObject) -> None:
    body = body_of(case.update.encode(case.ctx))
    check_decode(data.draw(mutations(body)), case.ctx)


@FAST
@given(update_cases(), st.data())
def test_decode_updates_with_mutated_attributes(case: UpdateCase, data: st.DataObject) -> None:
    body = body_of(case.update.encode(case.ctx))
    check_decode(data.draw(attribute_mutations(body)), case.ctx)


@FAST
@given(update_cases(), st.data())
def test_decode_mutated_updates_in_other_contexts(case: UpdateCase, data: st.DataObject) -> None:
    """A valid UPDATE read under the wrong rules (2-octet AS, ADD-PATH, eBGP...)."""
    body = body_of(case.update.encode(case.ctx))
    if data.draw(st.booleans()):
        body = data.draw(mutations(body))
    check_decode(body, data.draw(update_contexts()))


def _check_message(msg_type: int, body: bytes, ctx: CodecContext) -> None:
    try:
        message = decode_message(msg_type, body, ctx)
    except BGPError:
        return
    message.encode(ctx)
    json.dumps(message.to_json())


@FAST
@given(st.sampled_from(list(MessageType)), st.binary(max_size=120), update_contexts())
def test_decode_message_arbitrary_bytes(msg_type: int, body: bytes, ctx: CodecContext) -> None:
    _check_message(msg_type, body, ctx)


def any_message(ctx: CodecContext) -> st.SearchStrategy[bytes]:
    """Whole encoded messages of every type, valid in `ctx`."""
    return st.one_of(
        update_cases(ctx=st.just(ctx)).map(lambda case: case.update.encode(case.ctx)),
        open_messages().map(lambda m: m.encode(ctx)),
        notifications().map(lambda m: m.encode(ctx)),
        route_refresh_messages().map(lambda m: m.encode(ctx)),
        st.just(Keepalive().encode(ctx)),
    )


@FAST
@given(update_contexts(), st.data())
def test_decode_message_mutated_valid_messages(ctx: CodecContext, data: st.DataObject) -> None:
    message = data.draw(any_message(ctx))
    msg_type = message[18]
    _check_message(msg_type, data.draw(mutations(body_of(message))), ctx)
    # ...and a valid body read as another message type.
    _check_message(data.draw(st.sampled_from(list(MessageType))), body_of(message), ctx)


def test_decode_message_of_unknown_type_raises_bgp_error() -> None:
    # Regression (bug D, fixed): decode_message promises "raises BGPError subclasses only" but an unknown type
    # raises KeyError; it should be the §6.1 Bad Message Type error (1/3, data = the type).
    try:
        decode_message(6, b"", CodecContext())
    except BGPError as exc:
        assert (exc.code, exc.subcode, exc.data) == (1, 3, b"\x06")
    else:
        raise AssertionError("no error for message type 6")


# ---------------------------------------------------------------------------------------------
# A byte stream, whole or in two chunks split anywhere

Fed = tuple[list[tuple[int, bytes]], tuple[int, int, bytes] | None, bytes]


def feed(chunks: list[bytes], ctx: CodecContext) -> Fed:
    """(messages, error (code, subcode, data) or None, bytes left) after feeding `chunks`."""
    buf, out = bytearray(), []
    for chunk in chunks:
        buf += chunk
        try:
            out += split_messages(buf, ctx)
        except BGPError as exc:
            return out, (exc.code, exc.subcode, exc.data), bytes(buf)
    return out, None, bytes(buf)


def reference_split(stream: bytes, ctx: CodecContext) -> Fed:
    """The messages of `stream` one header at a time, and the first header error."""
    pos, out = 0, []
    while len(stream) - pos >= HEADER_LEN:
        try:
            msg_type, length = check_header(stream[pos : pos + HEADER_LEN], ctx)
        except BGPError as exc:
            return out, (exc.code, exc.subcode, exc.data), stream[pos:]
        if len(stream) - pos < length:
            break
        out.append((msg_type, stream[pos + HEADER_LEN : pos + length]))
        pos += length
    return out, None, stream[pos:]


@st.composite
def message_streams(draw: st.DrawFn) -> tuple[bytes, CodecContext]:
    ctx = draw(update_contexts())
    ctx = attrs.evolve(ctx, extended_message=draw(st.booleans()))
    stream = b"".join(draw(st.lists(any_message(ctx), max_size=4)))
    tail = draw(st.sampled_from(["none", "mutate", "garbage", "cut"]))
    if tail == "mutate":
        stream = draw(mutations(stream))
    elif tail == "garbage":
        stream += draw(st.binary(max_size=30))
    elif tail == "cut" and stream:
        stream = stream[: draw(st.integers(0, len(stream) - 1))]
    return stream, ctx


@SLOW
@given(message_streams())
def test_split_messages_at_every_position(stream_ctx: tuple[bytes, CodecContext]) -> None:
    stream, ctx = stream_ctx
    ref_messages, ref_error, ref_rest = reference_split(stream, ctx)
    whole = feed([stream], ctx)
    if ref_error is None:
        assert whole == (ref_messages, None, ref_rest)
    else:  # messages before a bad header are lost with the session
        assert whole == ([], ref_error, stream)
    for cut in range(len(stream) + 1):
        messages, error, rest = feed([stream[:cut], stream[cut:]], ctx)
        assert error == ref_error
        if error is None:
            assert (messages, rest) == (ref_messages, ref_rest)
        else:
            assert messages == ref_messages[: len(messages)]
    for msg_type, body in ref_messages:
        _check_message(msg_type, body, ctx)


@FAST
@given(message_streams())
def test_cli_decode_any_stream(stream_ctx: tuple[bytes, CodecContext]) -> None:
    stream, ctx = stream_ctx
    try:
        shown = decode_to_json(stream, ctx)
    except UsageError:
        return
    for obj in shown:
        assert "type" in obj or "error" in obj
        json.dumps(obj)


# ---------------------------------------------------------------------------------------------
# RFC 6793: a path sent to a 2-octet peer (AS_PATH + AS4_PATH) is the same path read back


@st.composite
def four_octet_paths(draw: st.DrawFn) -> tuple[aspath.AsPath, aspath.AsPath]:
    """(path, what a 2-octet peer rebuilds): leading confederation segments (RFC 5065 §3)
    come back with AS_TRANS for AS numbers over 65535 (RFC 6793 §3 keeps them out of
    AS4_PATH); the rest of the path is non-empty (see bug C in test_update_golden.py)."""
    confed = draw(st.lists(st.sampled_from([3, 4]), max_size=2))
    head = tuple(
        (t, tuple(draw(st.lists(st.integers(1, 0xFFFFFFFF), min_size=1, max_size=4))))
        for t in confed
    )
    rest = draw(as_paths(True, min_segments=1))
    seen = tuple((t, tuple(a if a <= 0xFFFF else AS_TRANS for a in asns)) for t, asns in head)
    return head + rest, seen + rest


@FAST
@given(four_octet_paths())
def test_as4_path_split_and_merge(paths: tuple[aspath.AsPath, aspath.AsPath]) -> None:
    path, expected = paths
    two, four = aspath.split_as4_path(path)
    assert all(asn <= 0xFFFF for _, asns in two for asn in asns)
    assert four is None or not any(t >= SegmentType.AS_CONFED_SEQUENCE for t, _ in four)
    assert aspath.merge_as4_path(two, four) == expected
    # Through the wire, as a 2-octet iBGP peer reads it.
    ctx = CodecContext(asn4=False, ibgp=True)
    attributes: dict[str, Any] = {"origin": "igp", "as_path": aspath.as_path_to_json(two)}
    if four is not None:
        attributes["as4_path"] = aspath.as_path_to_json(four)
    attributes["next_hop"] = "192.0.2.1"
    message = Update.from_json({"attributes": attributes, "nlri": ["10.0.0.0/8"]}, ctx)
    decoded = Update.decode(body_of(message.encode(ctx)), ctx)
    assert decoded.problem is None and decoded.attributes is not None
    assert decoded.attributes.as_path == expected
