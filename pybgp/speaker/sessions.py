"""What the peers' sessions report, turned into RIB changes: an Established session gets an
Adj-RIB-In and a place in an update group (and our table), UPDATEs go through its Adj-RIB-In
into the route pipeline, a session that ends takes its routes along (or leaves them, stale,
for a restarting peer: `Graceful`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

import attrs
import trio

from pybgp.bfd.neighbors import NeighborBfd
from pybgp.net.session import PeerSession
from pybgp.policy.view import ChainViews
from pybgp.rib import AdjRibIn
from pybgp.session.events import (
    Established,
    Event,
    RouteRefreshReceived,
    SessionDown,
    StateChanged,
    UpdateReceived,
)
from pybgp.session.fsm import State
from pybgp.speaker.graceful import Graceful
from pybgp.speaker.peer import Peer, export_key, peer_info
from pybgp.speaker.pipeline import RoutePipeline
from pybgp.speaker.policies import Policies
from pybgp.speaker.subscribers import Subscribers
from pybgp.throttle import Throttle
from pybgp.wire.update import Update

log = logging.getLogger(__name__)
RESET_LOG_INTERVAL = 10.0  # seconds between "peer down" lines of one peer


class SessionObserver(Protocol):
    """Sees what the sessions report, as it happens (pybgp.mrt's update log)."""

    def on_update(self, peer: Peer, update: Update) -> None: ...
    def on_state(self, peer: Peer, old: State, new: State) -> None: ...


@attrs.frozen
class PeerStateChange:
    address: str
    old: str
    new: str


class Sessions:
    def __init__(
        self,
        *,
        asn: int,
        router_id: str,
        cluster_id: str,
        peers: Mapping[str, Peer],
        pipeline: RoutePipeline,
        graceful: Graceful,
        policies: Policies,
        bfd: NeighborBfd,
    ) -> None:
        self.asn, self.router_id, self.cluster_id = asn, router_id, cluster_id
        self._peers, self._pipeline, self._graceful = peers, pipeline, graceful
        self._policies, self._bfd = policies, bfd
        self._subscribers = Subscribers[PeerStateChange]()
        self.observers: list[SessionObserver] = []
        self._resets = Throttle(log, RESET_LOG_INTERVAL)

    def subscribe(self) -> trio.MemoryReceiveChannel[PeerStateChange]:
        return self._subscribers.subscribe()

    def on_event(self, session: PeerSession, event: Event) -> None:
        address = session.dial.address
        peer = self._peers.get(address)
        if peer is None or peer.session is not session:
            return
        if isinstance(event, UpdateReceived):
            for observer in self.observers:
                observer.on_update(peer, event.update)
            if peer.adj_in is not None:
                update = event.update
                self._pipeline.apply(peer.adj_in.apply(update))
                self._check_limits(peer)
                if not update.nlri and (family := update.end_of_rib()) is not None:
                    self._graceful.end_of_rib(peer, family)
        elif isinstance(event, Established):
            self._up(peer, event)
            self._bfd.established(peer.config, session)
        elif isinstance(event, RouteRefreshReceived):
            self._graceful.refresh_received(peer, event.message)
        elif isinstance(event, StateChanged):
            for observer in self.observers:
                observer.on_state(peer, event.old, event.new)
            self._subscribers.publish(PeerStateChange(address, event.old.value, event.new.value))
        elif isinstance(event, SessionDown):
            # One line per reset; a peer that keeps failing the same way is summed up.
            self._resets.log(
                trio.current_time(),
                address,
                logging.INFO,
                "peer %s down: %s",
                address,
                event.reason,
            )
            if peer.info is not None:  # it was Established
                helping = self._graceful.helping(peer, event, peer.notification_restart)
                self.down(peer, graceful=helping)

    def _up(self, peer: Peer, event: Established) -> None:
        negotiated, config = event.negotiated, peer.config
        info = peer_info(config, negotiated, self.asn)
        import_filter = self._policies.import_filter(info)
        retained = peer.adj_in  # the routes of the session before, kept stale (§4.2)
        if retained is not None:
            retained.peer, retained.import_filter = info, import_filter
            self._graceful.back_from_restart(peer, retained, negotiated.graceful_restart)
        else:
            peer.adj_in = AdjRibIn(
                info, import_filter, router_id=self.router_id, cluster_id=self.cluster_id
            )
        peer.peer_restart = negotiated.graceful_restart
        peer.notification_restart = negotiated.notification_restart
        self._pipeline.sources_changed()
        local = peer.session.local_address() or config.local_address
        key = export_key(config, negotiated, info, local, self.cluster_id)
        peer.info, peer.key = info, self._policies.with_export_policy(key, info)
        self._pipeline.out.add_peer(info, peer.key, self._pipeline.loc)
        self._graceful.peer_up(config.address, key.families, negotiated.graceful_restart)
        if self._pipeline.deferral is None:
            self._pipeline.send_table(peer)
        self._graceful.end_deferral_if_done()  # else our table goes out when the deferral ends
        self._resets.log(
            trio.current_time(),
            (config.address, "up"),
            logging.INFO,
            "peer %s established (AS %d, %s)",
            config.address,
            info.asn,
            ", ".join(f.name for f in key.families),
        )

    def down(self, peer: Peer, graceful: bool = False) -> None:
        peer.info = peer.key = None
        self._pipeline.out.remove_peer(peer.address)
        if peer.adj_in is None:
            return
        if graceful:
            self._graceful.retain(peer, peer.adj_in)
            return
        adj_in, peer.adj_in = peer.adj_in, None
        self._pipeline.sources_changed()
        self._pipeline.apply(adj_in.clear())

    def _check_limits(self, peer: Peer) -> None:
        if peer.adj_in is None:
            return
        for family, limit in peer.config.max_prefixes.items():
            if peer.adj_in.counts(family).received > limit:
                log.warning(
                    "peer %s sent more than %d %s prefixes", peer.address, limit, family.name
                )
                peer.session.prefix_limit_exceeded(family, limit)
                return

    # -- a new policy -------------------------------------------------------------------
    def apply_policy(self, peer: Peer, before: ChainViews) -> None:
        """The policies now in force, for an Established peer, where they changed for it:
        its routes asked for again (import) and its Adj-RIB-Out worked out anew (export)."""
        if peer.adj_in is None or peer.info is None:
            return
        if self._policies.changed(before, peer.address, "import"):
            peer.adj_in.import_filter = self._policies.import_filter(peer.info)
            self._graceful.ask_again(peer)
        if self._policies.changed(before, peer.address, "export"):
            self.readvertise(peer)

    def readvertise(self, peer: Peer) -> None:
        """Move the peer to the update group of its current export policy and bring it
        there: withdraw what it has and no longer gets, then the whole table again."""
        if peer.info is None or peer.key is None:
            return
        address, out = peer.address, self._pipeline.out
        old_group = out.group_of(address)
        old = {}
        if old_group is not None:
            old = {f: old_group.member_prefixes(address, f) for f in old_group.key.families}
        peer.key = self._policies.with_export_policy(peer.key, peer.info)
        group = out.add_peer(peer.info, peer.key, self._pipeline.loc)
        messages: list[bytes] = []
        for family, prefixes in old.items():
            gone = prefixes - group.member_prefixes(address, family)
            if gone:
                messages += group.withdrawal_messages(family, sorted(gone))
        peer.session.send(messages + group.table_messages(address))
