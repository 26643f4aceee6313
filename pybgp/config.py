"""pybgpd's configuration file (TOML): parsed into frozen values, every mistake reported
with the key that holds it ("neighbors[1].peer_asn: ...")."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from pybgp.config_values import (
    ConfigError,
    ConfigTable,
    address_value,
    bool_value,
    choice,
    int_range,
    ipv4_value,
    list_of,
    network_value,
    read_toml,
    readable_file,
    seconds_value,
    string_value,
)
from pybgp.mrt.config import MrtConfig, parse_mrt
from pybgp.policy.config import NEIGHBOR_POLICY_KEYS, PolicyConfig
from pybgp.policy.config import parse as parse_policy
from pybgp.restart import RestartConfig
from pybgp.wire.communities import community_from_str, large_community_from_str
from pybgp.wire.constants import IPV4_UNICAST, IPV6_UNICAST, Family

BGP_PORT = 179


@attrs.frozen(kw_only=True)
class RouteConfig:
    """A route pybgpd originates."""

    prefix: str
    next_hop: str | None = None  # None: our own address toward each peer (next-hop-self)
    communities: tuple[int, ...] = ()
    large_communities: tuple[tuple[int, int, int], ...] = ()
    med: int | None = None
    local_pref: int | None = None
    origin: str = "igp"

    @property
    def family(self) -> Family:
        return IPV6_UNICAST if ":" in self.prefix else IPV4_UNICAST


@attrs.frozen(kw_only=True)
class NeighborConfig:
    address: str
    peer_asn: int
    description: str = ""
    password_file: str | None = None
    md5_key: bytes | None = attrs.field(default=None, repr=False)  # given directly (programs)
    passive: bool = False
    multihop_ttl: int | None = None  # eBGP multihop: outgoing TTL
    ttl_security: bool = False  # GTSM (RFC 5082)
    local_address: str | None = None
    port: int = BGP_PORT
    hold_time: int = 90
    connect_retry: float = 5.0
    families: tuple[Family, ...] = (IPV4_UNICAST, IPV6_UNICAST)
    max_prefixes: Mapping[Family, int] = attrs.field(factory=dict)
    max_prefixes_restart: float | None = None  # seconds before reconnecting after the limit
    next_hop_self: bool = False
    bfd: bool = False  # a BFD session (RFC 5880, 5881) takes the BGP session down fast
    bfd_min_rx_ms: int = 300  # BFD Required Min RX Interval
    bfd_min_tx_ms: int = 300  # BFD Desired Min TX Interval (once Up)
    bfd_multiplier: int = 3  # BFD Detect Mult
    route_reflector_client: bool = False  # RFC 4456: we reflect iBGP routes to and from it
    extended_next_hop: bool = False  # RFC 8950: IPv4 routes with IPv6 next hops
    enforce_first_as: bool = True  # eBGP paths must start with the peer's AS (off: route server)
    # ADD-PATH (RFC 7911), in every configured family: take several paths per prefix from
    # the peer; send it up to N paths per prefix (0: only the best, without path ids).
    add_path_receive: bool = False
    add_path_send: int = 0

    def password(self) -> str | None:
        """The MD5 key, read from its file when needed (never kept in the config)."""
        if self.password_file is None:
            return None
        return Path(self.password_file).read_text().strip()


@attrs.frozen(kw_only=True)
class DynamicNeighborConfig:
    prefix: str
    peer_asn: int
    password_file: str | None = None


@attrs.frozen(kw_only=True)
class GlobalConfig:
    asn: int
    router_id: str
    listen: tuple[str, ...] = ()
    port: int = BGP_PORT
    hold_time: int = 90
    multipath: int = 1  # ECMP: up to N equal best paths
    cluster_id: str | None = None  # route reflection (RFC 4456 §7); None: the router ID
    graceful_restart: RestartConfig = attrs.field(factory=RestartConfig)  # RFC 4724


@attrs.frozen(kw_only=True)
class DaemonConfig:
    global_: GlobalConfig
    neighbors: tuple[NeighborConfig, ...] = ()
    dynamic_neighbors: tuple[DynamicNeighborConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    policy: PolicyConfig | None = None  # [policy] and the neighbours' policy keys
    mrt: tuple[MrtConfig, ...] = ()  # [[mrt]]: table dumps and update logs (pybgp.mrt)

    def neighbor(self, address: str) -> NeighborConfig | None:
        return next((n for n in self.neighbors if n.address == address), None)


def load(path: str | Path) -> DaemonConfig:
    return parse(read_toml(path))


def parse(data: Mapping[str, Any]) -> DaemonConfig:
    table = ConfigTable(data, "")
    global_ = _parse_global(table.table("global", required=True))
    neighbors = tuple(_parse_neighbor(t, global_) for t in table.tables("neighbors"))
    seen: set[str] = set()
    for index, neighbor in enumerate(neighbors):
        if neighbor.address in seen:
            raise ConfigError(f"neighbors[{index}].address: {neighbor.address} is configured twice")
        seen.add(neighbor.address)
    dynamic = tuple(
        DynamicNeighborConfig(
            prefix=t.get("prefix", network_value, required=True),
            peer_asn=t.get("peer_asn", _asn, required=True),
            password_file=t.get("password_file", readable_file),
        )
        for t in table.tables("dynamic_neighbors")
    )
    routes = tuple(_parse_route(t) for t in table.tables("routes"))
    mrt = tuple(parse_mrt(t) for t in table.tables("mrt"))
    table.used.add("policy")
    policy = parse_policy(data)
    table.done()
    return DaemonConfig(
        global_=global_,
        neighbors=neighbors,
        dynamic_neighbors=dynamic,
        routes=routes,
        policy=policy,
        mrt=mrt,
    )


def _parse_global(t: ConfigTable) -> GlobalConfig:
    config = GlobalConfig(
        asn=t.get("asn", _asn, required=True),
        router_id=t.get("router_id", ipv4_value, required=True),
        listen=tuple(t.get("listen", list_of(address_value), default=[])),
        port=t.get("port", _port, default=BGP_PORT),
        hold_time=t.get("hold_time", _hold_time, default=90),
        multipath=t.get("multipath", int_range(1, 64), default=1),
        cluster_id=t.get("cluster_id", ipv4_value),
        graceful_restart=_parse_restart(t.table("graceful_restart")),
    )
    t.done()
    return config


def _parse_restart(t: ConfigTable) -> RestartConfig:
    config = RestartConfig(
        enabled=t.get("enabled", bool_value, default=False),
        restart_time=t.get("restart_time", int_range(0, 4095), default=120),
        deferral_time=t.get("deferral_time", seconds_value, default=360.0),
        stale_time=t.get("stale_time", seconds_value, default=360.0),
        notification=t.get("notification", bool_value, default=True),
    )
    t.done()
    return config


def _parse_neighbor(t: ConfigTable, global_: GlobalConfig) -> NeighborConfig:
    families = tuple(t.get("families", list_of(_family), default=[IPV4_UNICAST, IPV6_UNICAST]))
    limits = t.get("max_prefixes", _max_prefixes(families), default={})
    config = NeighborConfig(
        address=t.get("address", address_value, required=True),
        peer_asn=t.get("peer_asn", _asn, required=True),
        description=t.get("description", string_value, default=""),
        password_file=t.get("password_file", readable_file),
        passive=t.get("passive", bool_value, default=False),
        multihop_ttl=t.get("multihop_ttl", int_range(1, 255)),
        ttl_security=t.get("ttl_security", bool_value, default=False),
        local_address=t.get("local_address", address_value),
        port=t.get("port", _port, default=BGP_PORT),
        hold_time=t.get("hold_time", _hold_time, default=global_.hold_time),
        connect_retry=t.get("connect_retry", seconds_value, default=5.0),
        families=families,
        max_prefixes=limits,
        max_prefixes_restart=t.get("max_prefixes_restart", seconds_value),
        next_hop_self=t.get("next_hop_self", bool_value, default=False),
        bfd=t.get("bfd", bool_value, default=False),
        bfd_min_rx_ms=t.get("bfd_min_rx_ms", int_range(10, 60_000), default=300),
        bfd_min_tx_ms=t.get("bfd_min_tx_ms", int_range(10, 60_000), default=300),
        bfd_multiplier=t.get("bfd_multiplier", int_range(1, 255), default=3),
        route_reflector_client=t.get("route_reflector_client", bool_value, default=False),
        extended_next_hop=t.get("extended_next_hop", bool_value, default=False),
        enforce_first_as=t.get("enforce_first_as", bool_value, default=True),
        add_path_receive=t.get("add_path_receive", bool_value, default=False),
        add_path_send=t.get("add_path_send", int_range(0, 64), default=0),
    )
    t.used.update(NEIGHBOR_POLICY_KEYS)  # read by pybgp.policy.config
    t.done()
    return config


def parse_route(data: Mapping[str, Any]) -> RouteConfig:
    """One route (as in [[routes]]), e.g. from `pybgp rib add`; mistakes name the key."""
    return _parse_route(ConfigTable(data, "route"))


def _parse_route(t: ConfigTable) -> RouteConfig:
    config = RouteConfig(
        prefix=t.get("prefix", network_value, required=True),
        next_hop=t.get("next_hop", address_value),
        communities=tuple(t.get("communities", list_of(_community), default=[])),
        large_communities=tuple(t.get("large_communities", list_of(_large), default=[])),
        med=t.get("med", int_range(0, 2**32 - 1)),
        local_pref=t.get("local_pref", int_range(0, 2**32 - 1)),
        origin=t.get("origin", choice("igp", "egp", "incomplete"), default="igp"),
    )
    t.done()
    return config


_asn = int_range(1, 2**32 - 1)
_port = int_range(1, 65535)


def _hold_time(value: Any) -> int:
    hold = int_range(0, 65535)(value)
    if hold in (1, 2):
        raise ValueError("hold time must be 0 or at least 3 (RFC 4271 §4.2)")
    return hold


def _family(value: Any) -> Family:
    return Family.from_name(string_value(value))


def _community(value: Any) -> int:
    return community_from_str(string_value(value))


def _large(value: Any) -> tuple[int, int, int]:
    return large_community_from_str(string_value(value))


def _max_prefixes(families: tuple[Family, ...]) -> Callable[[Any], dict[Family, int]]:
    """An integer (the same limit for every family) or a table per family name."""

    def convert(value: Any) -> dict[Family, int]:
        if isinstance(value, dict):
            return {_family(name): int_range(1, 2**32 - 1)(limit) for name, limit in value.items()}
        limit = int_range(1, 2**32 - 1)(value)
        return dict.fromkeys(families, limit)

    return convert
