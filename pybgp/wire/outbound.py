"""Building UPDATEs to send: prefixes packed into as few messages as the negotiated size
allows (MP_REACH_NLRI first, RFC 7606 §5.1), End-of-RIB markers (RFC 4724 §2), and the path
attributes as a given peer must see them (RFC 4271 §5, RFC 6793 §4.2.2)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from pybgp.wire import aspath
from pybgp.wire.attributes import encode_attribute
from pybgp.wire.constants import (
    AS_TRANS,
    HEADER_LEN,
    IPV4_UNICAST,
    OPTIONAL,
    PARTIAL,
    TRANSITIVE,
    AttrType,
    Family,
    MessageType,
)
from pybgp.wire.context import CodecContext
from pybgp.wire.header import frame
from pybgp.wire.nlri import Nlri, address_from_str
from pybgp.wire.pathattrs import PathAttributes, iter_tlvs

_FIXED = HEADER_LEN + 4  # header, withdrawn length, total path attribute length


def pack_announcements(
    attributes: PathAttributes,
    family: Family,
    next_hop: str,
    prefixes: Sequence[Nlri],
    ctx: CodecContext,
) -> list[bytes]:
    """UPDATEs announcing `prefixes` with `attributes` and `next_hop`.

    IPv4 unicast with an IPv4 next hop goes in the NLRI field with a NEXT_HOP attribute;
    everything else (IPv6, or IPv4 with an IPv6 next hop, RFC 8950) in MP_REACH_NLRI, put
    first. Prefix keys carry path identifiers exactly when the family is in ctx.addpath_tx.
    """
    hop = address_from_str(next_hop)
    others = b"".join(
        _tlv(f, c, v) for f, c, v in iter_tlvs(attributes.raw) if c != AttrType.NEXT_HOP
    )
    limit = ctx.max_message_len
    if family == IPV4_UNICAST and len(hop) == 4:
        blob = others + encode_attribute(TRANSITIVE, AttrType.NEXT_HOP, hop)
        room = limit - _FIXED - len(blob)
        return [_update(b"", blob, b"".join(batch)) for batch in _batches(prefixes, room)]
    head = family.afi.to_bytes(2, "big") + bytes((family.safi, len(hop))) + hop + b"\0"
    # Room for NLRI inside MP_REACH: its 4-octet header (extended length) and fixed part.
    room = limit - _FIXED - len(others) - 4 - len(head)
    return [
        _update(
            b"",
            encode_attribute(OPTIONAL | 0x10, AttrType.MP_REACH_NLRI, head + b"".join(batch))
            + others,
            b"",
        )
        for batch in _batches(prefixes, room)
    ]


def pack_withdrawals(family: Family, prefixes: Sequence[Nlri], ctx: CodecContext) -> list[bytes]:
    """UPDATEs withdrawing `prefixes` (IPv4 unicast in the withdrawn routes field)."""
    limit = ctx.max_message_len
    if family == IPV4_UNICAST:
        room = limit - _FIXED
        return [_update(b"".join(batch), b"", b"") for batch in _batches(prefixes, room)]
    head = family.afi.to_bytes(2, "big") + bytes((family.safi,))
    room = limit - _FIXED - 4 - len(head)
    return [
        _update(
            b"",
            encode_attribute(OPTIONAL | 0x10, AttrType.MP_UNREACH_NLRI, head + b"".join(batch)),
            b"",
        )
        for batch in _batches(prefixes, room)
    ]


def end_of_rib(family: Family) -> bytes:
    """The End-of-RIB marker: an empty UPDATE for IPv4 unicast, else an empty MP_UNREACH."""
    if family == IPV4_UNICAST:
        return _update(b"", b"", b"")
    head = family.afi.to_bytes(2, "big") + bytes((family.safi,))
    return _update(b"", encode_attribute(OPTIONAL, AttrType.MP_UNREACH_NLRI, head), b"")


def _update(withdrawn: bytes, attributes: bytes, nlri: bytes) -> bytes:
    body = (
        len(withdrawn).to_bytes(2, "big")
        + withdrawn
        + len(attributes).to_bytes(2, "big")
        + attributes
        + nlri
    )
    return frame(MessageType.UPDATE, body)


def _batches(prefixes: Sequence[Nlri], room: int) -> Iterator[list[Nlri]]:
    if room <= 0:
        raise ValueError("path attributes leave no room for prefixes in one message")
    batch: list[Nlri] = []
    used = 0
    for key in prefixes:
        if used + len(key) > room and batch:
            yield batch
            batch, used = [], 0
        batch.append(key)
        used += len(key)
    if batch:
        yield batch


def _tlv(flags: int, code: int, value: bytes) -> bytes:
    return encode_attribute(flags, code, value)


def for_peer(attributes: PathAttributes, ctx: CodecContext) -> PathAttributes:
    """The attributes as they go to a peer: unknown optional transitive ones marked Partial,
    unknown optional non-transitive ones left out (RFC 4271 §5), and for a peer without
    4-octet AS support AS_PATH/AGGREGATOR with AS_TRANS plus AS4_PATH/AS4_AGGREGATOR
    (RFC 6793 §4.2.2). `attributes` hold 4-octet AS numbers."""
    pieces = []
    for flags, code, value in iter_tlvs(attributes.raw):
        if code in (AttrType.AS4_PATH, AttrType.AS4_AGGREGATOR):
            continue  # rebuilt below when the peer needs them
        if code == AttrType.AS_PATH and not ctx.asn4:
            pieces.append(_two_octet_path(attributes.as_path))
            continue
        if code == AttrType.AGGREGATOR and not ctx.asn4:
            pieces.append(_two_octet_aggregator(attributes.values[code]))
            continue
        if code not in _KNOWN_CODES:
            if not flags & TRANSITIVE:
                continue
            flags |= PARTIAL
        pieces.append(encode_attribute(flags, code, value))
    return PathAttributes(b"".join(pieces), ctx.asn4)


def _two_octet_path(path: aspath.AsPath) -> bytes:
    two, four = aspath.split_as4_path(path)
    out = encode_attribute(TRANSITIVE, AttrType.AS_PATH, aspath.encode_as_path(two, 2))
    if four is not None:
        out += encode_attribute(
            OPTIONAL | TRANSITIVE, AttrType.AS4_PATH, aspath.encode_as_path(four, 4)
        )
    return out


def _two_octet_aggregator(aggregator: tuple[int, str]) -> bytes:
    asn, address = aggregator
    addr = address_from_str(address)
    if asn <= 0xFFFF:
        return encode_attribute(
            OPTIONAL | TRANSITIVE, AttrType.AGGREGATOR, asn.to_bytes(2, "big") + addr
        )
    return encode_attribute(
        OPTIONAL | TRANSITIVE, AttrType.AGGREGATOR, AS_TRANS.to_bytes(2, "big") + addr
    ) + encode_attribute(
        OPTIONAL | TRANSITIVE, AttrType.AS4_AGGREGATOR, asn.to_bytes(4, "big") + addr
    )


_KNOWN_CODES = frozenset(AttrType)
