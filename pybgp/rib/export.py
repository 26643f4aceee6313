"""What a peer may be sent and how the attributes change on the way out.

Filtering: NO_ADVERTISE, NO_EXPORT, NO_EXPORT_SUBCONFED (RFC 1997); a route learned from an
iBGP peer goes to no other iBGP peer (RFC 4271 §9.2) unless we reflect it (RFC 4456 §6: a
client's route to every iBGP peer, a non-client's to clients only).

Attributes (RFC 4271 §5.1), done once per route and update group, not once per peer:
- eBGP: our AS prepended (confederation segments dropped first, RFC 5065 §5.3); NEXT_HOP
  is our address towards the group (§5.1.3); LOCAL_PREF, ORIGINATOR_ID and CLUSTER_LIST
  left out (§5.1.5, RFC 4456 §8); a MED we received is not passed to another AS (§5.1.4),
  one we set on an originated route is.
- confederation peers (RFC 5065 §5.3): our member AS prepended in an AS_CONFED_SEQUENCE;
  NEXT_HOP, LOCAL_PREF and MED kept.
- iBGP: AS path and NEXT_HOP unchanged (unless next-hop-self, or an originated route with
  no next hop); LOCAL_PREF always present (§5.1.5, the default when missing); a reflected
  route gets ORIGINATOR_ID and our cluster ID in front of CLUSTER_LIST (RFC 4456 §8).
Then `for_peer` fits them to the peer (2-octet AS numbers, unknown attributes, RFC 6793).
"""

from __future__ import annotations

from collections.abc import Hashable

import attrs

from pybgp.rib.route import Route, RouteFilter, attribute_slices, attribute_value
from pybgp.wire import aspath
from pybgp.wire.attributes import SPECS, encode_attribute
from pybgp.wire.communities import NO_ADVERTISE, NO_EXPORT, NO_EXPORT_SUBCONFED
from pybgp.wire.constants import (
    AFI_IPV6,
    AS_TRANS,
    IPV4_UNICAST,
    TRANSITIVE,
    AttrType,
    Family,
    Origin,
    SegmentType,
)
from pybgp.wire.context import CodecContext
from pybgp.wire.outbound import for_peer
from pybgp.wire.pathattrs import PathAttributes, intern

_UNSPECIFIED = frozenset({"", "0.0.0.0", "::"})


@attrs.frozen(kw_only=True, cache_hash=True)
class ExportKey:
    """Everything that decides the bytes a peer is sent: peers with equal keys share one
    update group, so a best-path change is encoded once for all of them.

    `local_address`/`local_address6`: our address towards the peer, the next hop we put for
    IPv4/IPv6 routes to eBGP peers, with next-hop-self, and on originated routes without a
    next hop. `split_horizon`: never send a route back to the peer it came from. FRR sends a
    route back to the eBGP peer it came from (that peer drops it: its AS is in the path) and
    back to the route-reflector client it came from (dropped by ORIGINATOR_ID) whenever
    the update group has more than one member; with `split_horizon=False` we do the same,
    and every member of a group always gets the same messages. `cluster_id`: our cluster ID
    (usually our router ID); without it we do not reflect. `policy`: what identifies the
    export policy (peers with different policies are kept apart); `export_filter` applies
    it (None: everything the rules above let through is sent). `send_paths`: up to that
    many paths per prefix go to the group in its `addpath_tx` families (`adj_out_paths`);
    with 1 the best path alone goes, under path id 1.
    """

    ibgp: bool
    local_asn: int
    confederation: bool = False
    local_address: str | None = None
    local_address6: str | None = None
    asn4: bool = True
    addpath_tx: frozenset[Family] = frozenset()
    send_paths: int = 1  # paths per prefix in the `addpath_tx` families (RFC 7911)
    extended_message: bool = False
    next_hop_self: bool = False
    route_reflector_client: bool = False
    cluster_id: str | None = None
    default_local_pref: int = 100
    split_horizon: bool = True
    families: frozenset[Family] = frozenset({IPV4_UNICAST})
    extended_next_hop: bool = False  # RFC 8950 negotiated: IPv4 routes may get IPv6 next hops
    policy: Hashable = None
    export_filter: RouteFilter | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def external(self) -> bool:
        return not (self.ibgp or self.confederation)

    def context(self) -> CodecContext:
        return CodecContext(
            asn4=self.asn4,
            addpath_tx=self.addpath_tx,
            extended_message=self.extended_message,
            ibgp=self.ibgp,
            confederation=self.confederation,
        )

    def self_address(self, family: Family) -> str | None:
        """Our next hop for `family`: for IPv4 over an IPv6-only session, our IPv6 address
        when extended next hops were negotiated (RFC 8950 §4)."""
        if family.afi == AFI_IPV6:
            return self.local_address6
        if self.local_address is None and self.extended_next_hop:
            return self.local_address6
        return self.local_address


