"""Checking the peer's OPEN (RFC 4271 §6.2) and negotiating what the session uses (RFC 5492),
and which of two colliding connections to keep (RFC 4271 §6.8, RFC 6286 §2.3)."""

from __future__ import annotations

import enum
import ipaddress

import attrs

from pybgp.session.config import SessionConfig
from pybgp.wire.capabilities import (
    FQDN,
    AddPath,
    BGPRole,
    CapabilityCode,
    EnhancedRouteRefresh,
    ExtendedMessage,
    ExtendedNextHop,
    ExtendedNextHopFamily,
    FourOctetAS,
    GracefulRestart,
    Multiprotocol,
    Role,
    RouteRefresh,
    UnknownCapability,
    encode_capability,
)
from pybgp.wire.constants import AS_TRANS, IPV4_UNICAST, ErrorCode, Family, OpenError
from pybgp.wire.context import CodecContext
from pybgp.wire.errors import BGPError
from pybgp.wire.open import Open

# RFC 9234 §4.2, Table 2: the peer's role that goes with ours.
_ROLE_PAIRS = {
    Role.PROVIDER: Role.CUSTOMER,
    Role.CUSTOMER: Role.PROVIDER,
    Role.RS: Role.RS_CLIENT,
    Role.RS_CLIENT: Role.RS,
    Role.PEER: Role.PEER,
}


@attrs.frozen(kw_only=True)
class Negotiated:
    """What one session runs with, settled when the peer's OPEN is accepted."""

    context: CodecContext
    local_open: Open
    peer_open: Open
    peer_asn: int
    families: tuple[Family, ...]  # both announced them (RFC 4760 §8), in our order
    hold_time: int  # the smaller of both (RFC 4271 §4.2); 0: no KEEPALIVEs, no HoldTimer
    keepalive_time: int  # a third of the hold time (RFC 4271 §10); 0 when it is 0
    send_hold_time: float  # RFC 9687 §3
    route_refresh: bool  # both announced it (RFC 2918 §2)
    enhanced_route_refresh: bool  # RFC 7313 §3.1
    extended_next_hop: frozenset[ExtendedNextHopFamily]  # both announced them (RFC 8950 §3)
    graceful_restart: GracefulRestart | None  # the peer's (RFC 4724)
    notification_restart: bool  # both set the N bit (RFC 8538 §2)
    peer_hostname: FQDN | None
    peer_role: int | None  # RFC 9234

    @property
    def peer_bgp_id(self) -> str:
        return self.peer_open.bgp_id


def _open_error(subcode: int, reason: str, data: bytes = b"") -> BGPError:
    return BGPError(ErrorCode.OPEN_MESSAGE, subcode, data, reason)


def peer_asn(peer: Open) -> int:
    """The peer's AS: the 4-octet AS capability's when present (RFC 6793 §4.1), which must
    agree with My AS: equal to it when it fits in 2 octets, else AS_TRANS in My AS."""
    four = peer.capability(FourOctetAS)
    if four is None:
        return peer.my_as
    if four.asn == AS_TRANS:
        raise _open_error(OpenError.BAD_PEER_AS, "AS_TRANS in the 4-octet AS capability")
    expected_my_as = four.asn if four.asn <= 0xFFFF else AS_TRANS
    if peer.my_as != expected_my_as:
        raise _open_error(
            OpenError.BAD_PEER_AS, f"My AS {peer.my_as} disagrees with 4-octet AS {four.asn}"
        )
    return four.asn


def check_peer_open(config: SessionConfig, peer: Open) -> int:
    """RFC 4271 §6.2 checks the codec cannot make alone; returns the peer's AS.

    (Version, AS 0, hold time 1 or 2, BGP ID 0 and role conflicts are the codec's.)
    """
    asn = peer_asn(peer)
    if asn != config.peer_asn:
        raise _open_error(OpenError.BAD_PEER_AS, f"peer AS {asn}, expected {config.peer_asn}")
    if config.ibgp and peer.bgp_id_int == int(ipaddress.IPv4Address(config.router_id)):
        # RFC 6286 §2.2: an internal peer must not use our BGP Identifier.
        raise _open_error(OpenError.BAD_BGP_ID, f"internal peer uses our BGP ID {peer.bgp_id}")
    _check_role(config, peer)
    return asn


def _check_role(config: SessionConfig, peer: Open) -> None:
    """RFC 9234 §4.2: roles must pair up; in strict mode the peer must announce one."""
    if config.role is None:
        return
    theirs = peer.capability(BGPRole)
    if theirs is None:
        if config.role_strict:
            raise _open_error(OpenError.ROLE_MISMATCH, "peer announced no BGP Role (strict)")
        return
    if theirs.role != _ROLE_PAIRS[config.role]:
        name = theirs.role_name or str(theirs.role)
        raise _open_error(OpenError.ROLE_MISMATCH, f"our role {config.role.name}, theirs {name}")


def _peer_families(peer: Open) -> tuple[Family, ...]:
    """RFC 4760 §8: without Multiprotocol capabilities, a peer speaks IPv4 unicast only."""
    return peer.families or (IPV4_UNICAST,)


