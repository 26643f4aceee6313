"""Attribute Flags (RFC 4271 §4.3, §6.3) for every attribute the codec knows, with the RFC 7606
handling of each violation: the hand-written vectors of fixtures/bgp/golden/attribute-flags.json,
and every flags octet tried on every known attribute against the rules as the RFCs state them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybgp.wire.context import CodecContext
from pybgp.wire.errors import MalformedUpdate, Problem
from pybgp.wire.update import Update

FILE = Path(__file__).resolve().parents[2] / "fixtures" / "bgp" / "golden" / "attribute-flags.json"
GOLDEN: dict[str, Any] = json.loads(FILE.read_text())
NLRI = bytes((24, 10, 0, 1, 24, 10, 0, 2))
WK, ONT, OT = 0x40, 0x80, 0xC0  # the Optional and Transitive bits of each kind (§4.3)
TAW, AD, RESET = "treat-as-withdraw", "attribute-discard", "session-reset"

# type code -> (kind, RFC 7606 verdict for a malformed one, a valid value, context), from
# RFC 4271 §5, RFC 7606 §7.1-7.14, RFC 6793 §6, RFC 8092 §6 and RFC 9234 §5.
KNOWN: dict[int, tuple[int, str, str, str]] = {
    1: (WK, TAW, "00", "ibgp"),
    2: (WK, TAW, "02 01 00 00 fd e9", "ibgp"),
    3: (WK, TAW, "c0 00 02 01", "ibgp"),
    4: (ONT, TAW, "00 00 00 64", "ibgp"),
    5: (WK, TAW, "00 00 00 64", "ibgp"),
    6: (WK, AD, "", "ibgp"),
    7: (OT, AD, "00 00 fd e9 c0 00 02 01", "ibgp"),
    8: (OT, TAW, "fd e9 00 01", "ibgp"),
    9: (ONT, TAW, "c0 00 02 09", "ibgp"),
    10: (ONT, TAW, "c0 00 02 0a", "ibgp"),
    14: (ONT, RESET, "00 02 01 10" + " 20 01 0d b8" + " 00" * 11 + " 01 00 30 20 01 0d b8 00 01", "ibgp"),
    15: (ONT, RESET, "00 02 01", "ibgp"),
    16: (OT, TAW, "00 02 fd e9 00 00 00 01", "ibgp"),
    17: (OT, AD, "02 01 00 01 00 00", "ibgp-2-octet"),
    18: (OT, AD, "00 01 00 00 c0 00 02 01", "ibgp-2-octet"),
    32: (OT, TAW, "00 00 fd e9 00 00 00 01 00 00 00 02", "ibgp"),
    35: (OT, TAW, "00 00 fd e9", "ibgp"),
}  # fmt: skip


def hexbytes(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def tlv(flags: int, code: int, value: bytes) -> bytes:
    if flags & 0x10:
        return bytes((flags, code)) + len(value).to_bytes(2, "big") + value
    return bytes((flags, code, len(value))) + value


def context(name: str) -> CodecContext:
    spec = GOLDEN["contexts"][name]
    return CodecContext(asn4=spec["asn4"], ibgp=spec["ibgp"])


def update_with(attribute: bytes, context_name: str) -> bytes:
    """An UPDATE body: the context's mandatory attributes, `attribute` in place of the one of
    its type (or after them), and two /24s."""
    mandatory = hexbytes(GOLDEN["contexts"][context_name]["mandatory"])
    pieces, pos = [], 0
    while pos < len(mandatory):
        end = pos + 3 + mandatory[pos + 2]
        pieces.append(mandatory[pos:end])
        pos = end
    code = attribute[1]
    if code in (1, 2, 3):
        pieces[code - 1] = attribute
    else:
        pieces.append(attribute)
    attributes = b"".join(pieces)
    return b"\x00\x00" + len(attributes).to_bytes(2, "big") + attributes + NLRI


def judged(body: bytes, ctx: CodecContext) -> Problem | None:
    try:
        return Update.decode(body, ctx).problem
    except MalformedUpdate as exc:
        return exc.problem


def test_every_known_attribute_has_vectors_of_wrong_flags() -> None:
    wrong = {hexbytes(v["attribute"])[1] for v in GOLDEN["vectors"] if v["verdict"] != "ok"}
    assert set(KNOWN) <= wrong


@pytest.mark.parametrize("vector", GOLDEN["vectors"], ids=lambda v: v["name"])
def test_vector(vector: dict[str, Any]) -> None:
    attribute = hexbytes(vector["attribute"])
    header = 4 if attribute[0] & 0x10 else 3
    declared = int.from_bytes(attribute[2:header], "big")
    assert declared == len(attribute) - header, "the vector's own length field"
    problem = judged(update_with(attribute, vector["context"]), context(vector["context"]))
    if vector["verdict"] == "ok":
        assert problem is None
        return
    assert problem is not None
    assert (str(problem.action), problem.code, problem.subcode) == (
        vector["verdict"],
        3,
        vector["subcode"],
    )
    assert problem.data == attribute  # RFC 4271 §6.3: the erroneous attribute


def test_wrong_flags_withdraw_the_routes_or_drop_the_attribute() -> None:
    """What a user sees: treat-as-withdraw leaves no route; attribute discard keeps the
    routes without the attribute."""
    withdrawn = Update.decode(
        update_with(hexbytes("a0 04 04 00 00 00 64"), "ibgp"), context("ibgp")
    )
    assert not withdrawn.nlri and set(withdrawn.withdrawn) == {NLRI[:4], NLRI[4:]}
    kept = Update.decode(update_with(hexbytes("c0 06 00"), "ibgp"), context("ibgp"))
    assert kept.nlri == (NLRI[:4], NLRI[4:])
    assert kept.attributes is not None and 6 not in kept.attributes


def expected(code: int, flags: int) -> tuple[str, int] | None:
    """The rules as RFC 4271 §4.3 states them: the Optional and Transitive bits are the
    attribute's own; Partial only on an optional transitive attribute; the low four bits
    (Extended Length, unused) do not matter. A violation: Attribute Flags Error (subcode 4)
    with the attribute's RFC 7606 handling."""
    kind, verdict, _, _ = KNOWN[code]
    partial = bool(flags & 0x20)
    if flags & 0xC0 == kind and (not partial or kind == OT):
        return None
    return verdict, 4