class Exported:
    """A route as one update group sends it; shared by every prefix with that route.
    `source` is the address of the peer it came from ("" for our own routes)."""

    __slots__ = ("attributes", "next_hop", "source")

    def __init__(self, attributes: PathAttributes, next_hop: str, source: str) -> None:
        self.attributes = attributes
        self.next_hop = next_hop
        self.source = source

    def same(self, other: Exported) -> bool:
        return self.next_hop == other.next_hop and self.attributes == other.attributes


def export(route: Route, key: ExportKey, family: Family) -> Exported | None:
    """The route as peers with `key` get it, or None when they must not get it."""
    if not may_send(route, key):
        return None
    next_hop = _next_hop(route, key, family)
    if next_hop is None:
        return None
    attributes = transform(route, key)
    if attributes is None:
        return None
    if not key.asn4 or attributes.present & _UNKNOWN:
        attributes = for_peer(attributes, key.context())  # rare: RFC 6793, unknown ones
    return Exported(intern(attributes), next_hop, "" if route.peer.local else route.peer.address)


def after_policy(attributes: PathAttributes, key: ExportKey) -> PathAttributes:
    """An export policy's result fitted to the group again: it may have set LOCAL_PREF,
    which never goes to an external peer (§5.1.5)."""
    if key.external and AttrType.LOCAL_PREF in attributes:
        return intern(_rebuild(attributes, {AttrType.LOCAL_PREF: None}))
    return attributes


def may_send(route: Route, key: ExportKey) -> bool:
    attributes = route.attributes
    if AttrType.COMMUNITIES in attributes:  # RFC 1997
        communities = attributes.communities
        if NO_ADVERTISE in communities:
            return False
        if key.external and (NO_EXPORT in communities or NO_EXPORT_SUBCONFED in communities):
            return False
        if key.confederation and NO_EXPORT_SUBCONFED in communities:
            return False
    source = route.peer
    if source.ibgp and key.ibgp:  # RFC 4271 §9.2; reflection: RFC 4456 §6
        return source.route_reflector_client or key.route_reflector_client
    return True


def _next_hop(route: Route, key: ExportKey, family: Family) -> str | None:
    if key.external or key.next_hop_self or route.next_hop in _UNSPECIFIED:
        return key.self_address(family)
    if family.afi != AFI_IPV6 and ":" in route.next_hop and not key.extended_next_hop:
        return key.local_address  # an IPv6 next hop only where RFC 8950 was negotiated
    return route.next_hop


def _tlv(code: int, value: object) -> bytes:
    spec = SPECS[code]
    return encode_attribute(spec.flags, code, spec.encode(value, 4))


_KNOWN = sum(1 << code for code in AttrType)
_UNKNOWN = ~_KNOWN
_EXTERNAL_DROP = (AttrType.LOCAL_PREF, AttrType.ORIGINATOR_ID, AttrType.CLUSTER_LIST)


