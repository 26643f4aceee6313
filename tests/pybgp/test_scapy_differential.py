"""Differential test against scapy's BGP layer (scapy.contrib.bgp, an independent decoder).

Both directions: messages pybgp encodes are parsed by scapy and compared field by field with
what pybgp decodes; messages scapy builds are decoded by pybgp and compared with the values
they were built from.

scapy's BGP layer has limits (read in scapy/contrib/bgp.py, 2.8); where it cannot read a
message correctly the generator leaves that message out, and says why next to the argument
that does it (SCAPY_UPDATES, scapy_open_messages). No comparison is weakened: everything
scapy parses is compared in full.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("scapy")
from scapy.all import conf

conf.verb = 0
from scapy.contrib import bgp  # noqa: E402
from scapy.packet import NoPayload, Packet, Raw  # noqa: E402

from pybgp.wire.capabilities import (  # noqa: E402
    BGPRole,
    Capability,
    FourOctetAS,
    GracefulRestart,
    GracefulRestartFamily,
    Multiprotocol,
    RouteRefresh,
    UnknownCapability,
    encode_capability,
)
from pybgp.wire.constants import (  # noqa: E402
    HEADER_LEN,
    IPV4_UNICAST,
    IPV6_UNICAST,
    AttrType,
    Family,
)
from pybgp.wire.context import CodecContext  # noqa: E402
from pybgp.wire.nlri import nlri_to_str  # noqa: E402
from pybgp.wire.open import Open  # noqa: E402
from pybgp.wire.update import Update  # noqa: E402
from tests.pybgp.strategies import (  # noqa: E402
    UpdateCase,
    capabilities,
    extended_communities,
    update_cases,
    update_contexts,
)

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# What scapy 2.8 can read, and so what the differential generator produces:
ALL_ONES_V6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"
SCAPY_UPDATES = update_cases(
    # ADD-PATH: scapy guesses path identifiers from the bytes (detect_add_path_prefix46, a
    # heuristic) in the NLRI/withdrawn fields and never reads them in MP_REACH_NLRI. Only the
    # reverse direction (scapy builds, pybgp decodes) covers ADD-PATH.
    ctx=update_contexts(addpath=False),
    # MP_REACH_NLRI: NLRI are parsed for AFI 2/SAFI 1 only, and a next hop only when it is
    # 4 octets for AFI 1 or 16/32 for AFI 2, so IPv4 (with an RFC 8950 IPv6 next hop) is out.
    mp_reach_families=(IPV6_UNICAST,),
    # MP_UNREACH_NLRI: the withdrawn routes of AFI 1 are left as raw bytes.
    mp_unreach_families=(IPV6_UNICAST,),
    # The ADD-PATH heuristic reads a /0 prefix followed by more prefixes as path identifiers.
    default_route=False,
    # BGPPACommunity holds one community and BGPPALargeCommunity parses one (the rest of the
    # attribute is left as a Raw payload).
    max_communities=1,
    max_large_communities=1,
    # BGPPAAggregator has a 2-octet AS field only; a 4-octet AGGREGATOR is misread.
    aggregator_with_asn4=False,
    # BGPPAAS4Path holds a single segment.
    max_as4_path_segments=1,
    # Extended communities of type 0x81/0x82 with a sub-type other than 8 lose their value.
    ext_communities=extended_communities().filter(lambda c: c[0] not in (0x81, 0x82) or c[1] == 8),
    # Type code 25 is dispatched to BGPPAIPv6AddressSpecificExtComm (RFC 5701), which makes
    # the whole UPDATE unparsable when the value is not 18 octets: no unknown attribute 25.
    unknown_exclude=frozenset({25}),
).filter(
    # An IPv6 prefix of all ones (ffff:...:ffff/128) is read back by BGPNLRI_IPv6 as ::/128.
    lambda case: ALL_ONES_V6 not in str(case.obj)
)


@contextlib.contextmanager
def scapy_asn_width(asn4: bool) -> Iterator[None]:
    """scapy reads AS_PATH with 2- or 4-octet AS numbers by a module-wide switch."""
    saved = bgp.bgp_module_conf.use_2_bytes_asn
    bgp.bgp_module_conf.use_2_bytes_asn = not asn4
    try:
        yield
    finally:
        bgp.bgp_module_conf.use_2_bytes_asn = saved


def net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text, strict=True)


def addr(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def ipv4_int(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def _only(packet: Packet) -> Packet:
    """A parsed attribute value must have been consumed whole by its scapy class."""
    assert isinstance(packet.payload, NoPayload), f"scapy left {packet.payload!r} unparsed"
    return packet


# ---------------------------------------------------------------------------------------------
# One normalised view of an UPDATE, from either decoder

View = dict[str, Any]


def pybgp_view(update: Update) -> View:
    """What the comparison looks at, from pybgp's decoded UPDATE."""
    view: View = {
        "withdrawn": [net(nlri_to_str(k, IPV4_UNICAST)) for k in update.withdrawn],
        "nlri": [net(nlri_to_str(k, IPV4_UNICAST)) for k in update.nlri],
        "flags": [],
        "attrs": {},
    }
    attributes = update.attributes
    for flags, code, _value in attributes.tlvs() if attributes is not None else ():
        view["flags"].append((code, flags))
        view["attrs"][code] = _pybgp_value(code, attributes.values[code])
    if update.mp_reach is not None:
        reach = update.mp_reach
        view["flags"].append((AttrType.MP_REACH_NLRI, reach.flags))
        view["attrs"][AttrType.MP_REACH_NLRI] = (
            (reach.family.afi, reach.family.safi),
            len(reach.next_hop),
            [addr(hop) for hop in reach.next_hops],
            [net(nlri_to_str(k, reach.family)) for k in reach.nlri],
        )
    if update.mp_unreach is not None:
        unreach = update.mp_unreach
        view["flags"].append((AttrType.MP_UNREACH_NLRI, unreach.flags))
        view["attrs"][AttrType.MP_UNREACH_NLRI] = (
            (unreach.family.afi, unreach.family.safi),
            [net(nlri_to_str(k, unreach.family)) for k in unreach.nlri],
        )
    view["flags"].sort()
    return view


