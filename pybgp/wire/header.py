"""The message header (RFC 4271 §4.1) and splitting a byte stream into messages (§6.1)."""

from __future__ import annotations

from pybgp.wire.constants import (
    HEADER_LEN,
    MARKER,
    MAX_MESSAGE_LEN,
    ErrorCode,
    HeaderError,
    MessageType,
)
from pybgp.wire.context import CodecContext
from pybgp.wire.errors import BGPError

# Smallest valid total length per type (§4.2-§4.5, RFC 2918 §3); KEEPALIVE is exactly 19.
_MIN_LEN: dict[int, int] = {
    MessageType.OPEN: 29,
    MessageType.UPDATE: 23,
    MessageType.NOTIFICATION: 21,
    MessageType.KEEPALIVE: 19,
    MessageType.ROUTE_REFRESH: 23,
}
_MAX_LEN_ALWAYS_4096 = (MessageType.OPEN, MessageType.KEEPALIVE)  # RFC 8654 §4


def frame(msg_type: int, body: bytes) -> bytes:
    """A whole message: marker, length, type, body."""
    return MARKER + (HEADER_LEN + len(body)).to_bytes(2, "big") + bytes((msg_type,)) + body


def bad_length(length: int, reason: str) -> BGPError:
    """Message Header Error / Bad Message Length (RFC 4271 §6.1): data is the Length field."""
    return BGPError(
        ErrorCode.MESSAGE_HEADER,
        HeaderError.BAD_MESSAGE_LENGTH,
        min(length, 0xFFFF).to_bytes(2, "big"),
        reason,
    )


def check_header(header: bytes, ctx: CodecContext) -> tuple[int, int]:
    """Validate 19 header octets; return (type, total length) or raise the §6.1 error."""
    if header[:16] != MARKER:
        raise BGPError(
            ErrorCode.MESSAGE_HEADER,
            HeaderError.CONNECTION_NOT_SYNCHRONIZED,
            reason="marker is not all ones",
        )
    length = int.from_bytes(header[16:18], "big")
    msg_type = header[18]
    if msg_type not in _MIN_LEN:
        raise BGPError(
            ErrorCode.MESSAGE_HEADER,
            HeaderError.BAD_MESSAGE_TYPE,
            bytes((msg_type,)),
            f"unknown message type {msg_type}",
        )
    limit = MAX_MESSAGE_LEN if msg_type in _MAX_LEN_ALWAYS_4096 else ctx.max_message_len
    if (
        length < _MIN_LEN[msg_type]
        or length > limit
        or (msg_type == MessageType.KEEPALIVE and length != HEADER_LEN)
    ):
        raise bad_length(length, f"bad length {length} for {MessageType(msg_type).name}")
    return msg_type, length


def split_messages(buf: bytearray, ctx: CodecContext) -> list[tuple[int, bytes]]:
    """Cut every complete message off the front of `buf`: a list of (type, body).

    What is left in `buf` is the start of a message still arriving. Raises BGPError for a
    bad header; messages before it are lost with the session anyway.
    """
    data = bytes(buf)
    out: list[tuple[int, bytes]] = []
    pos, size, limit = 0, len(data), ctx.max_message_len
    while size - pos >= HEADER_LEN:
        length = data[pos + 16] << 8 | data[pos + 17]
        msg_type = data[pos + 18]
        # The common case (an UPDATE of sane length) is checked inline; the rest in full.
        if not (msg_type == 2 and 23 <= length <= limit and data.startswith(MARKER, pos)):
            check_header(data[pos : pos + HEADER_LEN], ctx)
        if size - pos < length:
            break
        out.append((msg_type, data[pos + HEADER_LEN : pos + length]))
        pos += length
    del buf[:pos]
    return out
