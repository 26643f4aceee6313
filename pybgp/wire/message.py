"""Any BGP message: decode by type, read a byte stream, convert to and from JSON."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pybgp.wire.constants import ErrorCode, HeaderError, MessageType
from pybgp.wire.context import CodecContext
from pybgp.wire.errors import BGPError
from pybgp.wire.header import split_messages
from pybgp.wire.keepalive import Keepalive
from pybgp.wire.notification import Notification
from pybgp.wire.open import Open
from pybgp.wire.route_refresh import RouteRefresh
from pybgp.wire.update import Update

Message = Open | Update | Notification | Keepalive | RouteRefresh

_CLASSES: dict[int, Any] = {
    MessageType.OPEN: Open,
    MessageType.UPDATE: Update,
    MessageType.NOTIFICATION: Notification,
    MessageType.KEEPALIVE: Keepalive,
    MessageType.ROUTE_REFRESH: RouteRefresh,
}
_BY_NAME = {cls.__name__.upper(): cls for cls in _CLASSES.values()}
_BY_NAME["ROUTE_REFRESH"] = RouteRefresh
_BY_NAME["ROUTE-REFRESH"] = RouteRefresh


def decode_message(msg_type: int, body: bytes, ctx: CodecContext) -> Message:
    """Decode one message body (after the header); raises BGPError subclasses only."""
    cls = _CLASSES.get(msg_type)
    if cls is None:  # RFC 4271 §6.1
        raise BGPError(
            ErrorCode.MESSAGE_HEADER,
            HeaderError.BAD_MESSAGE_TYPE,
            bytes((msg_type & 0xFF,)),
            f"unknown message type {msg_type}",
        )
    message: Message = cls.decode(body, ctx)
    return message


def iter_messages(data: bytes, ctx: CodecContext) -> Iterator[tuple[int, bytes]]:
    """(type, body) of each whole message in `data`; what follows the last whole message
    is left unread (see `trailing`)."""
    buf = bytearray(data)
    yield from split_messages(buf, ctx)


def message_from_json(obj: Any, ctx: CodecContext) -> Message:
    """A message from its JSON form; ValueError names what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError('expected a JSON object with a "type"')
    cls = _BY_NAME.get(str(obj.get("type", "")).upper())
    if cls is None:
        known = "OPEN, UPDATE, NOTIFICATION, KEEPALIVE, ROUTE_REFRESH"
        raise ValueError(f"type: expected one of {known}, not {obj.get('type')!r}")
    if cls is Update:
        return Update.from_json(obj, ctx)
    message: Message = cls.from_json(obj)
    return message