def _pybgp_value(code: int, value: Any) -> Any:
    if code in (AttrType.AS_PATH, AttrType.AS4_PATH):
        return [(seg_type, list(asns)) for seg_type, asns in value]
    if code in (AttrType.NEXT_HOP, AttrType.ORIGINATOR_ID):
        return addr(value)
    if code in (AttrType.AGGREGATOR, AttrType.AS4_AGGREGATOR):
        return value[0], addr(value[1])
    if code == AttrType.COMMUNITIES:
        return list(value)
    if code == AttrType.CLUSTER_LIST:
        return [ipv4_int(cluster) for cluster in value]
    if code == AttrType.EXTENDED_COMMUNITIES:
        return [(c[0], c[1], c[2:]) for c in value]
    if code == AttrType.LARGE_COMMUNITIES:
        return [tuple(c) for c in value]
    return value  # ORIGIN, MED, LOCAL_PREF, ATOMIC_AGGREGATE (True), OTC, unknown (bytes)


def scapy_view(raw: bytes, asn4: bool) -> View:
    """The same view, from scapy's parse of the whole message."""
    with scapy_asn_width(asn4):
        packet = bgp.BGPHeader(raw)
    assert packet.type == 2 and packet.len == len(raw)
    update = _only(packet[bgp.BGPUpdate])
    view: View = {
        "withdrawn": [net(p.prefix) for p in update.withdrawn_routes],
        "nlri": [net(p.prefix) for p in update.nlri],
        "flags": sorted((int(a.type_code), int(a.type_flags)) for a in update.path_attr),
        "attrs": {},
    }
    for attribute in update.path_attr:
        view["attrs"][int(attribute.type_code)] = _scapy_value(attribute)
    return view


