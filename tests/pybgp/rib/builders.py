"""Small constructors for RIB tests: peers, attributes, routes, UPDATEs."""

from __future__ import annotations

from pybgp.rib.peer import PeerInfo
from pybgp.rib.route import Route
from pybgp.wire.constants import IPV4_UNICAST, AttrType, Family, SegmentType
from pybgp.wire.nlri import Nlri, nlri_from_str
from pybgp.wire.pathattrs import PathAttributes
from pybgp.wire.update import Update

LOCAL_AS = 65000


def peer(
    n: int,
    *,
    ibgp: bool = False,
    asn: int | None = None,
    router_id: str | None = None,
    rr_client: bool = False,
    confederation: bool = False,
    local_asn: int = LOCAL_AS,
    enforce_first_as: bool = False,
) -> PeerInfo:
    """Peer n at 10.0.0.n, router ID 10.255.0.n, AS 65000+n (our AS when iBGP). The paths
    tests give are free-form, so the first-AS check is off unless asked for."""
    return PeerInfo(
        address=f"10.0.0.{n}",
        asn=asn if asn is not None else (local_asn if ibgp else 65000 + n),
        router_id=router_id or f"10.255.0.{n}",
        ibgp=ibgp,
        local_asn=local_asn,
        route_reflector_client=rr_client,
        confederation=confederation,
        enforce_first_as=enforce_first_as,
    )


def attributes(
    *,
    path: tuple[int, ...] | None = (65001,),
    segments: tuple[tuple[int, tuple[int, ...]], ...] | None = None,
    origin: int = 0,
    med: int | None = None,
    local_pref: int | None = None,
    communities: tuple[int, ...] = (),
    large: tuple[tuple[int, int, int], ...] = (),
    ext: tuple[bytes, ...] = (),
    originator: str | None = None,
    clusters: tuple[str, ...] = (),
    next_hop: str | None = None,
) -> PathAttributes:
    values: dict[int, object] = {AttrType.ORIGIN: origin}
    if segments is not None:
        values[AttrType.AS_PATH] = segments
    elif path is not None:
        values[AttrType.AS_PATH] = ((SegmentType.AS_SEQUENCE, path),) if path else ()
    if next_hop is not None:
        values[AttrType.NEXT_HOP] = next_hop
    if med is not None:
        values[AttrType.MULTI_EXIT_DISC] = med
    if local_pref is not None:
        values[AttrType.LOCAL_PREF] = local_pref
    if communities:
        values[AttrType.COMMUNITIES] = communities
    if ext:
        values[AttrType.EXTENDED_COMMUNITIES] = ext
    if large:
        values[AttrType.LARGE_COMMUNITIES] = large
    if originator is not None:
        values[AttrType.ORIGINATOR_ID] = originator
    if clusters:
        values[AttrType.CLUSTER_LIST] = clusters
    return PathAttributes.build(values)


def route(source: PeerInfo, next_hop: str | None = None, **kwargs: object) -> Route:
    """A route from `source`, next hop its address unless given."""
    return Route(attributes(**kwargs), next_hop or source.address, source)  # type: ignore[arg-type]


def v4(*texts: str) -> tuple[Nlri, ...]:
    return tuple(nlri_from_str(text, IPV4_UNICAST) for text in texts)


def prefix(text: str, family: Family = IPV4_UNICAST) -> Nlri:
    return nlri_from_str(text, family)


def announce_v4(next_hop: str, *texts: str, **kwargs: object) -> Update:
    """An IPv4 UPDATE announcing `texts` with NEXT_HOP `next_hop`."""
    return Update(attributes=attributes(next_hop=next_hop, **kwargs), nlri=v4(*texts))  # type: ignore[arg-type]


def withdraw_v4(*texts: str) -> Update:
    return Update(withdrawn=v4(*texts))