def transform(route: Route, key: ExportKey) -> PathAttributes | None:
    """The attributes for the group (4-octet AS numbers), NEXT_HOP left out (the packer
    adds it). Works on the wire form; only what changes is encoded."""
    attributes = route.attributes
    new: dict[int, bytes | None] = {AttrType.NEXT_HOP: None}
    if AttrType.ORIGIN not in attributes:
        new[AttrType.ORIGIN] = _tlv(AttrType.ORIGIN, Origin.INCOMPLETE)
    if attributes.asn4:
        path = attribute_value(attributes.raw, AttrType.AS_PATH) or b""
    else:  # from a 2-octet speaker: the true path and aggregator (RFC 6793 §4.2.3)
        path = aspath.encode_as_path(attributes.as_path, 4)
        new.update(_four_octet_aggregator(attributes))
    if key.external:
        for code in _EXTERNAL_DROP:
            new[code] = None
        if not route.peer.local:
            new[AttrType.MULTI_EXIT_DISC] = None
        path = _prepend(_without_confed(path), SegmentType.AS_SEQUENCE, key.local_asn)
    else:
        if AttrType.LOCAL_PREF not in attributes:
            new[AttrType.LOCAL_PREF] = _tlv(AttrType.LOCAL_PREF, key.default_local_pref)
        if key.confederation:
            new[AttrType.ORIGINATOR_ID] = new[AttrType.CLUSTER_LIST] = None
            path = _prepend(path, SegmentType.AS_CONFED_SEQUENCE, key.local_asn)
        elif route.peer.ibgp:  # reflected (may_send let it through), RFC 4456 §8
            if key.cluster_id is None:
                return None
            new.update(_reflected(route, key.cluster_id))
    new[AttrType.AS_PATH] = encode_attribute(TRANSITIVE, AttrType.AS_PATH, path)
    return _rebuild(attributes, new)


def _prepend(path: bytes, segment_type: int, asn: int) -> bytes:
    """Put `asn` in front, extending a leading segment of that type (RFC 4271 §5.1.2)."""
    octets = asn.to_bytes(4, "big")
    if path and path[0] == segment_type and path[1] < 255:
        return bytes((segment_type, path[1] + 1)) + octets + path[2:]
    return bytes((segment_type, 1)) + octets + path


def _without_confed(path: bytes) -> bytes:
    """Leaving the confederation: its segments go (RFC 5065 §5.3)."""
    pos, size = 0, len(path)
    while pos < size:
        if path[pos] >= SegmentType.AS_CONFED_SEQUENCE:
            segments = aspath.decode_as_path(path, 4)
            kept = tuple(seg for seg in segments if seg[0] < SegmentType.AS_CONFED_SEQUENCE)
            return aspath.encode_as_path(kept, 4)
        pos += 2 + 4 * path[pos + 1]
    return path


def _four_octet_aggregator(attributes: PathAttributes) -> dict[int, bytes | None]:
    new: dict[int, bytes | None] = {AttrType.AS4_PATH: None, AttrType.AS4_AGGREGATOR: None}
    values = attributes.values
    aggregator = values.get(AttrType.AGGREGATOR)
    if aggregator is not None:
        if aggregator[0] == AS_TRANS and AttrType.AS4_AGGREGATOR in values:
            aggregator = values[AttrType.AS4_AGGREGATOR]
        new[AttrType.AGGREGATOR] = _tlv(AttrType.AGGREGATOR, aggregator)
    return new


def _reflected(route: Route, cluster_id: str) -> dict[int, bytes | None]:
    attributes = route.attributes
    originator = attributes.originator_id or route.peer.router_id
    clusters = (cluster_id, *attributes.cluster_list)
    return {
        AttrType.ORIGINATOR_ID: _tlv(AttrType.ORIGINATOR_ID, originator),
        AttrType.CLUSTER_LIST: _tlv(AttrType.CLUSTER_LIST, clusters),
    }


def _rebuild(attributes: PathAttributes, new: dict[int, bytes | None]) -> PathAttributes:
    """The attributes with `new` put in (None: left out), in type code order; the others
    are copied as they are on the wire."""
    pieces = [(code, tlv) for code, tlv in attribute_slices(attributes.raw) if code not in new]
    pieces += [(code, tlv) for code, tlv in new.items() if tlv is not None]
    pieces.sort()
    present = 0
    for code, _ in pieces:
        present |= 1 << code
    return PathAttributes(b"".join(tlv for _, tlv in pieces), True, present)