def _scapy_value(attribute: Packet) -> Any:
    code, value = int(attribute.type_code), attribute.attribute
    if code == AttrType.ORIGIN:
        return _only(value).origin
    if code in (AttrType.AS_PATH,):
        return [(s.segment_type, list(s.segment_value)) for s in _only(value).segments]
    if code == AttrType.NEXT_HOP:
        return addr(_only(value).next_hop)
    if code == AttrType.MULTI_EXIT_DISC:
        return _only(value).med
    if code == AttrType.LOCAL_PREF:
        return _only(value).local_pref
    if code == AttrType.ATOMIC_AGGREGATE:
        assert not bytes(value)
        return True
    if code == AttrType.AGGREGATOR:
        return _only(value).aggregator_asn, addr(value.speaker_address)
    if code == AttrType.COMMUNITIES:
        return [_only(value).community]
    if code == AttrType.ORIGINATOR_ID:
        return addr(_only(value).originator_id)
    if code == AttrType.CLUSTER_LIST:
        return list(_only(value).cluster_list)
    if code == AttrType.EXTENDED_COMMUNITIES:
        return [
            (c.type_high, c.type_low, bytes(c.value) if c.value is not None else b"")
            for c in _only(value).extended_communities
        ]
    if code == AttrType.AS4_PATH:
        return [(_only(value).segment_type, list(value.segment_value))]
    if code == AttrType.AS4_AGGREGATOR:  # left raw by scapy's dispatcher: read with its class
        four = bgp.BGPPAAS4Aggregator(value.load)
        return _only(four).aggregator_asn, addr(four.speaker_address)
    if code == AttrType.LARGE_COMMUNITIES:
        return [
            (s.global_administrator, s.local_data_part1, s.local_data_part2)
            for s in value.segments
            if _only(s)
        ]
    if code == AttrType.MP_REACH_NLRI:
        reach = _only(value)
        hops = (
            [reach.nh_v6_addr]
            if reach.nh_addr_len == 16
            else [reach.nh_v6_global, reach.nh_v6_link_local]
        )
        return (
            (reach.afi, reach.safi),
            reach.nh_addr_len,
            [addr(hop) for hop in hops],
            [net(p.prefix) for p in reach.nlri],
        )
    if code == AttrType.MP_UNREACH_NLRI:
        unreach = _only(value)
        specific = unreach.afi_safi_specific
        routes = specific.withdrawn_routes if specific is not None else []
        return (unreach.afi, unreach.safi), [net(p.prefix) for p in routes]
    assert isinstance(value, Raw), f"scapy decoded attribute {code} as {value!r}"
    if code == AttrType.OTC:
        return int.from_bytes(value.load, "big")
    return value.load


# ---------------------------------------------------------------------------------------------
# UPDATE: pybgp encodes, scapy parses


@SETTINGS
@given(SCAPY_UPDATES)
def test_scapy_reads_what_pybgp_encodes(case: UpdateCase) -> None:
    raw = case.update.encode(case.ctx)
    decoded = Update.decode(raw[HEADER_LEN:], case.ctx)
    assert scapy_view(raw, case.ctx.asn4) == pybgp_view(decoded)


def test_scapy_reads_a_full_update() -> None:
    """One UPDATE with every attribute scapy knows, as a readable example of the comparison."""
    ctx = CodecContext(asn4=True, ibgp=True)
    obj = {
        "withdrawn": ["10.9.0.0/16"],
        "attributes": {
            "origin": "egp",
            "as_path": [
                {"type": "confed-sequence", "asns": [65010]},
                {"type": "sequence", "asns": [65001, 4200000000]},
                {"type": "set", "asns": [1, 2]},
            ],
            "next_hop": "192.0.2.1",
            "med": 5,
            "local_pref": 100,
            "atomic_aggregate": True,
            "communities": ["no-export"],
            "originator_id": "10.0.0.1",
            "cluster_list": ["10.0.0.254", "10.0.1.254"],
            "extended_communities": ["rt:65001:100", "soo:192.0.2.1:7", "rt4:4200000000:5"],
            "large_communities": ["4200000000:1:2"],
            "otc": 65001,
            "attr_99": {"flags": 0xE0, "value": "deadbeef"},
            "mp_reach_nlri": {
                "family": "ipv6-unicast",
                "next_hop": ["2001:db8::1", "fe80::1"],
                "nlri": ["2001:db8::/32", "::/0"],
            },
        },
        "nlri": ["10.0.0.0/24", "192.168.0.0/16"],
    }
    update = Update.from_json(obj, ctx)
    raw = update.encode(ctx)
    view = scapy_view(raw, asn4=True)
    assert view == pybgp_view(Update.decode(raw[HEADER_LEN:], ctx))
    assert view["attrs"][AttrType.AS_PATH] == [(3, [65010]), (2, [65001, 4200000000]), (1, [1, 2])]


