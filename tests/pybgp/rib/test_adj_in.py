"""Adj-RIB-In: UPDATEs in (IPv4 fields, MP_REACH/MP_UNREACH, ADD-PATH), AS-loop detection,
counts, sharing of routes, graceful-restart stale marks."""

from __future__ import annotations

import pytest

from pybgp.rib.adj_in import AdjRibIn, Counts
from pybgp.rib.best_path import select
from pybgp.rib.loc_rib import LocRib
from pybgp.wire.constants import IPV4_UNICAST, IPV6_UNICAST, AttrType
from pybgp.wire.context import CodecContext
from pybgp.wire.header import split_messages
from pybgp.wire.mp import MpReach, MpUnreach
from pybgp.wire.nlri import address_from_str, nlri_from_str
from pybgp.wire.outbound import pack_announcements
from pybgp.wire.pathattrs import PathAttributes
from pybgp.wire.update import Update
from tests.pybgp.rib.builders import LOCAL_AS, announce_v4, attributes, peer, prefix, v4

EBGP = peer(1)


def test_ipv4_announcement_shares_one_route_per_update() -> None:
    rib = AdjRibIn(EBGP)
    (touched,) = rib.apply(announce_v4("192.0.2.1", "10.0.0.0/24", "10.0.1.0/24"))
    assert touched.family == IPV4_UNICAST and list(touched.prefixes) == list(
        v4("10.0.0.0/24", "10.0.1.0/24")
    )
    assert touched.previous == [None, None]
    a = rib.paths(IPV4_UNICAST, prefix("10.0.0.0/24"))[0]
    b = rib.paths(IPV4_UNICAST, prefix("10.0.1.0/24"))[0]
    assert a is b is touched.route
    assert a.next_hop == "192.0.2.1" and a.peer is EBGP
    assert rib.counts(IPV4_UNICAST) == Counts(received=2, accepted=2)


def test_equal_attributes_in_consecutive_updates_share_the_route() -> None:
    rib = AdjRibIn(EBGP)
    first = announce_v4("192.0.2.1", "10.0.0.0/24")
    rib.apply(first)
    rib.apply(Update(attributes=first.attributes, nlri=v4("10.0.9.0/24")))
    routes = {id(route) for _, _, route in rib.routes(IPV4_UNICAST)}
    assert len(routes) == 1


def test_replacement_reports_the_previous_path() -> None:
    rib = AdjRibIn(EBGP)
    rib.apply(announce_v4("192.0.2.1", "10.0.0.0/24"))
    old = rib.paths(IPV4_UNICAST, prefix("10.0.0.0/24"))[0]
    (touched,) = rib.apply(announce_v4("192.0.2.2", "10.0.0.0/24"))
    assert touched.previous == [old]
    assert rib.counts(IPV4_UNICAST) == Counts(1, 1)


def test_withdrawal_reports_only_what_was_there() -> None:
    rib = AdjRibIn(EBGP)
    rib.apply(announce_v4("192.0.2.1", "10.0.0.0/24"))
    (touched,) = rib.apply(Update(withdrawn=v4("10.0.0.0/24", "10.9.9.0/24")))
    assert list(touched.prefixes) == list(v4("10.0.0.0/24")) and touched.route is None
    assert rib.counts(IPV4_UNICAST) == Counts(0, 0)
    assert rib.apply(Update(withdrawn=v4("10.0.0.0/24"))) == []


def test_mp_reach_and_unreach_ipv6() -> None:
    rib = AdjRibIn(EBGP)
    keys = (prefix("2001:db8:1::/48", IPV6_UNICAST), prefix("2001:db8:2::/48", IPV6_UNICAST))
    hop = address_from_str("2001:db8::1") + address_from_str("fe80::1")  # global + link-local
    reach = MpReach(family=IPV6_UNICAST, next_hop=hop, nlri=keys)
    (touched,) = rib.apply(Update(attributes=attributes(), mp_reach=reach))
    assert touched.family == IPV6_UNICAST
    assert rib.paths(IPV6_UNICAST, keys[0])[0].next_hop == "2001:db8::1"
    assert rib.counts(IPV6_UNICAST) == Counts(2, 2) and rib.counts(IPV4_UNICAST) == Counts(0, 0)
    unreach = MpUnreach(family=IPV6_UNICAST, nlri=keys[:1])
    (gone,) = rib.apply(Update(mp_unreach=unreach))
    assert list(gone.prefixes) == [keys[0]] and rib.counts(IPV6_UNICAST) == Counts(1, 1)


