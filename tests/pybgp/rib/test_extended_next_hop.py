"""RFC 8950 in the Adj-RIB-Out: IPv4 routes to a peer over IPv6 get our IPv6 address as next
hop (in MP_REACH_NLRI) when extended next hops were negotiated; an IPv6 next hop is never
passed on to a peer that did not negotiate them."""

from __future__ import annotations

import attrs

from pybgp.rib.export import ExportKey, export
from pybgp.wire.constants import IPV4_UNICAST
from pybgp.wire.context import CodecContext
from pybgp.wire.header import split_messages
from pybgp.wire.update import Update
from tests.pybgp.rib.builders import LOCAL_AS, peer, route
from tests.pybgp.rib.test_adj_out import Speaker

V6_ONLY = ExportKey(ibgp=False, local_asn=LOCAL_AS, local_address6="fd00::1")


def test_ipv4_over_ipv6_needs_the_capability() -> None:
    r = route(peer(1))
    assert export(r, V6_ONLY, IPV4_UNICAST) is None
    extended = attrs.evolve(V6_ONLY, extended_next_hop=True)
    exported = export(r, extended, IPV4_UNICAST)
    assert exported is not None and exported.next_hop == "fd00::1"


def test_the_update_carries_ipv4_nlri_with_an_ipv6_next_hop_in_mp_reach() -> None:
    speaker = Speaker()
    receiver = peer(2)
    key = attrs.evolve(V6_ONLY, extended_next_hop=True)
    speaker.out.add_peer(receiver, key, {IPV4_UNICAST: speaker.loc})
    source = peer(1)
    speaker.learn(source, ("10.1.0.0/24",), route(source).attributes)
    ctx = CodecContext()
    (update,) = [
        Update.decode(body, ctx)
        for _, body in split_messages(bytearray(b"".join(speaker.sent_to(receiver.address))), ctx)
    ]
    assert update.nlri == () and update.mp_reach is not None
    assert update.mp_reach.family == IPV4_UNICAST and len(update.mp_reach.next_hop) == 16


def test_an_ipv6_next_hop_is_not_passed_to_an_ibgp_peer_without_the_capability() -> None:
    """An eBGP route learned with an IPv6 next hop (over RFC 8950) goes to an iBGP peer
    without the capability with our IPv4 address instead."""
    r = route(peer(1), next_hop="fd00::9")
    key = ExportKey(ibgp=True, local_asn=LOCAL_AS, local_address="10.0.0.100")
    exported = export(r, key, IPV4_UNICAST)
    assert exported is not None and exported.next_hop == "10.0.0.100"
    with_capability = export(r, attrs.evolve(key, extended_next_hop=True), IPV4_UNICAST)
    assert with_capability is not None and with_capability.next_hop == "fd00::9"
