"""`pybgp.Speaker`: a BGP speaker on trio, for programs (and pybgpd, and kube-router).

    async with trio.open_nursery() as nursery:
        speaker = Speaker(asn=65000, router_id="10.255.0.1", listen=["10.0.0.1"])
        await nursery.start(speaker.run)
        speaker.add_peer(NeighborConfig(address="10.0.0.2", peer_asn=65001))
        speaker.announce(RouteConfig(prefix="10.1.0.0/24"))
        async for change in speaker.subscribe_best_paths(): ...

Peers come and go at run time without touching other sessions. Received routes go through
the Adj-RIB-In, the decision process (Loc-RIB) and the update groups (Adj-RIB-Out).
"""

from __future__ import annotations

import ipaddress
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
import trio

from pybgp.bfd.neighbors import NeighborBfd
from pybgp.config import DaemonConfig, NeighborConfig, RouteConfig, parse_route
from pybgp.config_values import ConfigError
from pybgp.net.session import Dial, PeerSession
from pybgp.net.transport import BgpListener
from pybgp.policy import (
    CommunityAction,
    CompiledPolicy,
    Definitions,
    LargeCommunityAction,
    PolicyError,
    explain,
)
from pybgp.policy.rib_filter import ChainFilter
from pybgp.restart import (
    Deferral,
    RestartConfig,
    capability,
    forwarding_kept,
    preserved_families,
)
from pybgp.rib import (
    AdjRibIn,
    AdjRibOut,
    BestPathConfig,
    ExportKey,
    LocRib,
    PeerInfo,
    Touched,
    local_origin,
)
from pybgp.rib.addpath import Ranked
from pybgp.rib.export import export
from pybgp.rib.loc_rib import BestChange
from pybgp.rib.route import Route
from pybgp.session.config import SessionConfig
from pybgp.session.events import (
    Established,
    Event,
    RouteRefreshReceived,
    SessionDown,
    StateChanged,
    UpdateReceived,
)
from pybgp.session.fsm import State
from pybgp.throttle import Throttle
from pybgp.wire import aspath
from pybgp.wire.capabilities import AddPathMode, ExtendedNextHopFamily, GracefulRestart
from pybgp.wire.communities import WELL_KNOWN, community_to_str, large_community_to_str
from pybgp.wire.constants import AFI_IPV6, IPV4_UNICAST, IPV6_UNICAST, AttrType, Family, Origin
from pybgp.wire.nlri import Nlri, nlri_from_str, nlri_to_str
from pybgp.wire.pathattrs import PathAttributes
from pybgp.wire.route_refresh import RefreshSubtype, RouteRefresh

log = logging.getLogger(__name__)
FAMILIES = (IPV4_UNICAST, IPV6_UNICAST)
RESET_LOG_INTERVAL = 10.0  # seconds between "peer down" lines of one peer
FLUSH_CHUNK = 5_000  # prefixes per step of the outbound flush (about 10-25 ms)


@attrs.frozen
class BestPathChange:
    """What subscribers of best paths receive."""

    family: Family
    prefix: str
    next_hops: tuple[str, ...]  # empty: the prefix is gone
    as_path: str = ""


@attrs.frozen
class PeerStateChange:
    address: str
    old: str
    new: str


@attrs.define
class _Peer:
    config: NeighborConfig
    session: PeerSession
    scope: trio.CancelScope
    adj_in: AdjRibIn | None = None
    info: PeerInfo | None = None  # while Established
    key: ExportKey | None = None
    peer_restart: GracefulRestart | None = None  # its capability in the last session
    stale_timer: trio.CancelScope | None = None  # restart or stale time running out