# ---------------------------------------------------------------------------------------------
# UPDATE: scapy builds, pybgp decodes


def _scapy_prefixes(items: tuple[bytes, ...], family: Family, addpath: bool) -> list[Packet]:
    """scapy NLRI packets for pybgp wire keys (text and path id read back from the key)."""
    v6 = family.afi == 2
    out = []
    for key in items:
        text = nlri_to_str(key, family, addpath)
        if addpath:
            cls = bgp.BGPNLRI_IPv6_AP if v6 else bgp.BGPNLRI_IPv4_AP
            out.append(cls(prefix=text, nlri_path_id=int.from_bytes(key[:4], "big")))
        else:
            out.append((bgp.BGPNLRI_IPv6 if v6 else bgp.BGPNLRI_IPv4)(prefix=text))
    return out


def _scapy_attribute(code: int, value: Any, asn4: bool) -> Packet:
    if code == AttrType.ORIGIN:
        return bgp.BGPPAOrigin(origin=value)
    if code == AttrType.AS_PATH:
        cls = bgp.BGPPAAS4BytesPath if asn4 else bgp.BGPPAASPath
        segments = [cls.ASPathSegment(segment_type=t, segment_value=list(a)) for t, a in value]
        return cls(segments=segments)
    if code == AttrType.NEXT_HOP:
        return bgp.BGPPANextHop(next_hop=value)
    if code == AttrType.MULTI_EXIT_DISC:
        return bgp.BGPPAMultiExitDisc(med=value)
    if code == AttrType.LOCAL_PREF:
        return bgp.BGPPALocalPref(local_pref=value)
    if code == AttrType.ATOMIC_AGGREGATE:
        return bgp.BGPPAAtomicAggregate()
    if code == AttrType.AGGREGATOR:
        return bgp.BGPPAAggregator(aggregator_asn=value[0], speaker_address=value[1])
    if code == AttrType.COMMUNITIES:
        (community,) = value
        return bgp.BGPPACommunity(community=community)
    if code == AttrType.ORIGINATOR_ID:
        return bgp.BGPPAOriginatorID(originator_id=value)
    if code == AttrType.CLUSTER_LIST:
        return bgp.BGPPAClusterList(cluster_list=[ipv4_int(c) for c in value])
    if code == AttrType.AS4_PATH:
        ((seg_type, asns),) = value
        return bgp.BGPPAAS4Path(segment_type=seg_type, segment_value=list(asns))
    if code == AttrType.AS4_AGGREGATOR:
        return bgp.BGPPAAS4Aggregator(aggregator_asn=value[0], speaker_address=value[1])
    if code == AttrType.LARGE_COMMUNITIES:
        return bgp.BGPPALargeCommunity(
            segments=[
                bgp.BGPLargeCommunitySegment(
                    global_administrator=g, local_data_part1=a, local_data_part2=b
                )
                for g, a, b in value
            ]
        )
    if code == AttrType.EXTENDED_COMMUNITIES:
        return bgp.BGPPAExtComms(extended_communities=[_scapy_ext_community(c) for c in value])
    if code == AttrType.OTC:
        return Raw(load=value.to_bytes(4, "big"))  # scapy carries attributes it lacks as Raw
    raise AssertionError(f"no scapy builder for attribute {code}")