def _has_route_refresh(peer: Open) -> bool:
    old = any(
        isinstance(c, UnknownCapability) and c.code == CapabilityCode.ROUTE_REFRESH_OLD
        for c in peer.capabilities
    )
    return old or peer.capability(RouteRefresh) is not None


def _addpath_modes(open_: Open) -> dict[Family, tuple[bool, bool]]:
    """(send, receive) per family; an AddPath with a mode outside 1..3 is ignored (RFC 7911 §4)."""
    modes: dict[Family, tuple[bool, bool]] = {}
    for cap in open_.capabilities_of(AddPath):
        if cap.understood:
            modes.update({e.family: (e.send, e.receive) for e in cap.families})
    return modes


def _addpath(
    local: Open, peer: Open, families: tuple[Family, ...]
) -> tuple[frozenset[Family], frozenset[Family]]:
    """(rx, tx): we receive path IDs where we offered Receive and they offered Send, and
    send them where we offered Send and they offered Receive (RFC 7911 §5)."""
    ours, theirs = _addpath_modes(local), _addpath_modes(peer)
    no = (False, False)
    rx = {f for f in families if ours.get(f, no)[1] and theirs.get(f, no)[0]}
    tx = {f for f in families if ours.get(f, no)[0] and theirs.get(f, no)[1]}
    return frozenset(rx), frozenset(tx)


def _both(local: Open, peer: Open, kind: type[EnhancedRouteRefresh | ExtendedMessage]) -> bool:
    return local.capability(kind) is not None and peer.capability(kind) is not None


def _next_hops(local: Open, peer: Open) -> frozenset[ExtendedNextHopFamily]:
    def entries(open_: Open) -> set[ExtendedNextHopFamily]:
        return {e for cap in open_.capabilities_of(ExtendedNextHop) for e in cap.families}

    return frozenset(entries(local) & entries(peer))


def _notification_restart(local: Open, peer: Open) -> bool:
    ours, theirs = local.capability(GracefulRestart), peer.capability(GracefulRestart)
    return ours is not None and theirs is not None and ours.notification and theirs.notification


def negotiate(config: SessionConfig, local: Open, peer: Open, asn: int) -> Negotiated:
    """Intersect both OPENs. No family in common: Unsupported Capability (2/7) listing ours."""
    offered = _peer_families(peer)
    families = tuple(f for f in config.families if f in offered)
    if not families:
        ours = b"".join(encode_capability(c) for c in local.capabilities_of(Multiprotocol))
        raise _open_error(OpenError.UNSUPPORTED_CAPABILITY, "no address family in common", ours)
    rx, tx = _addpath(local, peer, families)
    hold = min(config.hold_time, peer.hold_time)
    context = CodecContext(
        asn4=local.capability(FourOctetAS) is not None and peer.capability(FourOctetAS) is not None,
        addpath_rx=rx,
        addpath_tx=tx,
        extended_message=_both(local, peer, ExtendedMessage),
        ibgp=config.ibgp,
        peer_asn=None if config.ibgp else asn,
    )
    role = peer.capability(BGPRole)
    return Negotiated(
        context=context,
        local_open=local,
        peer_open=peer,
        peer_asn=asn,
        families=families,
        hold_time=hold,
        keepalive_time=hold // 3,
        send_hold_time=config.send_hold_for(hold),
        route_refresh=config.route_refresh and _has_route_refresh(peer),
        enhanced_route_refresh=_both(local, peer, EnhancedRouteRefresh),
        extended_next_hop=_next_hops(local, peer),
        graceful_restart=peer.capability(GracefulRestart),
        notification_restart=_notification_restart(local, peer),
        peer_hostname=peer.capability(FQDN),
        peer_role=None if role is None else role.role,
    )


def accept_open(config: SessionConfig, local: Open, peer: Open) -> Negotiated:
    """Check the peer's OPEN and negotiate; raises BGPError with the NOTIFICATION due."""
    return negotiate(config, local, peer, check_peer_open(config, peer))


class Initiator(enum.Enum):
    """Who opened a TCP connection: us (our outgoing connection) or the peer."""

    LOCAL = "local"
    REMOTE = "remote"


def collision_winner(
    local_id: str, remote_id: str, local_asn: int = 0, remote_asn: int = 0
) -> Initiator:
    """Which of two connections to one peer to keep (RFC 4271 §6.8): the one opened by the
    side with the higher BGP Identifier, compared as unsigned 32-bit integers; when both are
    equal (possible between ASes, RFC 6286 §2.3), the one opened by the side with the larger
    AS number."""
    local, remote = int(ipaddress.IPv4Address(local_id)), int(ipaddress.IPv4Address(remote_id))
    if local == remote:
        if local_asn == remote_asn:
            raise ValueError("equal BGP Identifiers and AS numbers: no collision rule applies")
        local, remote = local_asn, remote_asn
    return Initiator.LOCAL if local > remote else Initiator.REMOTE