class Speaker:
    def __init__(
        self,
        *,
        asn: int,
        router_id: str,
        listen: Sequence[str] = (),
        port: int = 179,
        multipath: int = 1,
        fib: Any = None,
        cluster_id: str | None = None,
        policy: CompiledPolicy | None = None,
        restart: RestartConfig | None = None,
        restarting: bool = False,
    ) -> None:
        """`restart`: graceful restart (helping peers is always on); `restarting`: this
        start follows our own graceful stop, so selection and advertisement wait for the
        peers' End-of-RIB (RFC 4724 §4.1)."""
        self.asn, self.router_id = asn, router_id
        self.restart = restart or RestartConfig()
        self.restarting = restarting and self.restart.enabled
        self._deferral: Deferral | None = None  # our advertising, after our restart
        self._fib_deferral: Deferral | None = None  # removing kernel routes gone meanwhile
        self._fib_reconcile = False  # the kernel to be brought in line with the Loc-RIB
        self._sources_cache: list[AdjRibIn] | None = None  # every Adj-RIB-In: see _sources
        self._lone_as: Callable[[int | None], bool] | None = None
        self.cluster_id = cluster_id or router_id  # RFC 4456 §7
        # Import and export policies; without any, nothing is exported (default reject).
        self.policy = policy if policy is not None else CompiledPolicy(Definitions())
        self._policy_generation = 0
        self.listen, self.port, self.fib = tuple(listen), port, fib
        best = BestPathConfig(multipath=multipath)
        self._loc = {family: LocRib(family, best) for family in FAMILIES}
        self._local = AdjRibIn(local_origin(asn, router_id))
        self._out = AdjRibOut(paths=self._ranked_paths)  # several paths: ADD-PATH send
        self._peers: dict[str, _Peer] = {}
        self._waiting: list[NeighborConfig] = []  # added before run()
        self._routes: dict[str, RouteConfig] = {}
        self._listener = BgpListener()
        self._nursery: trio.Nursery | None = None
        self._flush = trio.Event()
        self._fib_pending: dict[str, tuple[str, ...]] = {}
        self._fib_wake = trio.Event()
        self._best_subscribers: list[trio.MemorySendChannel[BestPathChange]] = []
        self._state_subscribers: list[trio.MemorySendChannel[PeerStateChange]] = []
        self._dynamic: Sequence[Any] = ()  # dynamic neighbour prefixes (config)
        self._file_routes: set[str] = set()  # prefixes the configuration file originates
        self._bfd = NeighborBfd()  # BFD sessions of neighbours with bfd = true
        self._policy_config: Any = None  # what `policy` was compiled from (configuration)
        self._resets = Throttle(log, RESET_LOG_INTERVAL)
        self._warned_no_export: set[str] = set()  # neighbours told so under this policy

    @classmethod
    def from_config(
        cls, config: DaemonConfig, fib: Any = None, restarting: bool = False
    ) -> Speaker:
        g = config.global_
        speaker = cls(
            asn=g.asn,
            router_id=g.router_id,
            listen=g.listen,
            port=g.port,
            multipath=g.multipath,
            fib=fib,
            cluster_id=g.cluster_id,
            policy=_compiled(config),
            restart=g.graceful_restart,
            restarting=restarting,
        )
        speaker._policy_config = config.policy
        speaker._dynamic = config.dynamic_neighbors
        for neighbor in config.neighbors:
            speaker.add_peer(neighbor)
        for route in config.routes:
            speaker.announce(route)
        speaker._file_routes = {route.prefix for route in config.routes}
        return speaker

    # -- running ------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for dynamic in self._dynamic:
                self._listener.allow_prefix(dynamic.prefix, md5_key=_key(dynamic.password_file))
            if self.listen:
                await nursery.start(self._listener.serve, self.listen, self.port, self._accept)
            nursery.start_soon(self._flusher)
            await nursery.start(self._bfd.run)
            if self.fib is not None:
                nursery.start_soon(self._fib_writer)
            if self.restarting:
                expected = [n.address for n in self._waiting]
                self._deferral = Deferral(expected)
                self._fib_deferral = Deferral(expected, include_restarting=True)
                nursery.start_soon(self._deferral_timer)
            waiting, self._waiting = self._waiting, []
            for neighbor in waiting:
                self.add_peer(neighbor)
            task_status.started()

    async def shutdown(self, graceful: bool = False) -> None:
        """Cease every session (so peers withdraw at once), then flush --fib routes. With
        `graceful` (and graceful restart on), nothing is said or removed: the sessions just
        close with the process, and peers keep our routes as stale until we are back."""
        if graceful and self.restart.enabled:
            log.info("graceful stop: peers and the kernel keep our routes")
            return
        for peer in self._peers.values():
            peer.session.stop()
        await trio.sleep(0.2)  # let the NOTIFICATIONs go out
        if self.fib is not None:
            removed = await trio.to_thread.run_sync(self.fib.flush)
            log.info("removed %d kernel routes", removed)

    # -- peers --------------------------------------------------------------------------
    def add_peer(self, neighbor: NeighborConfig) -> None:
        if self._nursery is None:
            self._waiting.append(neighbor)
            return
        if neighbor.address in self._peers:
            raise ValueError(f"neighbor {neighbor.address} exists")
        key = _key(neighbor.password_file)
        self._listener.set_peer(
            neighbor.address, md5_key=key, ttl=neighbor.multihop_ttl, gtsm=neighbor.ttl_security
        )
        session = PeerSession(_session_config(self, neighbor), _dial(neighbor, key), self._on_event)
        scope = trio.CancelScope()
        self._peers[neighbor.address] = _Peer(neighbor, session, scope)
        self._nursery.start_soon(self._run_peer, session, scope)

    async def _run_peer(self, session: PeerSession, scope: trio.CancelScope) -> None:
        with scope:
            await session.run()

    def remove_peer(self, address: str) -> None:
        peer = self._peers.pop(address, None)
        if peer is None:
            raise ValueError(f"no neighbor {address}")
        self._sources_changed()
        self._listener.remove_peer(address)
        self._bfd.removed(address)
        peer.session.stop()
        self._down(address, peer)
        self._drop_retained(peer)
        for deferral in (self._deferral, self._fib_deferral):
            if deferral is not None:
                deferral.peer_gone(address)
        self._end_deferral_if_done()
        # Give the Cease a moment to leave before the task goes.
        assert self._nursery is not None
        self._nursery.start_soon(_cancel_later, peer.scope)

    def reset_peer(self, address: str, soft: bool = False) -> str:
        peer = self._peers.get(address)
        if peer is None:
            raise ValueError(f"no neighbor {address}")
        if not soft:
            peer.session.reset()
            return "reset"
        if peer.session.state is State.ESTABLISHED:
            self._refresh_in(peer)
            self._readvertise(peer)
        return "softreset"

    def set_policy(self, policy: CompiledPolicy) -> None:
        """Apply new import and export policies to every session without dropping any: a
        route refresh asks each peer for its routes again (import), and each peer's
        Adj-RIB-Out is worked out anew, withdrawing what is no longer exported."""
        self.policy = policy
        self._policy_generation += 1
        self._warned_no_export.clear()
        for peer in self._peers.values():
            if peer.adj_in is None or peer.info is None:
                continue
            peer.adj_in.import_filter = self._import_filter(peer.info)
            self._refresh_in(peer)
            self._readvertise(peer)

    def _refresh_in(self, peer: _Peer) -> None:
        negotiated = peer.session.conn.negotiated
        if negotiated is None or peer.session.state is not State.ESTABLISHED:
            return
        if not negotiated.route_refresh:
            log.warning(
                "peer %s cannot refresh routes (no route refresh capability): reset the "
                "session for a new import policy to apply to its routes",
                peer.config.address,
            )
            return
        for family in negotiated.families:
            peer.session.conn.send_route_refresh(family, trio.current_time())

    def _readvertise(self, peer: _Peer) -> None:
        """Move the peer to the update group of its current export policy and bring it
        there: withdraw what it has and no longer gets, then the whole table again."""
        if peer.info is None or peer.key is None:
            return
        address = peer.config.address
        old_group = self._out.group_of(address)
        old = {}
        if old_group is not None:
            old = {f: old_group.member_prefixes(address, f) for f in old_group.key.families}
        peer.key = self._with_export_policy(peer.key, peer.info)
        group = self._out.add_peer(peer.info, peer.key, self._loc)
        messages: list[bytes] = []
        for family, prefixes in old.items():
            gone = prefixes - group.member_prefixes(address, family)
            if gone:
                messages += group.withdrawal_messages(family, sorted(gone))
        peer.session.send(messages + group.table_messages(address))

    def _import_filter(self, info: PeerInfo) -> ChainFilter | None:
        chain = self.policy.import_chain(info.address)
        return None if chain.constant is True else ChainFilter(chain, info)

    def _with_export_policy(self, key: ExportKey, info: PeerInfo) -> ExportKey:
        chain = self.policy.export_chain(info.address)
        if chain.constant is True:
            return attrs.evolve(key, policy=None, export_filter=None)
        if chain.constant is False and info.address not in self._warned_no_export:
            self._warned_no_export.add(info.address)  # once per policy, not per session
            log.warning(
                "peer %s: no export policy and the default is reject: nothing is advertised "
                "to it (attach an export policy, or set policy.attach.default_export)",
                info.address,
            )
        # Peers share an update group when their chains are the same and do not read the
        # peer (neighbor sets); the generation keeps groups of an older policy apart.
        peer_part = info.address if "peer" in chain.reads else None
        identity = (self._policy_generation, chain.names, chain.default, peer_part)
        policy_filter = ChainFilter(
            chain,
            info,
            exporting=True,
            local4=key.local_address,
            local6=key.local_address6,
        )
        return attrs.evolve(key, policy=identity, export_filter=policy_filter)

    def reconfigure(self, config: DaemonConfig) -> None:
        """Apply a new configuration; unchanged neighbours keep their sessions."""
        if (config.global_.asn, config.global_.router_id) != (self.asn, self.router_id):
            log.warning("global asn/router_id changes need a restart; kept the old ones")
        if (config.global_.cluster_id or self.router_id) != self.cluster_id:
            log.warning("global cluster_id changes need a restart; kept the old one")
        if config.policy != self._policy_config:
            self.set_policy(_compiled(config))
            self._policy_config = config.policy
        wanted = {n.address: n for n in config.neighbors}
        for address, peer in list(self._peers.items()):
            if wanted.get(address) != peer.config:
                self.remove_peer(address)
        for address, neighbor in wanted.items():
            if address not in self._peers:
                self.add_peer(neighbor)
        # Routes from the file follow the file; routes added at run time (pybgp rib add,
        # the API) stay, as GoBGP keeps API routes across a reload.
        new_routes = {r.prefix: r for r in config.routes}
        for prefix in self._file_routes - set(new_routes):
            if prefix in self._routes:
                self.withdraw(prefix)
        for prefix, route in new_routes.items():
            if self._routes.get(prefix) != route:
                self.announce(route)
        self._file_routes = set(new_routes)

    # -- routes we originate ----------------------------------------------------------
    def announce(self, route: RouteConfig) -> None:
        family = route.family
        values: dict[int, Any] = {
            AttrType.ORIGIN: Origin[route.origin.upper()],
            AttrType.AS_PATH: (),
        }
        if route.med is not None:
            values[AttrType.MULTI_EXIT_DISC] = route.med
        if route.local_pref is not None:
            values[AttrType.LOCAL_PREF] = route.local_pref
        if route.communities:
            values[AttrType.COMMUNITIES] = route.communities
        if route.large_communities:
            values[AttrType.LARGE_COMMUNITIES] = route.large_communities
        next_hop = route.next_hop or ("::" if family.afi == AFI_IPV6 else "0.0.0.0")
        key = nlri_from_str(route.prefix, family)
        self._routes[route.prefix] = route
        self._apply(self._local.announce(family, [key], PathAttributes.build(values), next_hop))

    def announce_json(self, data: dict[str, Any]) -> str:
        route = parse_route(data)
        self.announce(route)
        return route.prefix

    def withdraw(self, prefix: str) -> str:
        route = self._routes.pop(prefix, None)
        if route is None:
            raise ValueError(f"{prefix} is not a route we originate")
        self._apply(self._local.withdraw(route.family, [nlri_from_str(route.prefix, route.family)]))
        return prefix

    # -- reading ------------------------------------------------------------------------
    def neighbors(self, address: str | None = None) -> list[dict[str, Any]]:
        peers = [self._peers[address]] if address else list(self._peers.values())
        if address and address not in self._peers:
            raise ValueError(f"no neighbor {address}")
        return [self._neighbor_json(peer) for peer in peers]

    def _neighbor_json(self, peer: _Peer) -> dict[str, Any]:
        session, negotiated = peer.session, peer.session.conn.negotiated
        up = session.established_at
        group = self._out.group_of(peer.config.address)
        families = {}
        for family in peer.config.families:
            counts = peer.adj_in.counts(family) if peer.adj_in else None
            families[family.name] = {
                "received": counts.received if counts else 0,
                "accepted": counts.accepted if counts else 0,
                "advertised": group.advertised(peer.config.address, family) if group else 0,
                "stale": peer.adj_in.stale_count(family) if peer.adj_in else 0,
            }
        established = session.state is State.ESTABLISHED and negotiated is not None
        return {
            "address": peer.config.address,
            "peer_asn": peer.config.peer_asn,
            "description": peer.config.description,
            "state": session.state.value,
            "uptime": trio.current_time() - up if up is not None else None,
            "router_id": negotiated.peer_open.bgp_id if established and negotiated else None,
            "hold_time": negotiated.hold_time if established and negotiated else None,
            "last_error": session.last_error,
            "bfd": self._bfd.info(peer.config),
            "peer_graceful_restart": (
                peer.peer_restart.to_json() if peer.peer_restart is not None else None
            ),
            "families": families,
        }

    def rib_json(
        self, family: str | None = None, prefix: str | None = None
    ) -> list[dict[str, Any]]:
        families = [f for f in FAMILIES if family in (None, f.name.split("-")[0])]
        out = []
        for fam in families:
            loc = self._loc[fam]
            if prefix is not None:
                try:
                    keys = [nlri_from_str(prefix, fam)]
                except ValueError:
                    continue
            else:
                keys = [key for key, _ in loc.items()]
            sources = self._sources()
            for key in keys:  # every path, best first (ADD-PATH in: several per peer)
                shared = loc.multipath(key)
                for rank, ((_, path_id), route) in enumerate(loc.ranked(key, sources)):
                    entry = _route_json(nlri_to_str(key, fam), route, rank == 0)
                    entry.update(multipath=route in shared, path_id=path_id)
                    out.append(entry)
        return out

    def policy_json(self) -> dict[str, Any]:
        """The policies in force: the definitions, the global attachment, and the chain
        each neighbour gets (its own policies, then the global ones, then the default)."""
        compiled = self.policy
        neighbors = {}
        for address in self._peers:
            imp, exp = compiled.import_chain(address), compiled.export_chain(address)
            neighbors[address] = {
                "import": list(imp.names),
                "default_import": imp.default_action,
                "export": list(exp.names),
                "default_export": exp.default_action,
            }
        return {
            "definitions": _plain(
                attrs.asdict(compiled.definitions, value_serializer=_policy_value)
            ),
            "global": _plain(attrs.asdict(compiled.assignment.global_)),
            "neighbors": neighbors,
        }

    def explain_json(self, prefix: str, address: str, direction: str = "export") -> dict[str, Any]:
        """Why neighbour `address` gets (export) or we took from it (import) `prefix`: each
        statement of its chain, tried in order, and the verdict."""
        peer = self._peers.get(address)
        if peer is None:
            raise ValueError(f"no neighbor {address}")
        if direction not in ("import", "export"):
            raise ValueError(f"direction: import or export, not {direction!r}")
        if peer.info is None or peer.key is None or peer.adj_in is None:
            raise ValueError(f"neighbor {address} is not established")
        family = IPV6_UNICAST if ":" in prefix else IPV4_UNICAST
        key = nlri_from_str(prefix, family)
        out: dict[str, Any] = {
            "prefix": nlri_to_str(key, family),
            "neighbor": address,
            "direction": direction,
            "paths": [],
        }
        if direction == "import":
            chain = self.policy.import_chain(address)
            judge = ChainFilter(chain, peer.info)
            candidates = sorted(peer.adj_in.received_paths(family, key).items())
            if not candidates:
                out["note"] = f"{address} sent no route for {out['prefix']}"
        else:
            chain = self.policy.export_chain(address)
            judge = ChainFilter(
                chain,
                peer.info,
                exporting=True,
                local4=peer.key.local_address,
                local6=peer.key.local_address6,
            )
            candidates = []
            best = self._loc[family].best(key)
            exported = export(best, peer.key, family) if best is not None else None
            if best is None:
                out["note"] = f"no route for {out['prefix']} in the Loc-RIB"
            elif peer.key.split_horizon and best.peer.address == address:
                out["note"] = f"the best path came from {address}: not sent back to it"
            elif exported is None:
                out["note"] = (
                    "held back before policy: iBGP to iBGP without reflection, "
                    "NO_EXPORT / NO_ADVERTISE, or no next hop for the family"
                )
            else:
                sent = Route(exported.attributes, exported.next_hop, best.peer)
                candidates = [(0, sent)]
        out["chain"] = list(chain.names)
        out["default"] = chain.default_action
        for path_id, route in candidates:
            why = explain(chain, judge.context(family, key, route))
            out["paths"].append(
                {
                    "path_id": path_id,
                    "route": _route_json(out["prefix"], route, False),
                    "accepted": why.result.accepted,
                    "decided_by": why.result.decided_by,
                    "steps": why.lines(),
                }
            )
        return out

    def loc_rib(self, family: Family) -> dict[str, tuple[str, ...]]:
        """prefix -> next hops of the best path(s), for programs."""
        loc = self._loc[family]
        return {
            nlri_to_str(k, family): tuple(r.next_hop for r in loc.multipath(k))
            for k, _ in loc.items()
        }

    def subscribe_best_paths(self) -> trio.MemoryReceiveChannel[BestPathChange]:
        send, receive = trio.open_memory_channel[BestPathChange](math.inf)
        self._best_subscribers.append(send)
        return receive

    def subscribe_peer_states(self) -> trio.MemoryReceiveChannel[PeerStateChange]:
        send, receive = trio.open_memory_channel[PeerStateChange](math.inf)
        self._state_subscribers.append(send)
        return receive

    # -- events from sessions ---------------------------------------------------------
    async def _accept(self, stream: trio.SocketStream, address: Any) -> None:
        peer = self._peers.get(str(address))
        if peer is None:
            dynamic = next((d for d in self._dynamic if _in_prefix(str(address), d.prefix)), None)
            if dynamic is None:
                return
            self.add_peer(
                NeighborConfig(
                    address=str(address),
                    peer_asn=dynamic.peer_asn,
                    password_file=dynamic.password_file,
                    passive=True,
                )
            )
            peer = self._peers[str(address)]
        await peer.session.running.wait()  # a neighbour just made: its task starts first
        peer.session.accept(stream)

    def _on_event(self, session: PeerSession, event: Event) -> None:
        address = session.dial.address
        peer = self._peers.get(address)
        if peer is None or peer.session is not session:
            return
        if isinstance(event, UpdateReceived):
            if peer.adj_in is not None:
                update = event.update
                self._apply(peer.adj_in.apply(update))
                self._check_limits(peer)
                if not update.nlri and (family := update.end_of_rib()) is not None:
                    self._end_of_rib(peer, family)
        elif isinstance(event, Established):
            self._up(peer, event)
            self._bfd.established(peer.config, session)
        elif isinstance(event, RouteRefreshReceived):
            self._route_refresh(peer, event.message)
        elif isinstance(event, StateChanged):
            change = PeerStateChange(address, event.old.value, event.new.value)
            for channel in self._state_subscribers:
                channel.send_nowait(change)
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
                self._down(address, peer, graceful=self._helping(peer, event))

    def _up(self, peer: _Peer, event: Established) -> None:
        negotiated, config = event.negotiated, peer.config
        info = PeerInfo(
            address=config.address,
            asn=negotiated.peer_asn,
            router_id=negotiated.peer_open.bgp_id,
            ibgp=negotiated.peer_asn == self.asn,
            local_asn=self.asn,
            route_reflector_client=config.route_reflector_client,
            enforce_first_as=config.enforce_first_as,
        )
        retained = peer.adj_in  # the routes of the session before, kept stale (§4.2)
        if retained is not None:
            retained.peer, retained.import_filter = info, self._import_filter(info)
            self._back_from_restart(peer, retained, negotiated.graceful_restart)
        else:
            peer.adj_in = AdjRibIn(
                info,
                self._import_filter(info),
                router_id=self.router_id,
                cluster_id=self.cluster_id,
            )
        peer.peer_restart = negotiated.graceful_restart
        self._sources_changed()
        local = peer.session.local_address() or config.local_address
        local4 = local if local and ":" not in local else None
        local6 = local if local and ":" in local else None
        needs_self = info.external or config.next_hop_self
        v4_over_v6 = ExtendedNextHopFamily(family=IPV4_UNICAST, next_hop_afi=AFI_IPV6)
        extended = v4_over_v6 in negotiated.extended_next_hop  # RFC 8950
        families = frozenset(
            f
            for f in negotiated.families
            if f in FAMILIES
            and not (
                needs_self
                and (local6 if f.afi == AFI_IPV6 or (extended and not local4) else local4) is None
            )
        )
        ctx = negotiated.context
        key = ExportKey(
            ibgp=info.ibgp,
            local_asn=self.asn,
            local_address=local4,
            local_address6=local6,
            asn4=ctx.asn4,
            addpath_tx=ctx.addpath_tx,
            send_paths=config.add_path_send if ctx.addpath_tx else 1,
            extended_message=ctx.extended_message,
            next_hop_self=config.next_hop_self,
            route_reflector_client=config.route_reflector_client,
            cluster_id=self.cluster_id,
            families=families,
            extended_next_hop=extended,
        )
        peer.info, peer.key = info, self._with_export_policy(key, info)
        group = self._out.add_peer(info, peer.key, self._loc)
        for deferral in (self._deferral, self._fib_deferral):
            if deferral is not None:
                deferral.peer_up(config.address, families, negotiated.graceful_restart)
        if self._deferral is None:
            peer.session.send(group.table_messages(config.address))
        self._end_deferral_if_done()  # else our table goes out when the deferral ends
        self._resets.log(
            trio.current_time(),
            (config.address, "up"),
            logging.INFO,
            "peer %s established (AS %d, %s)",
            config.address,
            info.asn,
            ", ".join(f.name for f in families),
        )

    def _down(self, address: str, peer: _Peer, graceful: bool = False) -> None:
        peer.info = peer.key = None
        self._out.remove_peer(address)
        if peer.adj_in is None:
            return
        if graceful:
            self._retain(peer, peer.adj_in)
            return
        adj_in, peer.adj_in = peer.adj_in, None
        self._sources_changed()
        self._apply(adj_in.clear())

    # -- graceful restart (RFC 4724) ----------------------------------------------------
    def _helping(self, peer: _Peer, event: SessionDown) -> bool:
        """Whether to keep the peer's routes: it announced graceful restart, and the session
        ended without a NOTIFICATION either way (§4.2; a NOTIFICATION ends it for good)."""
        cap = peer.peer_restart
        return cap is not None and cap.restart_time > 0 and event.notification is None

    def _retain(self, peer: _Peer, adj_in: AdjRibIn) -> None:
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
        self._apply(touched)
        log.info(
            "peer %s restarting: its routes stay, stale, for up to %d s",
            peer.config.address,
            cap.restart_time,
        )
        self._stale_timer(peer, cap.restart_time)

    def _back_from_restart(
        self, peer: _Peer, adj_in: AdjRibIn, cap: GracefulRestart | None
    ) -> None:
        """The peer is back: stale routes of families it did not keep forwarding for go at
        once; the others wait for its End-of-RIB (or the stale time)."""
        kept = forwarding_kept(cap)
        touched = []
        for family in adj_in.stale_families():
            if family not in kept:
                touched += adj_in.sweep_stale(family)
        self._apply(touched)
        self._stale_timer(peer, self.restart.stale_time)

    def _stale_timer(self, peer: _Peer, seconds: float) -> None:
        if peer.stale_timer is not None:
            peer.stale_timer.cancel()
        scope = peer.stale_timer = trio.CancelScope()
        if self._nursery is not None:
            self._nursery.start_soon(self._sweep_later, peer, scope, seconds)

    async def _sweep_later(self, peer: _Peer, scope: trio.CancelScope, seconds: float) -> None:
        with scope:
            await trio.sleep(seconds)
            adj_in = peer.adj_in
            if adj_in is None:
                return
            log.info("peer %s: its stale routes expired", peer.config.address)
            touched = [t for f in adj_in.stale_families() for t in adj_in.sweep_stale(f)]
            self._apply(touched)
            if peer.info is None:  # still down: nothing of it is left
                peer.adj_in = None
                self._sources_changed()

    def _drop_retained(self, peer: _Peer) -> None:
        """A removed neighbour: routes kept for its restart go too."""
        if peer.stale_timer is not None:
            peer.stale_timer.cancel()
        if peer.adj_in is not None:
            adj_in, peer.adj_in = peer.adj_in, None
            self._sources_changed()
            self._apply(adj_in.clear())

    def _end_of_rib(self, peer: _Peer, family: Family) -> None:
        adj_in = peer.adj_in
        if adj_in is not None and family in adj_in.stale_families():
            self._apply(adj_in.sweep_stale(family))
            if not adj_in.stale_families() and peer.stale_timer is not None:
                peer.stale_timer.cancel()
        for deferral in (self._deferral, self._fib_deferral):
            if deferral is not None:
                deferral.end_of_rib(peer.config.address, family)
        self._end_deferral_if_done()

    async def _deferral_timer(self) -> None:
        await trio.sleep(self.restart.deferral_time)
        if self._deferral is not None or self._fib_deferral is not None:
            log.info("selection deferral timer ran out")
            self._end_deferral()
            self._end_fib_deferral()

    def _end_deferral_if_done(self) -> None:
        if self._deferral is not None and self._deferral.done:
            log.info("End-of-RIB in from every peer not restarting itself: advertising now")
            self._end_deferral()
        if self._fib_deferral is not None and self._fib_deferral.done:
            self._end_fib_deferral()

    def _end_deferral(self) -> None:
        """Selection is complete (§4.1): every peer gets our whole table and End-of-RIB,
        and the kernel is brought in line with the Loc-RIB (routes gone while we were
        away are removed)."""
        if self._deferral is None:
            return
        self._deferral = None
        self.restarting = False  # later OPENs: no Restart State bit
        for peer in self._peers.values():
            peer.session.use_config(_session_config(self, peer.config))
        self._out.flush()  # the groups' tables are current; the whole table follows
        for address, peer in self._peers.items():
            group = self._out.group_of(address)
            if group is not None and peer.session.state is State.ESTABLISHED:
                peer.session.send(group.table_messages(address))

    def _end_fib_deferral(self) -> None:
        if self._fib_deferral is None:
            return
        self._fib_deferral = None
        if self.fib is not None:
            self._fib_reconcile = True
        self._fib_wake.set()

    def _route_refresh(self, peer: _Peer, message: RouteRefresh) -> None:
        """RFC 2918 §4: the family's table again. With enhanced route refresh (RFC 7313 §4)
        it is framed by BoRR and EoRR; a BoRR from the peer marks its routes of the family
        stale, its EoRR removes those it did not send again."""
        address, family = peer.config.address, message.family
        if message.subtype == RefreshSubtype.NORMAL:
            group = self._out.group_of(address)
            negotiated = peer.session.conn.negotiated
            if group is None or negotiated is None or self._deferral is not None:
                return
            enhanced = negotiated.enhanced_route_refresh
            conn = peer.session.conn
            if enhanced:
                conn.send_route_refresh(family, trio.current_time(), RefreshSubtype.BORR)
            peer.session.send(group.table_messages(address, family, end_of_rib_marker=False))
            if enhanced:
                conn.send_route_refresh(family, trio.current_time(), RefreshSubtype.EORR)
        elif peer.adj_in is not None and message.subtype == RefreshSubtype.BORR:
            peer.adj_in.mark_stale(family)
        elif peer.adj_in is not None and message.subtype == RefreshSubtype.EORR:
            touched = peer.adj_in.sweep_stale(family)
            self._apply(touched)
            gone = sum(len(t.prefixes) for t in touched)
            log.info("peer %s refreshed %s: %d stale prefixes removed", address, family.name, gone)

    def _check_limits(self, peer: _Peer) -> None:
        if peer.adj_in is None:
            return
        for family, limit in peer.config.max_prefixes.items():
            if peer.adj_in.counts(family).received > limit:
                log.warning(
                    "peer %s sent more than %d %s prefixes", peer.config.address, limit, family.name
                )
                peer.session.prefix_limit_exceeded(family, limit)
                return

    # -- the RIB pipeline ---------------------------------------------------------------
    def _sources(self) -> list[AdjRibIn]:
        found = self._sources_cache
        if found is None:
            found = self._sources_cache = [
                self._local,
                *(p.adj_in for p in self._peers.values() if p.adj_in is not None),
            ]
            self._lone_as = _lone_as(found)
        return found

    def _sources_changed(self) -> None:
        """A peer's Adj-RIB-In came, went or was kept for its restart."""
        self._sources_cache = None

    def _ranked_paths(self, family: Family, prefix: Nlri) -> Ranked:
        """Every path of `prefix`, best first: for peers that take several (ADD-PATH)."""
        return self._loc[family].ranked(prefix, self._sources())

    def _apply(self, touched: Iterable[Touched]) -> None:
        sources = self._sources()
        for item in touched:
            changes = self._loc[item.family].apply(item, sources, self._lone_as)
            if changes:
                self._out.enqueue(item.family, changes)
                self._publish(item.family, changes)
            if self._out.wants_paths:  # ADD-PATH send: any path of the prefixes may go out
                self._out.enqueue_paths(item.family, item.prefixes)
        self._flush.set()

    def _publish(self, family: Family, changes: list[BestChange]) -> None:
        if not (self._best_subscribers or self.fib is not None):
            return
        loc = self._loc[family]
        for prefix, _old, new in changes:
            text = nlri_to_str(prefix, family)
            hops = tuple(r.next_hop for r in loc.multipath(prefix)) if new is not None else ()
            if self.fib is not None and (new is None or not new.peer.local):
                self._fib_pending[text] = hops
                self._fib_wake.set()
            if self._best_subscribers:
                path = aspath.as_path_to_str(new.attributes.as_path) if new is not None else ""
                change = BestPathChange(family, text, hops, path)
                for channel in self._best_subscribers:
                    channel.send_nowait(change)

    async def _flusher(self) -> None:
        while True:
            await self._flush.wait()
            self._flush = trio.Event()
            if self._deferral is not None:
                continue  # nothing goes out before our selection is complete (RFC 4724 §4.1)
            # In parts, yielding between them: a whole table's worth of changes at once
            # would hold the event loop (and every session's timers) for seconds.
            while self._out.has_pending:
                self._send_out(self._out.flush(limit=FLUSH_CHUNK))
                await trio.sleep(0)

    def _send_out(self, groups: dict[Any, list[Any]]) -> None:
        per_peer: dict[str, list[bytes]] = {}
        for outgoing in groups.values():
            for message, receivers in outgoing:
                for address in receivers:
                    per_peer.setdefault(address, []).append(message)
        for address, messages in per_peer.items():
            peer = self._peers.get(address)
            if peer is not None and peer.session.state is State.ESTABLISHED:
                peer.session.send(messages)

    async def _fib_writer(self) -> None:
        while True:
            await self._fib_wake.wait()
            self._fib_wake = trio.Event()
            if self._fib_deferral is not None:
                continue  # the kernel keeps the routes of before our restart meanwhile
            pending, self._fib_pending = self._fib_pending, {}
            if self._fib_reconcile:
                self._fib_reconcile = False
                await trio.to_thread.run_sync(self.fib.reconcile, self._fib_table())
            await trio.to_thread.run_sync(self.fib.apply, pending)

    def _fib_table(self) -> dict[str, tuple[str, ...]]:
        """Every best path the kernel should have (not our own routes)."""
        wanted: dict[str, tuple[str, ...]] = {}
        for family, loc in self._loc.items():
            for key, route in loc.items():
                if not route.peer.local:
                    wanted[nlri_to_str(key, family)] = tuple(r.next_hop for r in loc.multipath(key))
        return wanted