def _scapy_ext_community(value: bytes) -> Packet:
    """Built from scapy's typed templates where one fits (RFC 4360 §3), else opaque."""
    kind, sub, rest = value[0], value[1], value[2:]
    if kind in (0x00, 0x40):
        typed: Packet = bgp.BGPPAExtCommTwoOctetASSpecific(
            global_administrator=int.from_bytes(rest[:2], "big"),
            local_administrator=int.from_bytes(rest[2:], "big"),
        )
    elif kind in (0x01, 0x41):
        typed = bgp.BGPPAExtCommIPv4AddressSpecific(
            global_administrator=int.from_bytes(rest[:4], "big"),
            local_administrator=int.from_bytes(rest[4:], "big"),
        )
    elif kind in (0x02, 0x42):
        typed = bgp.BGPPAExtCommFourOctetASSpecific(
            global_administrator=int.from_bytes(rest[:4], "big"),
            local_administrator=int.from_bytes(rest[4:], "big"),
        )
    else:
        typed = bgp.BGPPAExtCommOpaque(value=rest)
    return bgp.BGPPAExtCommunity(type_high=kind, type_low=sub, value=typed)


def scapy_update(update: Update, ctx: CodecContext) -> bytes:
    """The UPDATE `update` stands for, built attribute by attribute with scapy's classes."""
    path_attr = []
    attributes = update.attributes
    for flags, code, _raw in attributes.tlvs() if attributes is not None else ():
        value = attributes.values[code]
        if code in _SCAPY_BUILDS:
            built = _scapy_attribute(code, value, ctx.asn4)
        else:
            built = Raw(load=value)
        path_attr.append(bgp.BGPPathAttr(type_flags=flags, type_code=code, attribute=built))
    mps = sorted(filter(None, (update.mp_reach, update.mp_unreach)), key=lambda m: m.position)
    for inserted, mp in enumerate(mps):
        addpath = mp.family in ctx.addpath_tx
        nlri = _scapy_prefixes(mp.nlri, mp.family, addpath)
        if mp is update.mp_reach:
            hops = update.mp_reach.next_hops
            fields = (
                {"nh_v6_addr": hops[0]}
                if len(hops) == 1
                else {"nh_v6_global": hops[0], "nh_v6_link_local": hops[1]}
            )
            built = bgp.BGPPAMPReachNLRI(
                afi=2, safi=1, nh_addr_len=16 * len(hops), nlri=nlri, **fields
            )
            code = AttrType.MP_REACH_NLRI
        else:
            built = bgp.BGPPAMPUnreachNLRI(
                afi=mp.family.afi,
                safi=mp.family.safi,
                afi_safi_specific=bgp.BGPPAMPUnreachNLRI_IPv6(withdrawn_routes=nlri),
            )
            code = AttrType.MP_UNREACH_NLRI
        path_attr.insert(
            mp.position + inserted,
            bgp.BGPPathAttr(type_flags=mp.flags, type_code=code, attribute=built),
        )
    v4_addpath = IPV4_UNICAST in ctx.addpath_tx
    message = bgp.BGPHeader(type=2) / bgp.BGPUpdate(
        withdrawn_routes=_scapy_prefixes(update.withdrawn, IPV4_UNICAST, v4_addpath),
        path_attr=path_attr,
        nlri=_scapy_prefixes(update.nlri, IPV4_UNICAST, v4_addpath),
    )
    with scapy_asn_width(ctx.asn4):
        return bytes(message)


_SCAPY_BUILDS = frozenset(AttrType) - {AttrType.MP_REACH_NLRI, AttrType.MP_UNREACH_NLRI}

# Reverse direction: scapy builds ADD-PATH NLRI in every field (BGPNLRI_*_AP), so it is on;
# MP attributes stay IPv6 (scapy's MP_REACH builder has next-hop fields for AFI 2 only), at
# most one of each; one community and one AS4_PATH segment (one-value scapy classes).
SCAPY_BUILT_UPDATES = update_cases(
    mp_reach_families=(IPV6_UNICAST,),
    mp_unreach_families=(IPV6_UNICAST,),
    max_communities=1,
    aggregator_with_asn4=False,
    max_as4_path_segments=1,
)


@SETTINGS
@given(SCAPY_BUILT_UPDATES)
def test_pybgp_reads_what_scapy_builds(case: UpdateCase) -> None:
    raw = scapy_update(case.update, case.ctx)
    decoded = Update.decode(raw[HEADER_LEN:], case.ctx)
    assert decoded.problem is None
    assert decoded == case.update
    assert decoded.to_json() == case.obj