def test_ipv4_nlri_and_mp_reach_in_one_update_keep_their_own_next_hops() -> None:
    rib = AdjRibIn(EBGP)
    v6 = (prefix("2001:db8:1::/48", IPV6_UNICAST),)
    reach = MpReach(family=IPV6_UNICAST, next_hop=address_from_str("2001:db8::9"), nlri=v6)
    attrs = attributes(next_hop="192.0.2.1")
    rib.apply(Update(attributes=attrs, nlri=v4("10.0.0.0/24"), mp_reach=reach))
    rib.apply(Update(attributes=attrs, nlri=v4("10.0.1.0/24")))
    assert rib.paths(IPV4_UNICAST, prefix("10.0.1.0/24"))[0].next_hop == "192.0.2.1"
    assert rib.paths(IPV6_UNICAST, v6[0])[0].next_hop == "2001:db8::9"


def addpath_update(*paths: tuple[int, str, str]) -> bytes:
    """UPDATE messages for (path id, prefix, next hop), packed and framed as a peer would."""
    ctx = CodecContext(addpath_tx=frozenset({IPV4_UNICAST}))
    out = b""
    for path_id, text, hop in paths:
        key = nlri_from_str(text, IPV4_UNICAST, path_id)
        out += b"".join(pack_announcements(attributes(), IPV4_UNICAST, hop, [key], ctx))
    return out


def test_addpath_keeps_several_paths_per_prefix() -> None:
    ctx = CodecContext(addpath_rx=frozenset({IPV4_UNICAST}), peer_asn=65001)
    stream = addpath_update((1, "10.0.0.0/24", "192.0.2.9"), (2, "10.0.0.0/24", "192.0.2.3"))
    rib = AdjRibIn(EBGP)
    for _, body in split_messages(bytearray(stream), ctx):
        (touched,) = rib.apply(Update.decode(body, ctx))
        assert list(touched.prefixes) == [prefix("10.0.0.0/24")] and touched.previous is None
    paths = rib.paths(IPV4_UNICAST, prefix("10.0.0.0/24"))
    assert {pid: r.next_hop for pid, r in paths.items()} == {1: "192.0.2.9", 2: "192.0.2.3"}
    assert rib.counts(IPV4_UNICAST) == Counts(2, 2)
    loc = LocRib(IPV4_UNICAST)
    (change,) = loc.recompute([prefix("10.0.0.0/24")], [rib])
    assert change[2] is paths[2]  # same peer: the lower next hop breaks the tie
    withdrawn = Update(
        withdrawn=(nlri_from_str("10.0.0.0/24", IPV4_UNICAST, 2),), addpath=ctx.addpath_rx
    )
    rib.apply(withdrawn)
    assert list(rib.paths(IPV4_UNICAST, prefix("10.0.0.0/24"))) == [1]
    (fallback,) = loc.recompute([prefix("10.0.0.0/24")], [rib])
    assert fallback[2] is paths[1]


def test_addpath_mode_cannot_change_under_the_table() -> None:
    rib = AdjRibIn(EBGP)
    rib.apply(announce_v4("192.0.2.1", "10.0.0.0/24"))
    with pytest.raises(ValueError, match="ADD-PATH"):
        rib.announce(
            IPV4_UNICAST,
            [b"\0\0\0\1" + prefix("10.0.0.0/24")],
            attributes(),
            "192.0.2.1",
            addpath=True,
        )


def test_ebgp_route_with_our_as_in_the_path_is_not_eligible() -> None:
    rib = AdjRibIn(EBGP)
    assert rib.apply(announce_v4("192.0.2.1", "10.0.0.0/24", path=(65001, LOCAL_AS, 7))) == []
    assert rib.counts(IPV4_UNICAST) == Counts(received=1, accepted=0)
    assert rib.paths(IPV4_UNICAST, prefix("10.0.0.0/24")) == {}
    (ok,) = rib.apply(announce_v4("192.0.2.1", "10.0.0.0/24", path=(65001, 7)))
    assert ok.route is not None and rib.counts(IPV4_UNICAST) == Counts(1, 1)
    (looped,) = rib.apply(announce_v4("192.0.2.1", "10.0.0.0/24", path=(65001, 9, LOCAL_AS)))
    assert looped.route is None and looped.previous == [ok.route]  # an implicit withdrawal
    assert rib.counts(IPV4_UNICAST) == Counts(1, 0)
    rib.apply(Update(withdrawn=v4("10.0.0.0/24")))
    assert rib.counts(IPV4_UNICAST) == Counts(0, 0)