def _lone_as(sources: Sequence[AdjRibIn]) -> Callable[[int | None], bool] | None:
    """Whether no two sources can hold paths of one neighbour AS: every source (but our own
    routes) an eBGP peer whose paths must start with its AS. None when some source is not."""
    counts: dict[int, int] = {}
    for source in sources:
        peer = source.peer
        if peer.local:
            continue
        if not (peer.external and peer.enforce_first_as):
            return None
        counts[peer.asn] = counts.get(peer.asn, 0) + 1
    return lambda asn: asn is not None and counts.get(asn, 0) <= 1


def _route_json(prefix: str, route: Any, best: bool) -> dict[str, Any]:
    a = route.attributes
    return {
        "prefix": prefix,
        "next_hop": route.next_hop,
        "as_path": aspath.as_path_to_str(a.as_path),
        "origin": Origin(a.origin).name.lower(),
        "med": a.med,
        "local_pref": a.local_pref,
        "communities": [WELL_KNOWN.get(c) or community_to_str(c) for c in a.communities],
        "large_communities": [large_community_to_str(c) for c in a.large_communities],
        "originator_id": a.originator_id,
        "cluster_list": list(a.cluster_list),
        "peer": route.peer.address if not route.peer.local else "local",
        "best": best,
    }


def _policy_value(instance: Any, field: Any, value: Any) -> Any:
    """Communities in policy actions as people write them ("65000:1", "no-export")."""
    if field is None or field.name not in ("add", "replace") or value is None:
        return value
    if isinstance(instance, CommunityAction):
        return [WELL_KNOWN.get(c) or community_to_str(c) for c in value]
    if isinstance(instance, LargeCommunityAction):
        return [large_community_to_str(c) for c in value]
    return value