@pytest.mark.parametrize("code", sorted(KNOWN))
def test_every_flags_octet(code: int) -> None:
    _, _, value, ctx_name = KNOWN[code]
    ctx = context(ctx_name)
    for flags in range(256):
        body = update_with(tlv(flags, code, hexbytes(value)), ctx_name)
        problem = judged(body, ctx)
        got = None if problem is None else (str(problem.action), problem.subcode)
        assert got == expected(code, flags), f"flags 0x{flags:02x}"


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(KNOWN)), st.integers(0, 255), st.integers(0, 255))
def test_a_second_attribute_with_other_flags(code: int, flags: int, other: int) -> None:
    """Two attributes with random flags: the strongest verdict wins (RFC 7606 §3 (h)), and
    whatever the flags, the answer is a verdict, never another exception."""
    _, _, value, ctx_name = KNOWN[code]
    second = 35 if code != 35 else 8  # OTC, or COMMUNITIES
    ctx = context(ctx_name)
    body = update_with(tlv(flags, code, hexbytes(value)), ctx_name)
    pieces = [expected(code, flags), expected(second, other)]
    extra = tlv(other, second, hexbytes(KNOWN[second][2]))
    attrs_len = int.from_bytes(body[2:4], "big") + len(extra)
    body = (
        b"\x00\x00" + attrs_len.to_bytes(2, "big") + body[4 : len(body) - len(NLRI)] + extra + NLRI
    )
    problem = judged(body, ctx)
    order = [AD, TAW, RESET]
    worst = max((p for p in pieces if p is not None), key=lambda p: order.index(p[0]), default=None)
    got = None if problem is None else str(problem.action)
    assert got == (worst[0] if worst else None)
