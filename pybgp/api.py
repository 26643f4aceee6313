"""`pybgp.Speaker`: a BGP speaker on trio, for programs (and pybgpd, and kube-router).

    async with trio.open_nursery() as nursery:
        speaker = Speaker(asn=65000, router_id="10.255.0.1", listen=["10.0.0.1"])
        await nursery.start(speaker.run)
        speaker.add_peer(NeighborConfig(address="10.0.0.2", peer_asn=65001))
        speaker.announce(RouteConfig(prefix="10.1.0.0/24"))
        async for change in speaker.subscribe_best_paths(): ...

Peers come and go at run time without touching other sessions. This class is the facade;
its parts are in `pybgp.speaker`: `sessions` (what sessions report, into the RIBs),
`pipeline` (Adj-RIB-In -> Loc-RIB -> update groups -> peers, subscribers and the FIB),
`graceful` (graceful restart and route refresh), `policies` and `views` (what the control
socket and the CLI print).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from typing import Any

import trio

from pybgp.bfd.neighbors import NeighborBfd
from pybgp.config import DaemonConfig, NeighborConfig, RouteConfig, parse_route
from pybgp.config_values import ConfigError
from pybgp.net.session import PeerSession
from pybgp.net.transport import BgpListener
from pybgp.policy import CompiledPolicy, Definitions, PolicyError
from pybgp.restart import RestartConfig, capability
from pybgp.session.config import SessionConfig
from pybgp.speaker.graceful import Graceful
from pybgp.speaker.peer import Peer, dial, read_key, session_config
from pybgp.speaker.pipeline import BestPathChange, RoutePipeline
from pybgp.speaker.policies import Policies
from pybgp.speaker.sessions import PeerStateChange, SessionObserver, Sessions
from pybgp.speaker.views import Views
from pybgp.wire.constants import AFI_IPV6, AttrType, Family, Origin
from pybgp.wire.nlri import nlri_from_str
from pybgp.wire.pathattrs import PathAttributes

__all__ = ["BestPathChange", "PeerStateChange", "Speaker"]
log = logging.getLogger(__name__)


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
        self.cluster_id = cluster_id or router_id  # RFC 4456 §7
        self.listen, self.port, self.fib = tuple(listen), port, fib
        self._peers: dict[str, Peer] = {}
        self._waiting: list[NeighborConfig] = []  # added before run()
        self._routes: dict[str, RouteConfig] = {}
        self._listener = BgpListener()
        self._nursery: trio.Nursery | None = None
        self._dynamic: Sequence[Any] = ()  # dynamic neighbour prefixes (config)
        self._file_routes: set[str] = set()  # prefixes the configuration file originates
        self._bfd = NeighborBfd()  # BFD sessions of neighbours with bfd = true
        self._policy_config: Any = None  # what `policy` was compiled from (configuration)
        # Import and export policies; without any, nothing is exported (default reject).
        self._policies = Policies(policy)
        self._pipeline = RoutePipeline(
            asn=asn, router_id=router_id, multipath=multipath, fib=fib, peers=self._peers
        )
        self._graceful = Graceful(
            self.restart, restarting, self._pipeline, self._peers, self._session_config
        )
        self._sessions = Sessions(
            asn=asn,
            router_id=router_id,
            cluster_id=self.cluster_id,
            peers=self._peers,
            pipeline=self._pipeline,
            graceful=self._graceful,
            policies=self._policies,
            bfd=self._bfd,
        )
        self._views = Views(self._peers, self._pipeline, self._policies, self._bfd)

    @property
    def policy(self) -> CompiledPolicy:
        """The import and export policies in force (`set_policy` changes them)."""
        return self._policies.compiled

    @property
    def restarting(self) -> bool:
        """Whether we are back from our own graceful stop and selection is still deferred."""
        return self._graceful.restarting

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
                self._listener.allow_prefix(dynamic.prefix, md5_key=read_key(dynamic.password_file))
            if self.listen:
                await nursery.start(self._listener.serve, self.listen, self.port, self._accept)
            self._pipeline.start(nursery)
            await nursery.start(self._bfd.run)
            self._graceful.start(nursery, [n.address for n in self._waiting])
            waiting, self._waiting = self._waiting, []
            for neighbor in waiting:
                self.add_peer(neighbor)
            task_status.started()

    async def shutdown(self, graceful: bool = False, flush_fib: bool = True) -> None:
        """Cease every session (so peers withdraw at once), then flush --fib routes unless
        `flush_fib` is false. With `graceful` (and graceful restart on), nothing is said or
        removed: the sessions just close with the process, and peers keep our routes as
        stale until we are back."""
        if graceful and self.restart.enabled:
            log.info("graceful stop: peers and the kernel keep our routes")
            return
        for peer in self._peers.values():
            peer.session.stop()
        await trio.sleep(0.2)  # let the NOTIFICATIONs go out
        if self.fib is not None and flush_fib:
            removed = await trio.to_thread.run_sync(self.fib.flush)
            log.info("removed %d kernel routes", removed)

    def repair_fib(self) -> None:
        """Read the kernel back and make it hold exactly our best paths again (a route
        someone deleted comes back); a no-op without a FIB, or while our restart defers."""
        self._pipeline.repair_fib()

    # -- peers --------------------------------------------------------------------------
    def add_peer(self, neighbor: NeighborConfig) -> None:
        if self._nursery is None:
            self._waiting.append(neighbor)
            return
        if neighbor.address in self._peers:
            raise ValueError(f"neighbor {neighbor.address} exists")
        key = neighbor.md5_key or read_key(neighbor.password_file)
        self._listener.set_peer(
            neighbor.address, md5_key=key, ttl=neighbor.multihop_ttl, gtsm=neighbor.ttl_security
        )
        config, on_event = self._session_config(neighbor), self._sessions.on_event
        session = PeerSession(config, dial(neighbor, key), on_event)
        scope = trio.CancelScope()
        self._peers[neighbor.address] = Peer(neighbor, session, scope)
        self._nursery.start_soon(_run_peer, session, scope)

    def _session_config(self, neighbor: NeighborConfig) -> SessionConfig:
        restart = capability(self.restart, neighbor.families, self.restarting)
        return session_config(
            neighbor, local_asn=self.asn, router_id=self.router_id, graceful_restart=restart
        )

    def remove_peer(self, address: str) -> None:
        peer = self._peers.pop(address, None)
        if peer is None:
            raise ValueError(f"no neighbor {address}")
        self._pipeline.sources_changed()
        self._listener.remove_peer(address)
        self._bfd.removed(address)
        peer.session.stop()
        self._sessions.down(peer)
        self._graceful.drop_retained(peer)
        self._graceful.peer_gone(address)
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
        if peer.established:
            self._graceful.ask_again(peer)
            self._sessions.readvertise(peer)
        return "softreset"

    def set_policy(self, policy: CompiledPolicy) -> None:
        """Apply new import and export policies without dropping any session, to the peers
        they concern (whose view of the policy changed, pybgp.policy.view): a route refresh
        asks such a peer for its routes again (import), and its Adj-RIB-Out is worked out
        anew, withdrawing what is no longer exported (export)."""
        before = self._policies.replace(policy)
        for peer in self._peers.values():
            self._sessions.apply_policy(peer, before)

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
        family, key = route.family, nlri_from_str(route.prefix, route.family)
        next_hop = route.next_hop or ("::" if family.afi == AFI_IPV6 else "0.0.0.0")
        self._routes[route.prefix] = route
        local = self._pipeline.local
        self._pipeline.apply(local.announce(family, [key], _attributes(route), next_hop))

    def announce_json(self, data: dict[str, Any]) -> str:
        route = parse_route(data)
        self.announce(route)
        return route.prefix

    def withdraw(self, prefix: str) -> str:
        route = self._routes.pop(prefix, None)
        if route is None:
            raise ValueError(f"{prefix} is not a route we originate")
        key = nlri_from_str(route.prefix, route.family)
        self._pipeline.apply(self._pipeline.local.withdraw(route.family, [key]))
        return prefix

    # -- reading (pybgp.speaker.views) --------------------------------------------------
    def neighbors(self, address: str | None = None) -> list[dict[str, Any]]:
        return self._views.neighbors(address)

    def rib_json(
        self, family: str | None = None, prefix: str | None = None
    ) -> list[dict[str, Any]]:
        return self._views.rib_json(family, prefix)

    def adj_rib_json(
        self, address: str, direction: str, family: str | None = None
    ) -> list[dict[str, Any]]:
        """`in`: what neighbour `address` sent us; `out`: what we send it, after policy."""
        return self._views.adj_rib_json(address, direction, family)

    def policy_json(self) -> dict[str, Any]:
        return self._views.policy_json()

    def explain_json(self, prefix: str, address: str, direction: str = "export") -> dict[str, Any]:
        return self._views.explain_json(prefix, address, direction)

    def loc_rib(self, family: Family) -> dict[str, tuple[str, ...]]:
        """prefix -> next hops of the best path(s), for programs."""
        return self._views.loc_rib(family)

    @property
    def views(self) -> Views:
        """Read-only views of the RIBs and peers (what the control socket and dumps read)."""
        return self._views

    def add_session_observer(self, observer: SessionObserver) -> None:
        """`observer` sees every UPDATE received and every state change, as they happen
        (pybgp.mrt's update log)."""
        self._sessions.observers.append(observer)

    def subscribe_best_paths(self) -> trio.MemoryReceiveChannel[BestPathChange]:
        return self._pipeline.subscribe()

    def subscribe_peer_states(self) -> trio.MemoryReceiveChannel[PeerStateChange]:
        return self._sessions.subscribe()

    # -- incoming connections -----------------------------------------------------------
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


def _attributes(route: RouteConfig) -> PathAttributes:
    """The path attributes of a route we originate."""
    values: dict[int, Any] = {AttrType.ORIGIN: Origin[route.origin.upper()], AttrType.AS_PATH: ()}
    if route.med is not None:
        values[AttrType.MULTI_EXIT_DISC] = route.med
    if route.local_pref is not None:
        values[AttrType.LOCAL_PREF] = route.local_pref
    if route.communities:
        values[AttrType.COMMUNITIES] = route.communities
    if route.large_communities:
        values[AttrType.LARGE_COMMUNITIES] = route.large_communities
    return PathAttributes.build(values)


def _compiled(config: DaemonConfig) -> CompiledPolicy:
    if config.policy is None:
        return CompiledPolicy(Definitions())
    try:
        return config.policy.compile()
    except PolicyError as exc:
        raise ConfigError(f"policy: {exc}") from None


def _in_prefix(address: str, prefix: str) -> bool:
    return ipaddress.ip_address(address) in ipaddress.ip_network(prefix)


async def _run_peer(session: PeerSession, scope: trio.CancelScope) -> None:
    with scope:
        await session.run()


async def _cancel_later(scope: trio.CancelScope) -> None:
    await trio.sleep(0.5)
    scope.cancel()