def test_pybgp_reads_a_scapy_update() -> None:
    """A hand-built scapy UPDATE, as the scapy documentation builds one."""
    message = bgp.BGPHeader(type=2) / bgp.BGPUpdate(
        withdrawn_routes=[bgp.BGPNLRI_IPv4(prefix="10.9.0.0/16")],
        path_attr=[
            bgp.BGPPathAttr(type_flags=0x40, type_code=1, attribute=bgp.BGPPAOrigin(origin=2)),
            bgp.BGPPathAttr(
                type_flags=0x40,
                type_code=2,
                attribute=bgp.BGPPAAS4BytesPath(
                    segments=[
                        bgp.BGPPAAS4BytesPath.ASPathSegment(
                            segment_type=2, segment_value=[65001, 4200000000]
                        )
                    ]
                ),
            ),
            bgp.BGPPathAttr(
                type_flags=0x40, type_code=3, attribute=bgp.BGPPANextHop(next_hop="192.0.2.1")
            ),
            bgp.BGPPathAttr(type_flags=0x80, type_code=4, attribute=bgp.BGPPAMultiExitDisc(med=7)),
        ],
        nlri=[bgp.BGPNLRI_IPv4(prefix="10.0.0.0/24"), bgp.BGPNLRI_IPv4(prefix="0.0.0.0/0")],
    )
    with scapy_asn_width(True):
        raw = bytes(message)
    update = Update.decode(raw[HEADER_LEN:], CodecContext(asn4=True, ibgp=True))
    assert update.problem is None
    assert update.to_json() == {
        "type": "UPDATE",
        "withdrawn": ["10.9.0.0/16"],
        "attributes": {
            "origin": "incomplete",
            "as_path": [{"type": "sequence", "asns": [65001, 4200000000]}],
            "next_hop": "192.0.2.1",
            "med": 7,
        },
        "nlri": ["10.0.0.0/24", "0.0.0.0/0"],
    }


# ---------------------------------------------------------------------------------------------
# OPEN, both directions


def _scapy_readable(cap: Capability) -> bool:
    # scapy decodes code 3 and 130 as Outbound Route Filtering; pybgp keeps them as bytes.
    if isinstance(cap, UnknownCapability):
        return cap.code not in (3, 130)
    # BGPCapGracefulRestart's entry list has no length: the first <AFI, SAFI, flags> entry
    # swallows the others as its Raw payload, so only one family per capability is readable.
    return not isinstance(cap, GracefulRestart) or len(cap.families) <= 1


@st.composite
def scapy_open_messages(draw: st.DrawFn) -> Open:
    """OPENs with one capability per Capabilities parameter (scapy's BGPOptParam holds one
    capability: further ones in the same parameter are left as a Raw payload) and the classic
    optional-parameters format (scapy does not implement RFC 9072)."""
    caps = draw(
        st.lists(capabilities(four_octet_as_zero=False).filter(_scapy_readable), max_size=6)
    )
    roles = {cap.role for cap in caps if isinstance(cap, BGPRole)}
    if len(roles) > 1:  # RFC 9234 §4.2: an OPEN with disagreeing roles is rejected
        caps = [cap for cap in caps if not isinstance(cap, BGPRole)]
    while sum(4 + len(cap.encode()) for cap in caps) > 255:
        caps.pop()
    return Open(
        my_as=draw(st.integers(1, 0xFFFF)),
        hold_time=draw(st.just(0) | st.integers(3, 0xFFFF)),
        bgp_id=str(ipaddress.IPv4Address(draw(st.integers(1, 0xFFFFFFFF)))),
        parameters=tuple((cap,) for cap in caps),
    )


