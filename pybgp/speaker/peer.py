"""One configured neighbour as the Speaker keeps it, and what its configuration turns into:
the session settings (the OPEN we send), where to dial, and, once Established, the
`PeerInfo` and `ExportKey` that place it in the RIBs."""

from __future__ import annotations

import attrs
import trio

from pybgp.config import NeighborConfig
from pybgp.net.session import Dial, PeerSession
from pybgp.rib import AdjRibIn, ExportKey, PeerInfo
from pybgp.session.config import SessionConfig
from pybgp.session.fsm import State
from pybgp.session.negotiation import Negotiated
from pybgp.wire.capabilities import AddPathMode, ExtendedNextHopFamily, GracefulRestart
from pybgp.wire.constants import AFI_IPV6, IPV4_UNICAST, IPV6_UNICAST, Family

FAMILIES = (IPV4_UNICAST, IPV6_UNICAST)  # the families the Speaker carries
V4_OVER_V6 = ExtendedNextHopFamily(family=IPV4_UNICAST, next_hop_afi=AFI_IPV6)  # RFC 8950


@attrs.define
class Peer:
    config: NeighborConfig
    session: PeerSession
    scope: trio.CancelScope
    adj_in: AdjRibIn | None = None  # also while its routes are kept for its restart
    info: PeerInfo | None = None  # while Established
    key: ExportKey | None = None
    peer_restart: GracefulRestart | None = None  # its capability in the last session
    notification_restart: bool = False  # both set the N bit in the last session (RFC 8538)
    stale_timer: trio.CancelScope | None = None  # restart or stale time running out

    @property
    def address(self) -> str:
        return self.config.address

    @property
    def established(self) -> bool:
        return self.session.state is State.ESTABLISHED


def session_config(
    n: NeighborConfig,
    *,
    local_asn: int,
    router_id: str,
    graceful_restart: GracefulRestart | None = None,
) -> SessionConfig:
    return SessionConfig(
        local_asn=local_asn,
        router_id=router_id,
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
        graceful_restart=graceful_restart,
        add_path=_add_path(n),
        extended_next_hop=(
            (V4_OVER_V6,) if n.extended_next_hop and IPV4_UNICAST in n.families else ()
        ),
    )


def _add_path(n: NeighborConfig) -> dict[Family, AddPathMode]:
    """The ADD-PATH capability we announce (RFC 7911 §4), the same for every family."""
    receive, send = n.add_path_receive, n.add_path_send > 0
    if not (receive or send):
        return {}
    mode = AddPathMode.SEND if send else AddPathMode.RECEIVE
    return dict.fromkeys(n.families, AddPathMode.BOTH if receive and send else mode)


def dial(n: NeighborConfig, md5_key: bytes | None) -> Dial:
    return Dial(
        address=n.address,
        port=n.port,
        local_address=n.local_address,
        md5_key=md5_key,
        ttl=n.multihop_ttl,
        gtsm=n.ttl_security,
    )


def read_key(password_file: str | None) -> bytes | None:
    """A TCP MD5 key from its file (never kept in the configuration)."""
    if password_file is None:
        return None
    with open(password_file, "rb") as handle:
        return handle.read().strip()


def peer_info(config: NeighborConfig, negotiated: Negotiated, local_asn: int) -> PeerInfo:
    return PeerInfo(
        address=config.address,
        asn=negotiated.peer_asn,
        router_id=negotiated.peer_open.bgp_id,
        ibgp=negotiated.peer_asn == local_asn,
        local_asn=local_asn,
        route_reflector_client=config.route_reflector_client,
        enforce_first_as=config.enforce_first_as,
    )


def export_key(
    config: NeighborConfig,
    negotiated: Negotiated,
    info: PeerInfo,
    local: str | None,
    cluster_id: str,
) -> ExportKey:
    """How the peer is to be sent routes (its update group, before the export policy), with
    `local` our address on the session. A family whose next hop must be ours but we have no
    address of its kind is left out."""
    local4 = local if local and ":" not in local else None
    local6 = local if local and ":" in local else None
    needs_self = info.external or config.next_hop_self
    extended = V4_OVER_V6 in negotiated.extended_next_hop

    def self_address(family: Family) -> str | None:
        return local6 if family.afi == AFI_IPV6 or (extended and not local4) else local4

    families = frozenset(
        f
        for f in negotiated.families
        if f in FAMILIES and not (needs_self and self_address(f) is None)
    )
    ctx = negotiated.context
    return ExportKey(
        ibgp=info.ibgp,
        local_asn=info.local_asn,
        local_address=local4,
        local_address6=local6,
        asn4=ctx.asn4,
        addpath_tx=ctx.addpath_tx,
        send_paths=config.add_path_send if ctx.addpath_tx else 1,
        extended_message=ctx.extended_message,
        next_hop_self=config.next_hop_self,
        route_reflector_client=config.route_reflector_client,
        cluster_id=cluster_id,
        families=families,
        extended_next_hop=extended,
    )