def _plain(value: Any) -> Any:
    """attrs.asdict output made JSON-ready (tuples as lists, other values as text)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _compiled(config: DaemonConfig) -> CompiledPolicy:
    if config.policy is None:
        return CompiledPolicy(Definitions())
    try:
        return config.policy.compile()
    except PolicyError as exc:
        raise ConfigError(f"policy: {exc}") from None


def _key(password_file: str | None) -> bytes | None:
    if password_file is None:
        return None
    with open(password_file, "rb") as handle:
        return handle.read().strip()


def _session_config(speaker: Speaker, n: NeighborConfig) -> SessionConfig:
    return SessionConfig(
        local_asn=speaker.asn,
        router_id=speaker.router_id,
        peer_asn=n.peer_asn,
        hold_time=n.hold_time,
        connect_retry_time=max(n.connect_retry, 0.1),
        idle_hold_time=1.0,
        idle_hold_max=30.0,
        passive=n.passive,
        families=n.families,
        max_prefixes=n.max_prefixes,
        restart_after=n.max_prefixes_restart,
        enhanced_route_refresh=True,
        graceful_restart=capability(speaker.restart, n.families, speaker.restarting),
        add_path=_add_path(n),
        extended_next_hop=(
            (ExtendedNextHopFamily(family=IPV4_UNICAST, next_hop_afi=AFI_IPV6),)
            if n.extended_next_hop and IPV4_UNICAST in n.families
            else ()
        ),
    )


def _add_path(n: NeighborConfig) -> dict[Family, AddPathMode]:
    """The ADD-PATH capability we announce (RFC 7911 §4), the same for every family."""
    receive, send = n.add_path_receive, n.add_path_send > 0
    if not (receive or send):
        return {}
    mode = AddPathMode.SEND if send else AddPathMode.RECEIVE
    return dict.fromkeys(n.families, AddPathMode.BOTH if receive and send else mode)


def _dial(n: NeighborConfig, key: bytes | None) -> Dial:
    return Dial(
        address=n.address,
        port=n.port,
        local_address=n.local_address,
        md5_key=key,
        ttl=n.multihop_ttl,
        gtsm=n.ttl_security,
    )


def _in_prefix(address: str, prefix: str) -> bool:
    return ipaddress.ip_address(address) in ipaddress.ip_network(prefix)


async def _cancel_later(scope: trio.CancelScope) -> None:
    await trio.sleep(0.5)
    scope.cancel()
