"""BFD for BGP neighbours (RFC 5882 §4.3, RFC 9384): what the Speaker calls.

A neighbour with `bfd = true` gets a BFD session once its BGP session is Established (then
our address on the connection is known) and keeps it while it is configured, across BGP
restarts, as FRR does. When the BFD session goes from Up to Down the BGP session is closed
at once with Cease / BFD Down (RFC 9384) and starts again as after any failure. A remote
that only signals AdminDown is no failure (RFC 5882 §3.2): the BGP session stays.
"""

from __future__ import annotations

import logging

import trio

from pybgp.bfd.driver import BfdService
from pybgp.bfd.packet import BfdState
from pybgp.bfd.session import BfdConfig, BfdStateChanged
from pybgp.config import NeighborConfig
from pybgp.net.session import PeerSession
from pybgp.session.fsm import State
from pybgp.wire.constants import CeaseSubcode

log = logging.getLogger(__name__)


def bfd_config(neighbor: NeighborConfig) -> BfdConfig:
    return BfdConfig(
        desired_min_tx=neighbor.bfd_min_tx_ms / 1000,
        required_min_rx=neighbor.bfd_min_rx_ms / 1000,
        detect_mult=neighbor.bfd_multiplier,
    )


def is_failure(change: BfdStateChanged) -> bool:
    """Up -> Down for a reason other than the remote's AdminDown (RFC 5882 §3.2)."""
    return (
        change.old is BfdState.UP and change.new is BfdState.DOWN and not change.remote_admin_down
    )


def take_down(session: PeerSession, why: str) -> None:
    """Cease / BFD Down (RFC 9384 §2) on an Established session, then start again."""
    if session.state is not State.ESTABLISHED:
        return
    session.reset(CeaseSubcode.BFD_DOWN)
    session.last_error = f"BFD down ({why}): sent Cease/BFD Down"


class NeighborBfd:
    """The BFD sessions of a Speaker's neighbours; start `run` in the Speaker's nursery."""

    def __init__(self, service: BfdService | None = None) -> None:
        self.service = service or BfdService()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self.service.run(task_status=task_status)

    def established(self, neighbor: NeighborConfig, session: PeerSession) -> None:
        """The BGP session is up: make sure the neighbour's BFD session runs."""
        local = session.local_address() or neighbor.local_address
        if not neighbor.bfd or local is None:
            return

        def changed(address: str, change: BfdStateChanged) -> None:
            if is_failure(change) and session.state is State.ESTABLISHED:
                why = change.diag.name.lower()
                log.warning("peer %s: BFD down (%s): closing the session", address, why)
                take_down(session, why)

        self.service.add(neighbor.address, local, bfd_config(neighbor), changed)

    def removed(self, address: str) -> None:
        self.service.remove(address)

    def info(self, neighbor: NeighborConfig) -> dict[str, object] | None:
        """The BFD session's state for the neighbour's JSON; None when BFD is off."""
        if not neighbor.bfd:
            return None
        return self.service.info(neighbor.address) or {"state": "Down", "note": "not started"}