def test_loop_check_looks_at_the_path_not_at_other_octets() -> None:
    rib = AdjRibIn(EBGP)
    rib.apply(announce_v4("192.0.2.1", "10.0.0.0/24", path=(65001,), communities=(LOCAL_AS,)))
    assert rib.counts(IPV4_UNICAST) == Counts(1, 1)


def test_loop_in_a_path_from_a_two_octet_speaker() -> None:
    attrs = PathAttributes.build(
        {
            AttrType.ORIGIN: 0,
            AttrType.AS_PATH: ((2, (65001, LOCAL_AS)),),
            AttrType.NEXT_HOP: "192.0.2.1",
        },
        asn4=False,
    )
    rib = AdjRibIn(EBGP)
    rib.apply(Update(attributes=attrs, nlri=v4("10.0.0.0/24")))
    assert rib.counts(IPV4_UNICAST) == Counts(1, 0)


def test_ibgp_routes_are_not_loop_checked() -> None:
    rib = AdjRibIn(peer(2, ibgp=True))
    rib.apply(announce_v4("192.0.2.1", "10.0.0.0/24", path=(LOCAL_AS,)))
    assert rib.counts(IPV4_UNICAST) == Counts(1, 1)


def test_graceful_restart_stale_paths_are_swept() -> None:
    rib = AdjRibIn(EBGP)
    rib.apply(announce_v4("192.0.2.1", "10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"))
    assert rib.mark_stale(IPV4_UNICAST) == 3
    rib.apply(announce_v4("192.0.2.1", "10.0.0.0/24"))  # sent again: fresh
    rib.apply(Update(withdrawn=v4("10.0.1.0/24")))  # withdrawn: nothing to sweep
    (swept,) = rib.sweep_stale(IPV4_UNICAST)
    assert list(swept.prefixes) == list(v4("10.0.2.0/24")) and swept.route is None
    assert rib.counts(IPV4_UNICAST) == Counts(1, 1)
    assert rib.sweep_stale(IPV4_UNICAST) == [] and rib.sweep_stale(IPV6_UNICAST) == []


def test_stale_marks_with_addpath() -> None:
    rib = AdjRibIn(EBGP)
    keys = [nlri_from_str("10.0.0.0/24", IPV4_UNICAST, pid) for pid in (1, 2)]
    rib.announce(IPV4_UNICAST, keys, attributes(), "192.0.2.1", addpath=True)
    rib.mark_stale(IPV4_UNICAST)
    rib.announce(IPV4_UNICAST, keys[:1], attributes(), "192.0.2.1", addpath=True)
    (swept,) = rib.sweep_stale(IPV4_UNICAST)
    assert list(rib.paths(IPV4_UNICAST, prefix("10.0.0.0/24"))) == [1]
    assert list(swept.prefixes) == [prefix("10.0.0.0/24")]


def test_clear_reports_every_prefix() -> None:
    rib = AdjRibIn(EBGP)
    rib.apply(announce_v4("192.0.2.1", "10.0.0.0/24", "10.0.1.0/24"))
    (touched,) = rib.clear()
    assert sorted(touched.prefixes) == sorted(v4("10.0.0.0/24", "10.0.1.0/24"))
    assert rib.counts(IPV4_UNICAST) == Counts(0, 0) and rib.families() == []


def test_local_origin_announces_directly() -> None:
    from pybgp.rib.peer import local_origin

    rib = AdjRibIn(local_origin(LOCAL_AS, "10.255.0.100"))
    rib.announce(IPV4_UNICAST, v4("10.99.0.0/16"), attributes(path=()), "0.0.0.0")
    route = rib.paths(IPV4_UNICAST, prefix("10.99.0.0/16"))[0]
    assert route.peer.local and select([route])[0] is route
