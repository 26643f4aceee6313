"""What a `Connection` reports to its owner: frozen events, returned as lists, in order."""

from __future__ import annotations

import attrs

from pybgp.session.fsm import State
from pybgp.session.negotiation import Negotiated
from pybgp.wire.notification import Notification
from pybgp.wire.open import Open
from pybgp.wire.route_refresh import RouteRefresh
from pybgp.wire.update import Update


class LocalProtocolError(Exception):
    """The owner asked for something the session state does not allow (h11's split: errors
    of the peer end the session with a NOTIFICATION and are reported as events)."""


@attrs.frozen(kw_only=True)
class StateChanged:
    old: State
    new: State


@attrs.frozen(kw_only=True)
class TcpConnectRequested:
    """Open a TCP connection to the peer (RFC 4271 §8.2.2 "initiates a TCP connection")."""


@attrs.frozen(kw_only=True)
class TcpCloseRequested:
    """Write out what data_to_send() still holds (a NOTIFICATION, maybe), then close."""


@attrs.frozen(kw_only=True)
class OpenReceived:
    """The peer's OPEN passed every check; the owner runs collision detection (§6.8) now."""

    open: Open


@attrs.frozen(kw_only=True)
class Established:
    negotiated: Negotiated


@attrs.frozen(kw_only=True)
class UpdateReceived:
    """An UPDATE to process; `update.problem` is set after treat-as-withdraw or attribute
    discard (RFC 7606), which keep the session up."""

    update: Update


@attrs.frozen(kw_only=True)
class RouteRefreshReceived:
    message: RouteRefresh


@attrs.frozen(kw_only=True)
class NotificationReceived:
    notification: Notification | None  # None: the NOTIFICATION itself was malformed


@attrs.frozen(kw_only=True)
class NotificationSent:
    """Queued in data_to_send(); the session ends right after."""

    notification: Notification


@attrs.frozen(kw_only=True)
class SessionDown:
    """The connection went back to Idle. `notification` is the one sent or received."""

    reason: str
    notification: Notification | None = None


Event = (
    StateChanged
    | TcpConnectRequested
    | TcpCloseRequested
    | OpenReceived
    | Established
    | UpdateReceived
    | RouteRefreshReceived
    | NotificationReceived
    | NotificationSent
    | SessionDown
)
