"""Graceful restart (RFC 4724) and its notification support (RFC 8538), the parts that are
plain bookkeeping (sans-IO).

We always help a restarting peer (§4.2: its routes are kept, stale, until it sends End-of-RIB
or its restart time runs out). With `RestartConfig.enabled` we restart gracefully ourselves
(§4.1): a graceful stop leaves peers and the kernel with our routes, and the next start
announces the Restart State bit and defers best-path selection and advertisement until
every peer has sent End-of-RIB (`Deferral`), or until the deferral timer runs out.

With `RestartConfig.notification` (the default) we announce the N bit (RFC 8538): when both
sides set it, a session that ends with a NOTIFICATION is treated like one whose TCP
connection failed, so the routes stay stale as for a restart, on both sides; only a Cease
with subcode Hard Reset ends it for good, and we send Hard Reset for the Cease subcodes that
mean "gone for good" (`hard_reset`).
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs
from attrs.validators import ge, in_

from pybgp.wire.capabilities import GracefulRestart, GracefulRestartFamily
from pybgp.wire.constants import CeaseSubcode, ErrorCode, Family
from pybgp.wire.notification import Notification


@attrs.frozen(kw_only=True)
class RestartConfig:
    """`restart_time`: how long peers keep our routes while we restart (announced; 12 bits).
    `deferral_time`: the longest we wait for peers' End-of-RIB after our own restart
    (FRR's select-defer-time). `stale_time`: the longest a restarted peer's stale routes
    stay once it is back without End-of-RIB (FRR's stalepath-time)."""

    enabled: bool = False
    restart_time: int = attrs.field(default=120, validator=in_(range(0x1000)))
    deferral_time: float = attrs.field(default=360.0, validator=ge(0))
    stale_time: float = attrs.field(default=360.0, validator=ge(0))
    # The families we restart gracefully for (None: every family of the session); the
    # others are left out of our capability, so peers drop their routes at once (§3).
    families: frozenset[Family] | None = None
    notification: bool = True  # the N bit (RFC 8538)


def capability(
    config: RestartConfig, families: Iterable[Family], restarting: bool
) -> GracefulRestart:
    """Our capability. Helper only: no families (§3). Restarting speaker: each family with
    the Forwarding State bit (pybgpd never clears the forwarding plane, the kernel routes of
    --fib, on a graceful stop or a lost session; FRR's preserve-fw-state likewise), and the
    Restart State bit while we come back from a graceful stop."""
    if not config.enabled:
        return GracefulRestart(restart_time=config.restart_time, notification=config.notification)
    kept = [f for f in families if config.families is None or f in config.families]
    return GracefulRestart(
        restart_state=restarting,
        notification=config.notification,
        restart_time=config.restart_time,
        families=tuple(GracefulRestartFamily(family=f, forwarding_state=True) for f in kept),
    )


# Cease subcodes sent as Hard Reset when the N bit is negotiated (RFC 8538 §5: Maximum
# Number of Prefixes Reached, Administrative Shutdown, Peer De-configured; Administrative
# Reset is left to the operator there, and a reset asked for by hand means "start afresh").
HARD_CEASES = frozenset(
    {
        CeaseSubcode.MAX_PREFIXES,
        CeaseSubcode.ADMIN_SHUTDOWN,
        CeaseSubcode.PEER_DECONFIGURED,
        CeaseSubcode.ADMIN_RESET,
    }
)


def hard_reset(notification: Notification) -> Notification:
    """The NOTIFICATION to send when the N bit is negotiated: a Cease in HARD_CEASES goes as
    Cease/Hard Reset carrying it (RFC 8538 §3: its code, subcode and data as the data);
    anything else as it is."""
    if notification.code != ErrorCode.CEASE or notification.subcode not in HARD_CEASES:
        return notification
    cause = bytes((notification.code, notification.subcode)) + notification.data
    return Notification(code=ErrorCode.CEASE, subcode=CeaseSubcode.HARD_RESET, data=cause)


def keeps_routes(notification: Notification | None, notification_restart: bool) -> bool:
    """Whether a session that ended with `notification` (None: none either way, the
    connection just went) leaves the peer's routes kept for a restart: always without a
    NOTIFICATION (RFC 4724 §4.2); with one only under the N bit, and never after a Hard
    Reset (RFC 8538 §4)."""
    if notification is None:
        return True
    hard = notification.code == ErrorCode.CEASE and notification.subcode == CeaseSubcode.HARD_RESET
    return notification_restart and not hard


def preserved_families(peer: GracefulRestart | None) -> frozenset[Family]:
    """The families whose routes a helper keeps when this capability's speaker goes away
    (§4.2: those in its capability)."""
    return frozenset(f.family for f in peer.families) if peer is not None else frozenset()


def forwarding_kept(peer: GracefulRestart | None) -> frozenset[Family]:
    """The families a restarted peer kept forwarding for (F bit, §4.2): their stale routes
    wait for End-of-RIB; the others' go at once."""
    if peer is None:
        return frozenset()
    return frozenset(f.family for f in peer.families if f.forwarding_state)


class Deferral:
    """Route selection deferred after our own restart (§4.1): done once every expected peer
    has come up and sent End-of-RIB for each family it negotiated.

    Advertising waits for every peer but those restarting themselves (they wait for our
    End-of-RIB before sending theirs). Unlike §4.1 it also waits for peers that announced no
    graceful restart: they send End-of-RIB too when we announce it. The kernel waits for
    every peer (`include_restarting`): a route gone from the kernel while a peer is still
    sending its table would be a gap in forwarding."""

    def __init__(self, expected: Iterable[str], include_restarting: bool = False) -> None:
        # address -> families still to come (None: the peer is not up yet)
        self.waiting: dict[str, set[Family] | None] = dict.fromkeys(expected)
        self.include_restarting = include_restarting

    @property
    def done(self) -> bool:
        return not self.waiting

    def peer_up(
        self, address: str, families: Iterable[Family], peer: GracefulRestart | None
    ) -> None:
        if address not in self.waiting:
            return
        if peer is not None and peer.restart_state and not self.include_restarting:
            del self.waiting[address]
        else:
            self.waiting[address] = set(families)
            self._settle(address)

    def end_of_rib(self, address: str, family: Family) -> None:
        families = self.waiting.get(address)
        if families is not None:
            families.discard(family)
            self._settle(address)

    def peer_gone(self, address: str) -> None:
        """A neighbour removed from the configuration is not waited for."""
        self.waiting.pop(address, None)

    def _settle(self, address: str) -> None:
        if self.waiting.get(address) == set():
            del self.waiting[address]