def pybgp_capability_view(cap: Capability) -> tuple[Any, ...]:
    if isinstance(cap, Multiprotocol):
        return cap.code, cap.family.afi, cap.reserved, cap.family.safi
    if isinstance(cap, FourOctetAS):
        return cap.code, cap.asn
    if isinstance(cap, GracefulRestart):
        flags = encode_capability(cap)[2] >> 4
        entries = [
            (e.family.afi, e.family.safi, (0x80 if e.forwarding_state else 0) | e.reserved_flags)
            for e in cap.families
        ]
        return cap.code, flags, cap.restart_time, entries
    return cap.code, encode_capability(cap)[2:]


def scapy_capability_view(cap: Packet) -> tuple[Any, ...]:
    _only(cap)
    if isinstance(cap, bgp.BGPCapMultiprotocol):
        return cap.code, cap.afi, cap.reserved, cap.safi
    if isinstance(cap, bgp.BGPCapFourBytesASN):
        return cap.code, cap.asn
    if isinstance(cap, bgp.BGPCapGracefulRestart):
        entries = [(e.afi, e.safi, e.flags) for e in cap.entries if _only(e)]
        return cap.code, cap.restart_flags, cap.restart_time, entries
    assert isinstance(cap, bgp.BGPCapGeneric), repr(cap)
    return cap.code, bytes(cap.cap_data)


@SETTINGS
@given(scapy_open_messages())
def test_scapy_reads_the_opens_pybgp_encodes(message: Open) -> None:
    ctx = CodecContext()
    raw = message.encode(ctx)
    parsed = bgp.BGPHeader(raw)
    assert parsed.type == 1 and parsed.len == len(raw)
    scapy_open = parsed[bgp.BGPOpen]
    decoded = Open.decode(raw[HEADER_LEN:], ctx)
    assert (scapy_open.version, scapy_open.my_as, scapy_open.hold_time, scapy_open.bgp_id) == (
        4,
        decoded.my_as,
        decoded.hold_time,
        decoded.bgp_id,
    )
    assert all(param.param_type == 2 for param in scapy_open.opt_params)
    assert [scapy_capability_view(p.param_value) for p in scapy_open.opt_params] == [
        pybgp_capability_view(cap) for cap in decoded.capabilities
    ]


@SETTINGS
@given(
    my_as=st.integers(1, 0xFFFF),
    hold_time=st.just(0) | st.integers(3, 0xFFFF),
    bgp_id=st.integers(1, 0xFFFFFFFF).map(lambda n: str(ipaddress.IPv4Address(n))),
    asn=st.integers(1, 0xFFFFFFFF),
    families=st.lists(st.sampled_from([IPV4_UNICAST, IPV6_UNICAST]), max_size=2),
    restart_time=st.integers(0, 0xFFF),
)
def test_pybgp_reads_the_opens_scapy_builds(
    my_as: int,
    hold_time: int,
    bgp_id: str,
    asn: int,
    families: list[Family],
    restart_time: int,
) -> None:
    caps = [bgp.BGPCapMultiprotocol(afi=f.afi, safi=f.safi) for f in families]
    caps += [
        bgp.BGPCapGeneric(code=2),
        bgp.BGPCapFourBytesASN(asn=asn),
        bgp.BGPCapGracefulRestart(
            restart_flags=0x8,
            restart_time=restart_time,
            entries=[
                bgp.BGPCapGracefulRestart.GRTuple(afi=f.afi, safi=f.safi, flags=0x80)
                for f in families
            ],
        ),
    ]
    message = bgp.BGPHeader(type=1) / bgp.BGPOpen(
        my_as=my_as,
        hold_time=hold_time,
        bgp_id=bgp_id,
        opt_params=[bgp.BGPOptParam(param_value=cap) for cap in caps],
    )
    decoded = Open.decode(bytes(message)[HEADER_LEN:], CodecContext())
    assert (decoded.my_as, decoded.hold_time, decoded.bgp_id) == (my_as, hold_time, bgp_id)
    assert decoded.parameters == (
        *((Multiprotocol(family=f),) for f in families),
        (RouteRefresh(),),
        (FourOctetAS(asn=asn),),
        (
            GracefulRestart(
                restart_state=True,
                restart_time=restart_time,
                families=tuple(
                    GracefulRestartFamily(family=f, forwarding_state=True) for f in families
                ),
            ),
        ),
    )
    assert decoded.asn == asn
