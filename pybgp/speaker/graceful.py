"""Graceful restart (RFC 4724) and route refresh (RFC 2918; enhanced, RFC 7313): a peer's
routes kept, stale, while it restarts or sends them again, and our table sent again.

- A peer restarts (§4.2): its routes of the families it preserves stay, stale, for its
  restart time; when it is back, until its End-of-RIB or our stale time.
- We restart (§4.1): selection and advertisement wait for every peer's End-of-RIB, or the
  deferral timer (`RoutePipeline.deferral`); the kernel keeps our routes meanwhile.
- Route refresh: a peer asks for our table of a family; we ask for its tables when our
  import policy changes. With the enhanced form a BoRR marks the routes of the family stale
  and the EoRR removes those not sent again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence

import trio

from pybgp.config import NeighborConfig
from pybgp.restart import (
    Deferral,
    RestartConfig,
    forwarding_kept,
    keeps_routes,
    preserved_families,
)
from pybgp.rib import AdjRibIn, Touched
from pybgp.session.config import SessionConfig
from pybgp.session.events import SessionDown
from pybgp.speaker.peer import Peer
from pybgp.speaker.pipeline import RoutePipeline
from pybgp.wire.capabilities import GracefulRestart
from pybgp.wire.constants import Family
from pybgp.wire.route_refresh import RefreshSubtype, RouteRefresh

log = logging.getLogger(__name__)


class Graceful:
    def __init__(
        self,
        config: RestartConfig,
        restarting: bool,
        pipeline: RoutePipeline,
        peers: Mapping[str, Peer],
        session_config: Callable[[NeighborConfig], SessionConfig],
    ) -> None:
        """`restarting`: this start follows our own graceful stop; `session_config`: a
        neighbour's session settings, made again when our Restart State bit goes."""
        self.config = config
        self.restarting = restarting and config.enabled
        self._pipeline, self._peers = pipeline, peers
        self._session_config = session_config
        self._nursery: trio.Nursery | None = None

    def start(self, nursery: trio.Nursery, expected: Sequence[str]) -> None:
        """`expected`: the neighbours whose End-of-RIB our selection waits for."""
        self._nursery = nursery
        if self.restarting:
            self._pipeline.deferral = Deferral(expected)
            self._pipeline.fib_deferral = Deferral(expected, include_restarting=True)
            nursery.start_soon(self._deferral_timer)

    # -- a peer restarts (§4.2) ---------------------------------------------------------
    def helping(self, peer: Peer, event: SessionDown, notification_restart: bool) -> bool:
        """Whether to keep the peer's routes: it announced graceful restart, and the session
        ended without a NOTIFICATION either way (§4.2), or with one other than Hard Reset
        while both sides set the N bit (RFC 8538 §4)."""
        cap = peer.peer_restart
        if cap is None or cap.restart_time == 0:
            return False
        return keeps_routes(event.notification, notification_restart)

    def retain(self, peer: Peer, adj_in: AdjRibIn) -> None:
        """The peer is restarting: its routes of the families it preserves stay, stale, for
        its restart time; the others go now."""
        cap = peer.peer_restart
        assert cap is not None
        kept = preserved_families(cap)
        touched = []
        for family in adj_in.families():
            adj_in.mark_stale(family)
            if family not in kept:
                touched += adj_in.sweep_stale(family)
        self._pipeline.apply(touched)
        log.info(
            "peer %s restarting: its routes stay, stale, for up to %d s",
            peer.address,
            cap.restart_time,
        )
        self._stale_timer(peer, cap.restart_time)

    def back_from_restart(self, peer: Peer, adj_in: AdjRibIn, cap: GracefulRestart | None) -> None:
        """The peer is back: stale routes of families it did not keep forwarding for go at
        once; the others wait for its End-of-RIB (or the stale time)."""
        kept = forwarding_kept(cap)
        touched = []
        for family in adj_in.stale_families():
            if family not in kept:
                touched += adj_in.sweep_stale(family)
        self._pipeline.apply(touched)
        self._stale_timer(peer, self.config.stale_time)

    def _stale_timer(self, peer: Peer, seconds: float) -> None:
        if peer.stale_timer is not None:
            peer.stale_timer.cancel()
        scope = peer.stale_timer = trio.CancelScope()
        if self._nursery is not None:
            self._nursery.start_soon(self._sweep_later, peer, scope, seconds)

    async def _sweep_later(self, peer: Peer, scope: trio.CancelScope, seconds: float) -> None:
        with scope:
            await trio.sleep(seconds)
            adj_in = peer.adj_in
            if adj_in is None:
                return
            log.info("peer %s: its stale routes expired", peer.address)
            touched = [t for f in adj_in.stale_families() for t in adj_in.sweep_stale(f)]
            self._pipeline.apply(touched)
            if peer.info is None:  # still down: nothing of it is left
                peer.adj_in = None
                self._pipeline.sources_changed()

    def drop_retained(self, peer: Peer) -> None:
        """A removed neighbour: routes kept for its restart go too."""
        if peer.stale_timer is not None:
            peer.stale_timer.cancel()
        if peer.adj_in is not None:
            adj_in, peer.adj_in = peer.adj_in, None
            self._pipeline.sources_changed()
            self._pipeline.apply(adj_in.clear())

    def end_of_rib(self, peer: Peer, family: Family) -> None:
        adj_in = peer.adj_in
        if adj_in is not None and family in adj_in.stale_families():
            self._pipeline.apply(adj_in.sweep_stale(family))
            if not adj_in.stale_families() and peer.stale_timer is not None:
                peer.stale_timer.cancel()
        for deferral in self._deferrals():
            deferral.end_of_rib(peer.address, family)
        self.end_deferral_if_done()

    # -- we restart (§4.1) --------------------------------------------------------------
    def _deferrals(self) -> Iterator[Deferral]:
        pipeline = self._pipeline
        yield from (d for d in (pipeline.deferral, pipeline.fib_deferral) if d is not None)

    def peer_up(
        self, address: str, families: frozenset[Family], cap: GracefulRestart | None
    ) -> None:
        for deferral in self._deferrals():
            deferral.peer_up(address, families, cap)

    def peer_gone(self, address: str) -> None:
        for deferral in self._deferrals():
            deferral.peer_gone(address)
        self.end_deferral_if_done()

    async def _deferral_timer(self) -> None:
        await trio.sleep(self.config.deferral_time)
        if self._pipeline.deferral is not None or self._pipeline.fib_deferral is not None:
            log.info("selection deferral timer ran out")
            self._end_deferral()
            self._pipeline.end_fib_deferral()

    def end_deferral_if_done(self) -> None:
        pipeline = self._pipeline
        if pipeline.deferral is not None and pipeline.deferral.done:
            log.info("End-of-RIB in from every peer not restarting itself: advertising now")
            self._end_deferral()
        if pipeline.fib_deferral is not None and pipeline.fib_deferral.done:
            pipeline.end_fib_deferral()

    def _end_deferral(self) -> None:
        """Selection is complete (§4.1): every peer gets our whole table and End-of-RIB."""
        if self._pipeline.deferral is None:
            return
        self._pipeline.deferral = None
        self.restarting = False  # later OPENs: no Restart State bit
        for peer in self._peers.values():
            peer.session.use_config(self._session_config(peer.config))
        self._pipeline.out.flush()  # the groups' tables are current; the whole table follows
        for peer in self._peers.values():
            if peer.established:
                self._pipeline.send_table(peer)

    # -- route refresh ------------------------------------------------------------------
    def refresh_received(self, peer: Peer, message: RouteRefresh) -> None:
        """RFC 2918 §4: the family's table again. With enhanced route refresh (RFC 7313 §4)
        it is framed by BoRR and EoRR; a BoRR from the peer marks its routes of the family
        stale, its EoRR removes those it did not send again."""
        family = message.family
        if message.subtype == RefreshSubtype.NORMAL:
            self._send_family(peer, family)
        elif peer.adj_in is not None and message.subtype == RefreshSubtype.BORR:
            peer.adj_in.mark_stale(family)
        elif peer.adj_in is not None and message.subtype == RefreshSubtype.EORR:
            touched: list[Touched] = peer.adj_in.sweep_stale(family)
            self._pipeline.apply(touched)
            gone = sum(len(t.prefixes) for t in touched)
            log.info(
                "peer %s refreshed %s: %d stale prefixes removed", peer.address, family.name, gone
            )

    def _send_family(self, peer: Peer, family: Family) -> None:
        group = self._pipeline.out.group_of(peer.address)
        conn = peer.session.conn
        negotiated = conn.negotiated
        if group is None or negotiated is None or self._pipeline.deferral is not None:
            return
        enhanced = negotiated.enhanced_route_refresh
        if enhanced:
            conn.send_route_refresh(family, trio.current_time(), RefreshSubtype.BORR)
        peer.session.send(group.table_messages(peer.address, family, end_of_rib_marker=False))
        if enhanced:
            conn.send_route_refresh(family, trio.current_time(), RefreshSubtype.EORR)

    def ask_again(self, peer: Peer) -> None:
        """Ask the peer for all its routes again (a new import policy applies to them)."""
        negotiated = peer.session.conn.negotiated
        if negotiated is None or not peer.established:
            return
        if not negotiated.route_refresh:
            log.warning(
                "peer %s cannot refresh routes (no route refresh capability): reset the "
                "session for a new import policy to apply to its routes",
                peer.address,
            )
            return
        for family in negotiated.families:
            peer.session.conn.send_route_refresh(family, trio.current_time())
