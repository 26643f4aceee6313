"""Received bytes -> FSM events (RFC 4271 §6, §8.1.5): cut the stream into messages and
name the event each one is, with the NOTIFICATION due when it is an error."""

from __future__ import annotations

import attrs

from pybgp.session.config import SessionConfig
from pybgp.session.fsm import FsmEvent, State
from pybgp.session.negotiation import Negotiated, accept_open
from pybgp.wire.constants import HEADER_LEN, MARKER, ErrorCode, MessageType, OpenError
from pybgp.wire.context import CodecContext
from pybgp.wire.errors import BGPError
from pybgp.wire.header import check_header, split_messages
from pybgp.wire.notification import Notification
from pybgp.wire.open import Open
from pybgp.wire.route_refresh import RouteRefresh
from pybgp.wire.update import Update

Frame = tuple[int, bytes]  # message type, body


@attrs.frozen(kw_only=True)
class Received:
    """One received message as the FSM sees it."""

    event: FsmEvent
    message: Update | RouteRefresh | Notification | None = None
    negotiated: Negotiated | None = None  # with BGPOpen in OpenSent
    error: Notification | None = None  # the NOTIFICATION due for an error event
    reason: str = ""


def _error(event: FsmEvent, err: BGPError) -> Received:
    return Received(event=event, error=Notification.from_error(err), reason=err.reason)


def take_frames(
    buf: bytearray, ctx: CodecContext, batch: bool
) -> tuple[list[Frame], Received | None]:
    """Cut whole messages off `buf`: all of them when `batch`, else at most one (the context
    may change after each message before Established). A bad header ends the list with its
    error; a bad NOTIFICATION header is not answered (§6.4) but reported as NotifMsg."""
    if batch:
        try:
            return split_messages(buf, ctx), None
        except BGPError:
            pass  # walk again below, keeping the messages before the bad one
    frames: list[Frame] = []
    while len(buf) >= HEADER_LEN and (batch or not frames):
        try:
            msg_type, length = check_header(bytes(buf[:HEADER_LEN]), ctx)
        except BGPError as err:
            return frames, _bad_header(buf, err)
        if len(buf) < length:
            break
        frames.append((msg_type, bytes(buf[HEADER_LEN:length])))
        del buf[:length]
    return frames, None


def _bad_header(buf: bytearray, err: BGPError) -> Received:
    if buf.startswith(MARKER) and buf[18] == MessageType.NOTIFICATION:
        return Received(event=FsmEvent.NOTIF_MSG, reason="malformed NOTIFICATION received")
    return _error(FsmEvent.BGP_HEADER_ERR, err)


def classify(
    frame: Frame, state: State, ctx: CodecContext, config: SessionConfig, local: Open
) -> Received:
    """The FSM event for one message. Messages a state does not expect are not decoded: the
    table answers them with an FSM Error whatever they hold."""
    msg_type, body = frame
    if msg_type == MessageType.NOTIFICATION:
        return _notification(body, ctx)
    if msg_type == MessageType.KEEPALIVE:
        return Received(event=FsmEvent.KEEPALIVE_MSG)
    if msg_type == MessageType.OPEN:
        if state is not State.OPEN_SENT:
            return Received(event=FsmEvent.BGP_OPEN, reason=f"OPEN received in {state.value}")
        return _open(body, config, local)
    if state is not State.ESTABLISHED:
        name = MessageType(msg_type).name
        event = (
            FsmEvent.UPDATE_MSG if msg_type == MessageType.UPDATE else FsmEvent.ROUTE_REFRESH_MSG
        )
        return Received(event=event, reason=f"{name} received in {state.value}")
    if msg_type == MessageType.UPDATE:
        return _update(body, ctx)
    return _route_refresh(body, ctx)


def _notification(body: bytes, ctx: CodecContext) -> Received:
    note = Notification.decode(body, ctx)  # the header guarantees its 2 octets
    version = note.code == ErrorCode.OPEN_MESSAGE and note.subcode == OpenError.UNSUPPORTED_VERSION
    event = FsmEvent.NOTIF_MSG_VER_ERR if version else FsmEvent.NOTIF_MSG
    reason = (
        f"NOTIFICATION received: {note.code_name or note.code}/{note.subcode_name or note.subcode}"
    )
    return Received(event=event, message=note, reason=reason)


def _open(body: bytes, config: SessionConfig, local: Open) -> Received:
    try:
        peer = Open.decode(body, CodecContext())
        negotiated = accept_open(config, local, peer)
    except BGPError as err:
        header = err.code == ErrorCode.MESSAGE_HEADER
        return _error(FsmEvent.BGP_HEADER_ERR if header else FsmEvent.BGP_OPEN_MSG_ERR, err)
    return Received(event=FsmEvent.BGP_OPEN, negotiated=negotiated)


def _update(body: bytes, ctx: CodecContext) -> Received:
    """RFC 7606: session reset (and, here, AFI/SAFI disable) end the session; treat-as-withdraw
    and attribute discard come back as an Update with `.problem` set."""
    try:
        update = Update.decode(body, ctx)
    except BGPError as err:
        return _error(FsmEvent.UPDATE_MSG_ERR, err)
    return Received(event=FsmEvent.UPDATE_MSG, message=update)


def _route_refresh(body: bytes, ctx: CodecContext) -> Received:
    try:
        message = RouteRefresh.decode(body, ctx)
    except BGPError as err:
        header = err.code == ErrorCode.MESSAGE_HEADER
        return _error(FsmEvent.BGP_HEADER_ERR if header else FsmEvent.ROUTE_REFRESH_MSG_ERR, err)
    return Received(event=FsmEvent.ROUTE_REFRESH_MSG, message=message)
