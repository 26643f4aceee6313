"""A path as the RIBs hold it: attributes, next hop and the peer it came from.

One `Route` is made per UPDATE (not per prefix) and shared by every prefix the UPDATE
carried, in the Adj-RIB-In, the Loc-RIB and as a best-path candidate (architecture rule 5:
no per-prefix objects). What the decision process reads from the attributes is worked out
once per `Route`, on first use, and kept beside it (`facts`).
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple, Protocol

from pybgp.rib.peer import PeerInfo
from pybgp.wire import aspath
from pybgp.wire.constants import AttrType, Family, Origin, SegmentType
from pybgp.wire.nlri import Nlri
from pybgp.wire.pathattrs import PathAttributes

_SEQUENCE, _SET = int(SegmentType.AS_SEQUENCE), int(SegmentType.AS_SET)
# Type codes as plain ints for a hot loop.
_ORIGIN, _AS_PATH, _MED = int(AttrType.ORIGIN), int(AttrType.AS_PATH), int(AttrType.MULTI_EXIT_DISC)
_LOCAL_PREF, _ORIGINATOR_ID = int(AttrType.LOCAL_PREF), int(AttrType.ORIGINATOR_ID)
_CLUSTER_LIST = int(AttrType.CLUSTER_LIST)


class Facts(NamedTuple):
    """The attribute values the decision process compares (RFC 4271 §9.1.2.2)."""

    local_pref: int | None
    path_length: int  # AS_SET counts 1, confederation segments 0 (§9.1.2.2 a)
    origin: int
    neighbour_as: int | None  # first AS of the path; None: our own AS (§9.1.2.2 c)
    med: int | None
    router_id: int  # ORIGINATOR_ID when present, else the peer's BGP Identifier (RFC 4456 §9)
    cluster_list_length: int


class Keys(NamedTuple):
    """The decision process' comparison keys for one route under one configuration
    (`pybgp.rib.best_path.keys`); lower is better."""

    config: object  # the BestPathConfig they were made for
    rank: tuple[int, int, int]  # local preference, AS path length, origin (steps 1-3)
    med: int  # step 4
    neighbour_as: int | None
    tail: tuple[object, ...]  # eBGP over iBGP, router ID, ... (steps 5, 7-10)


class Route:
    """Immutable by convention: never assign to the fields of a Route in use.

    Equality and hashing are by identity (fast, and what the caches want); use `same` to
    compare contents. `received`: the route as the peer sent it, when an import policy
    changed it (None otherwise).
    """

    __slots__ = ("_facts", "attributes", "keys", "next_hop", "peer", "received")

    attributes: PathAttributes
    next_hop: str
    peer: PeerInfo

    def __init__(
        self,
        attributes: PathAttributes,
        next_hop: str,
        peer: PeerInfo,
        received: Route | None = None,
    ) -> None:
        self.attributes = attributes
        self.next_hop = next_hop
        self.peer = peer
        self.received = received
        self._facts: Facts | None = None
        self.keys: Keys | None = None  # cached by the decision process

    @property
    def facts(self) -> Facts:
        found = self._facts
        if found is None:
            found = self._facts = _facts(self.attributes, self.peer)
        return found

    def same(self, other: Route | None) -> bool:
        """Equal contents: the same attributes and next hop from the same peer."""
        return other is not None and (
            self is other
            or (
                self.peer == other.peer
                and self.next_hop == other.next_hop
                and self.attributes == other.attributes
            )
        )

    def __repr__(self) -> str:
        return f"Route(from {self.peer.address}, next hop {self.next_hop}, {self.attributes!r})"


class RouteFilter(Protocol):
    """An import or export policy as the RIBs apply it (`pybgp.policy.rib_filter` makes
    them): the route to keep or send for `prefix`, possibly changed, or None to drop it.
    `reads`: what the verdict depends on beyond the route ("prefix", "peer"); without
    "prefix" it is the same for every prefix of a route, so one call per route does."""

    reads: frozenset[str]

    def __call__(self, family: Family, prefix: Nlri, route: Route) -> Route | None: ...


def _facts(attributes: PathAttributes, peer: PeerInfo) -> Facts:
    if attributes.asn4:
        return _wire_facts(attributes.raw, peer)
    path = attributes.as_path  # from a 2-octet peer: merged with AS4_PATH (RFC 6793)
    originator = attributes.originator_id
    return Facts(
        local_pref=attributes.local_pref,
        path_length=aspath.path_length(path),
        origin=attributes.origin,
        neighbour_as=aspath.first_as(path),
        med=attributes.med,
        router_id=(int(ipaddress.IPv4Address(originator)) if originator else peer.router_id_value),
        cluster_list_length=len(attributes.cluster_list),
    )


def _wire_facts(raw: bytes, peer: PeerInfo) -> Facts:
    """`_facts` read straight from a (well-formed, 4-octet AS) attribute field: the ingest
    path decodes no attribute for the decision process. A repeated attribute counts as the
    decoded values count it (the last one)."""
    origin, length, first, med, local_pref = int(Origin.INCOMPLETE), 0, None, None, None
    router_id, clusters = peer.router_id_value, 0
    pos, size = 0, len(raw)
    while pos < size:
        code = raw[pos + 1]
        if raw[pos] & 0x10:  # Extended Length
            start = pos + 4
            end = start + (raw[pos + 2] << 8 | raw[pos + 3])
        else:
            start = pos + 3
            end = start + raw[pos + 2]
        if code == _ORIGIN:
            origin = raw[start]
        elif code == _AS_PATH:
            length, first = _path_facts(raw, start, end)
        elif code == _MED:
            med = int.from_bytes(raw[start:end])
        elif code == _LOCAL_PREF:
            local_pref = int.from_bytes(raw[start:end])
        elif code == _ORIGINATOR_ID:
            router_id = int.from_bytes(raw[start:end])
        elif code == _CLUSTER_LIST:
            clusters = (end - start) // 4
        pos = end
    return Facts(local_pref, length, origin, first, med, router_id, clusters)


def _path_facts(raw: bytes, pos: int, end: int) -> tuple[int, int | None]:
    """(length for the decision process, neighbour AS) of a 4-octet AS_PATH value at
    raw[pos:end], as `aspath.path_length` and `aspath.first_as` give them."""
    leading = pos < end and raw[pos] == _SEQUENCE
    first = int.from_bytes(raw[pos + 2 : pos + 6]) if leading else None
    length = 0
    while pos < end:
        kind, count = raw[pos], raw[pos + 1]
        if kind == _SEQUENCE:
            length += count
        elif kind == _SET:
            length += 1
        pos += 2 + 4 * count
    return length, first


def attribute_value(raw: bytes, code: int) -> bytes | None:
    """The value of attribute `code` in a (well-formed) path attribute field, found without
    decoding the others."""
    pos, size = 0, len(raw)
    while pos < size:
        if raw[pos] & 0x10:  # Extended Length
            start = pos + 4
            end = start + (raw[pos + 2] << 8 | raw[pos + 3])
        else:
            start = pos + 3
            end = start + raw[pos + 2]
        if raw[pos + 1] == code:
            return raw[start:end]
        pos = end
    return None


def attribute_slices(raw: bytes) -> list[tuple[int, bytes]]:
    """(type code, whole TLV as on the wire) for each attribute, in order."""
    out: list[tuple[int, bytes]] = []
    pos, size = 0, len(raw)
    while pos < size:
        if raw[pos] & 0x10:
            end = pos + 4 + (raw[pos + 2] << 8 | raw[pos + 3])
        else:
            end = pos + 3 + raw[pos + 2]
        out.append((raw[pos + 1], raw[pos:end]))
        pos = end
    return out
