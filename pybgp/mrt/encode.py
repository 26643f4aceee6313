"""Writing MRT records (RFC 6396 §4.3-§4.4, RFC 8050): the bodies of TABLE_DUMP_V2 and
BGP4MP records; `format.header` puts the common header in front."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from pybgp.mrt.format import Bgp4mp, TableDumpV2
from pybgp.wire.attributes import SPECS, encode_attribute
from pybgp.wire.constants import AFI_IPV6, AS_TRANS, AttrType, Family
from pybgp.wire.nlri import Nlri, address_from_str
from pybgp.wire.pathattrs import PathAttributes

_RIB_SUBTYPES = {  # (AFI, ADD-PATH) -> subtype; unicast only, as the Speaker carries
    (1, False): TableDumpV2.RIB_IPV4_UNICAST,
    (2, False): TableDumpV2.RIB_IPV6_UNICAST,
    (1, True): TableDumpV2.RIB_IPV4_UNICAST_ADDPATH,
    (2, True): TableDumpV2.RIB_IPV6_UNICAST_ADDPATH,
}
_AS4_ONLY = (AttrType.AS4_PATH, AttrType.AS4_AGGREGATOR)


class DumpPeer(NamedTuple):
    bgp_id: str
    address: str
    asn: int


class RibEntry(NamedTuple):
    peer_index: int
    originated: int  # seconds since the epoch
    path_id: int  # 0 without ADD-PATH
    attributes: bytes  # as `table_attributes` gives them


def peer_index_table(collector_id: str, view: str, peers: Sequence[DumpPeer]) -> bytes:
    """PEER_INDEX_TABLE (§4.3.1): every peer with a 4-octet AS, its address as it is."""
    name = view.encode()
    out = [address_from_str(collector_id), len(name).to_bytes(2, "big"), name]
    out.append(len(peers).to_bytes(2, "big"))
    for peer in peers:
        address = address_from_str(peer.address)
        kind = 0x2 | (0x1 if len(address) == 16 else 0)  # AS4, IPv6 address
        out += [bytes((kind,)), address_from_str(peer.bgp_id), address, peer.asn.to_bytes(4, "big")]
    return b"".join(out)


def rib(
    sequence: int, family: Family, prefix: Nlri, entries: Sequence[RibEntry]
) -> tuple[int, bytes]:
    """(subtype, body) of one prefix's RIB record (§4.3.2; RFC 8050 §3 when a path id is
    set): the entries' path ids are written only in the ADD-PATH subtypes."""
    addpath = any(entry.path_id for entry in entries)
    out = [sequence.to_bytes(4, "big"), prefix, len(entries).to_bytes(2, "big")]
    for entry in entries:
        out += [entry.peer_index.to_bytes(2, "big"), entry.originated.to_bytes(4, "big")]
        if addpath:
            out.append(entry.path_id.to_bytes(4, "big"))
        out += [len(entry.attributes).to_bytes(2, "big"), entry.attributes]
    return _RIB_SUBTYPES[family.afi, addpath], b"".join(out)


def table_attributes(attributes: PathAttributes, next_hop: str, family: Family) -> bytes:
    """A route's attributes as a table dump has them (§4.3.4): AS numbers of 4 octets (a
    2-octet peer's path is given merged with its AS4_PATH, RFC 6793), and the next hop:
    NEXT_HOP for an IPv4 one (our own routes carry none), else the abbreviated
    MP_REACH_NLRI, next hop length and next hop."""
    raw = attributes.raw if attributes.asn4 else _as4_form(attributes)
    if family.afi != AFI_IPV6 and AttrType.NEXT_HOP in attributes:
        return raw
    hop = address_from_str(next_hop)
    if len(hop) == 4:
        return raw + encode_attribute(0x40, AttrType.NEXT_HOP, hop)
    return raw + encode_attribute(0x80, AttrType.MP_REACH_NLRI, bytes((len(hop),)) + hop)


def _as4_form(attributes: PathAttributes) -> bytes:
    parts = []
    for flags, code, value in attributes.tlvs():
        if code in _AS4_ONLY:
            continue
        if code == AttrType.AS_PATH:
            value = SPECS[code].encode(attributes.as_path, 4)
        elif code == AttrType.AGGREGATOR:
            asn, address = attributes.values[code]
            if asn == AS_TRANS and AttrType.AS4_AGGREGATOR in attributes:
                asn, address = attributes.values[AttrType.AS4_AGGREGATOR]
            value = SPECS[code].encode((asn, address), 4)
        parts.append(encode_attribute(flags & ~0x10, code, value))
    return b"".join(parts)


def bgp4mp_message(
    *,
    peer_asn: int,
    local_asn: int,
    peer: str,
    local: str,
    message: bytes,
    asn4: bool,
    addpath: bool,
) -> tuple[int, bytes]:
    """(subtype, body) of a BGP message received from `peer` (§4.4.2-§4.4.3, RFC 8050 §4):
    MESSAGE_AS4 when the session has 4-octet AS numbers (its AS_PATH is 4 octets wide),
    MESSAGE otherwise; the ADDPATH subtypes when its NLRI carry path identifiers."""
    if asn4:
        subtype = Bgp4mp.MESSAGE_AS4_ADDPATH if addpath else Bgp4mp.MESSAGE_AS4
    else:
        subtype = Bgp4mp.MESSAGE_ADDPATH if addpath else Bgp4mp.MESSAGE
    return subtype, _peering(peer_asn, local_asn, peer, local, asn4) + message


def bgp4mp_state(
    *, peer_asn: int, local_asn: int, peer: str, local: str, old: int, new: int
) -> tuple[int, bytes]:
    """(subtype, body) of STATE_CHANGE_AS4 (§4.4.4), states numbered as in `STATES`."""
    body = _peering(peer_asn, local_asn, peer, local, True)
    return Bgp4mp.STATE_CHANGE_AS4, body + old.to_bytes(2, "big") + new.to_bytes(2, "big")


def _peering(peer_asn: int, local_asn: int, peer: str, local: str, asn4: bool) -> bytes:
    width = 4 if asn4 else 2
    ases = [asn if asn4 or asn <= 0xFFFF else AS_TRANS for asn in (peer_asn, local_asn)]
    peer_ip, local_ip = address_from_str(peer), address_from_str(local)
    if len(local_ip) != len(peer_ip):  # unknown local address: the family's unspecified one
        local_ip = bytes(len(peer_ip))
    afi = 2 if len(peer_ip) == 16 else 1
    return (
        ases[0].to_bytes(width, "big")
        + ases[1].to_bytes(width, "big")
        + (0).to_bytes(2, "big")  # interface index: not known
        + afi.to_bytes(2, "big")
        + peer_ip
        + local_ip
    )
