"""Adj-RIB-Out through update groups: one encoding per group, the export rules of RFC 4271
§5.1 and §9.2, RFC 1997 and RFC 4456, split horizon, batching, per-peer counts."""

from __future__ import annotations

import attrs
import pytest

from pybgp.rib import update_group
from pybgp.rib.adj_in import AdjRibIn
from pybgp.rib.adj_out import AdjRibOut
from pybgp.rib.export import ExportKey
from pybgp.rib.loc_rib import LocRib
from pybgp.rib.peer import PeerInfo, local_origin
from pybgp.rib.update_group import EVERYONE, Outgoing, Target
from pybgp.wire import outbound
from pybgp.wire.communities import NO_ADVERTISE, NO_EXPORT, NO_EXPORT_SUBCONFED
from pybgp.wire.constants import AS_TRANS, IPV4_UNICAST, IPV6_UNICAST, AttrType, SegmentType
from pybgp.wire.context import CodecContext
from pybgp.wire.header import split_messages
from pybgp.wire.nlri import nlri_to_str
from pybgp.wire.pathattrs import PathAttributes
from pybgp.wire.update import Update
from tests.pybgp.rib.builders import LOCAL_AS, attributes, peer, prefix, v4

SEQ = SegmentType.AS_SEQUENCE
EBGP_KEY = ExportKey(ibgp=False, local_asn=LOCAL_AS, local_address="198.51.100.1")
IBGP_KEY = ExportKey(ibgp=True, local_asn=LOCAL_AS, local_address="10.255.0.100")


class Speaker:
    """Adj-RIBs-In -> Loc-RIB -> Adj-RIB-Out, wired as the speaker does."""

    def __init__(self) -> None:
        self.ribs: dict[str, AdjRibIn] = {}
        self.loc = LocRib(IPV4_UNICAST)
        self.out = AdjRibOut()

    def join(self, source: PeerInfo, key: ExportKey) -> list[bytes]:
        group = self.out.add_peer(source, key, {IPV4_UNICAST: self.loc})
        return group.table_messages(source.address)

    def learn(self, source: PeerInfo, texts: tuple[str, ...], attrs: PathAttributes) -> None:
        rib = self.ribs.setdefault(source.address, AdjRibIn(source))
        for touched in rib.announce(IPV4_UNICAST, v4(*texts), attrs, source.address):
            self.out.enqueue(IPV4_UNICAST, self.loc.apply(touched, list(self.ribs.values())))

    def forget(self, source: PeerInfo, *texts: str) -> None:
        for touched in self.ribs[source.address].withdraw(IPV4_UNICAST, v4(*texts)):
            self.out.enqueue(IPV4_UNICAST, self.loc.apply(touched, list(self.ribs.values())))

    def sent_to(self, address: str) -> list[bytes]:
        """Flush, and the messages `address` gets."""
        flushed = self.out.flush().values()
        return [o.message for outs in flushed for o in outs if address in o.peers]


def decode(messages: list[bytes], ctx: CodecContext | None = None) -> list[Update]:
    ctx = ctx or CodecContext(ibgp=True)
    return [
        Update.decode(body, ctx) for _, body in split_messages(bytearray(b"".join(messages)), ctx)
    ]


def announced(messages: list[bytes], ctx: CodecContext | None = None) -> dict[str, PathAttributes]:
    out = {}
    for update in decode(messages, ctx):
        for key in update.nlri:
            assert update.attributes is not None
            out[nlri_to_str(key, IPV4_UNICAST)] = update.attributes
    return out


def withdrawn(messages: list[bytes]) -> list[str]:
    return [nlri_to_str(k, IPV4_UNICAST) for u in decode(messages) for k in u.withdrawn]


# -- update groups -------------------------------------------------------------------------
def test_peers_with_the_same_key_share_one_encoding(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = outbound.pack_announcements

    def counting(*args: object, **kwargs: object) -> list[bytes]:
        calls.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(update_group, "pack_announcements", counting)
    speaker = Speaker()
    speaker.join(peer(2), EBGP_KEY)
    speaker.join(peer(3), EBGP_KEY)
    assert len(speaker.out.groups) == 1
    speaker.learn(peer(1), ("10.0.0.0/24", "10.0.1.0/24"), attributes(path=(65001,)))
    (group_output,) = speaker.out.flush().values()
    assert len(calls) == 1  # encoded once for the group
    (message,) = group_output
    assert message.peers == {"10.0.0.2", "10.0.0.3"}  # and both peers get those bytes
    assert sorted(announced([message.message])) == ["10.0.0.0/24", "10.0.1.0/24"]


def test_different_keys_make_different_groups() -> None:
    speaker = Speaker()
    speaker.join(peer(2), EBGP_KEY)
    speaker.join(peer(3), attrs.evolve(EBGP_KEY, asn4=False))
    speaker.join(peer(4, ibgp=True), IBGP_KEY)
    assert len(speaker.out.groups) == 3
    speaker.out.remove_peer("10.0.0.3")
    assert len(speaker.out.groups) == 2 and speaker.out.group_of("10.0.0.3") is None


def test_prefixes_with_equal_attributes_go_in_one_update() -> None:
    speaker = Speaker()
    speaker.join(peer(2), EBGP_KEY)
    texts = tuple(f"10.{i >> 8}.{i & 255}.0/24" for i in range(300))
    attrs_ = attributes(path=(65001,))
    for start in range(0, 300, 10):  # thirty UPDATEs in, with one attribute set
        speaker.learn(peer(1), texts[start : start + 10], attrs_)
    messages = speaker.sent_to("10.0.0.2")
    assert len(messages) == 1 and len(announced(messages)) == 300


# -- eBGP export (RFC 4271 §5.1) ---------------------------------------------------------------
def test_ebgp_export_prepends_sets_next_hop_and_drops_internal_attributes() -> None:
    speaker = Speaker()
    speaker.join(peer(2), EBGP_KEY)
    internal = peer(5, ibgp=True)
    learned = attributes(
        path=(65009, 7), med=30, local_pref=250, originator="10.255.0.50", clusters=("10.9.9.9",)
    )
    speaker.learn(internal, ("10.0.0.0/24",), learned)
    (sent,) = announced(speaker.sent_to("10.0.0.2"), CodecContext()).values()
    assert sent.as_path == ((SEQ, (LOCAL_AS, 65009, 7)),)
    assert sent.next_hop == "198.51.100.1"
    for code in (
        AttrType.LOCAL_PREF,
        AttrType.MULTI_EXIT_DISC,
        AttrType.ORIGINATOR_ID,
        AttrType.CLUSTER_LIST,
    ):
        assert code not in sent


def test_med_we_set_on_our_own_route_goes_to_ebgp() -> None:
    speaker = Speaker()
    speaker.join(peer(2), EBGP_KEY)
    speaker.learn(
        local_origin(LOCAL_AS, "10.255.0.100"), ("10.99.0.0/16",), attributes(path=(), med=5)
    )
    (sent,) = announced(speaker.sent_to("10.0.0.2"), CodecContext()).values()
    assert sent.med == 5 and sent.as_path == ((SEQ, (LOCAL_AS,)),)


def test_two_octet_ebgp_peer_gets_as_trans_and_as4_path() -> None:
    speaker = Speaker()
    speaker.join(peer(2), attrs.evolve(EBGP_KEY, local_asn=4200000000, asn4=False))
    speaker.learn(peer(1), ("10.0.0.0/24",), attributes(path=(65001,)))
    ctx = CodecContext(asn4=False)
    (sent,) = announced(speaker.sent_to("10.0.0.2"), ctx).values()
    assert sent.values[AttrType.AS_PATH] == ((SEQ, (AS_TRANS, 65001)),)
    assert sent.as_path == ((SEQ, (4200000000, 65001)),)


# -- iBGP export ---------------------------------------------------------------------------------
def test_ibgp_export_keeps_path_and_next_hop_and_adds_local_pref() -> None:
    speaker = Speaker()
    speaker.join(peer(4, ibgp=True), IBGP_KEY)
    speaker.learn(peer(1), ("10.0.0.0/24",), attributes(path=(65001,), med=7))
    (sent,) = announced(speaker.sent_to("10.0.0.4")).values()
    assert sent.as_path == ((SEQ, (65001,)),) and sent.next_hop == "10.0.0.1"
    assert sent.local_pref == 100 and sent.med == 7


def test_next_hop_self_for_ibgp() -> None:
    speaker = Speaker()
    speaker.join(peer(4, ibgp=True), attrs.evolve(IBGP_KEY, next_hop_self=True))
    speaker.learn(peer(1), ("10.0.0.0/24",), attributes(path=(65001,)))
    (sent,) = announced(speaker.sent_to("10.0.0.4")).values()
    assert sent.next_hop == "10.255.0.100"


def test_ibgp_route_not_sent_to_another_ibgp_peer() -> None:
    speaker = Speaker()
    speaker.join(peer(4, ibgp=True), attrs.evolve(IBGP_KEY, cluster_id="10.255.0.100"))
    speaker.join(peer(2), EBGP_KEY)
    speaker.learn(peer(5, ibgp=True), ("10.0.0.0/24",), attributes(path=(65009,)))
    assert speaker.sent_to("10.0.0.4") == []
    speaker.learn(peer(5, ibgp=True), ("10.0.1.0/24",), attributes(path=(65009,)))
    assert list(announced(speaker.sent_to("10.0.0.2"), CodecContext())) == ["10.0.1.0/24"]


def test_route_reflection_to_clients_and_from_clients() -> None:
    speaker = Speaker()
    client_key = attrs.evolve(IBGP_KEY, route_reflector_client=True, cluster_id="10.255.0.100")
    speaker.join(peer(6, ibgp=True, rr_client=True), client_key)
    speaker.join(peer(4, ibgp=True), attrs.evolve(IBGP_KEY, cluster_id="10.255.0.100"))
    speaker.learn(peer(5, ibgp=True), ("10.0.0.0/24",), attributes(path=(65009,)))  # non-client
    (to_client,) = announced(speaker.sent_to("10.0.0.6")).values()
    assert to_client.originator_id == "10.255.0.5" and to_client.cluster_list == ("10.255.0.100",)
    speaker.learn(peer(7, ibgp=True, rr_client=True), ("10.0.1.0/24",), attributes(path=(65009,)))
    sent = speaker.out.flush()
    receivers = {a for outs in sent.values() for o in outs for a in o.peers}
    assert receivers == {"10.0.0.4", "10.0.0.6"}  # a client's route goes to everyone


# -- RFC 1997 well-known communities ------------------------------------------------------------
@pytest.mark.parametrize(
    ("community", "ebgp", "confed", "ibgp"),
    [
        (NO_EXPORT, False, True, True),
        (NO_EXPORT_SUBCONFED, False, False, True),
        (NO_ADVERTISE, False, False, False),
    ],
)
def test_well_known_communities(community: int, ebgp: bool, confed: bool, ibgp: bool) -> None:
    speaker = Speaker()
    speaker.join(peer(2), EBGP_KEY)
    speaker.join(
        peer(3, confederation=True), attrs.evolve(IBGP_KEY, ibgp=False, confederation=True)
    )
    speaker.join(peer(4, ibgp=True), IBGP_KEY)
    speaker.learn(peer(1), ("10.0.0.0/24",), attributes(path=(65001,), communities=(community,)))
    receivers = {a for outs in speaker.out.flush().values() for o in outs for a in o.peers}
    assert ("10.0.0.2" in receivers, "10.0.0.3" in receivers, "10.0.0.4" in receivers) == (
        ebgp,
        confed,
        ibgp,
    )


def test_confederation_peer_gets_a_confed_segment() -> None:
    speaker = Speaker()
    speaker.join(
        peer(3, confederation=True), attrs.evolve(IBGP_KEY, ibgp=False, confederation=True)
    )
    speaker.learn(peer(1), ("10.0.0.0/24",), attributes(path=(65001,)))
    ctx = CodecContext(confederation=True)
    (sent,) = announced(speaker.sent_to("10.0.0.3"), ctx).values()
    assert sent.as_path == ((SegmentType.AS_CONFED_SEQUENCE, (LOCAL_AS,)), (SEQ, (65001,)))
    assert sent.next_hop == "10.0.0.1" and sent.local_pref == 100


# -- split horizon, withdrawals, counts ------------------------------------------------------------
def test_route_is_not_sent_back_to_the_peer_it_came_from() -> None:
    speaker = Speaker()
    speaker.join(peer(1), EBGP_KEY)
    speaker.join(peer(2), EBGP_KEY)
    speaker.learn(peer(1), ("10.0.0.0/24",), attributes(path=(65001,)))
    (outs,) = speaker.out.flush().values()
    assert [o.peers for o in outs] == [frozenset({"10.0.0.2"})]
    assert speaker.out.advertised("10.0.0.1", IPV4_UNICAST) == 0
    assert speaker.out.advertised("10.0.0.2", IPV4_UNICAST) == 1
    # A better path from peer 3: everyone, peer 1 included, gets it now.
    speaker.learn(peer(3), ("10.0.0.0/24",), attributes(path=()))
    (outs,) = speaker.out.flush().values()
    assert [o.peers for o in outs] == [frozenset({"10.0.0.1", "10.0.0.2"})]
    assert speaker.out.advertised("10.0.0.1", IPV4_UNICAST) == 1
    # Back to peer 1's path: peer 1 gets a withdrawal, peer 2 the new path.
    speaker.forget(peer(3), "10.0.0.0/24")
    outs = next(iter(speaker.out.flush().values()))
    by_peer = {tuple(sorted(o.peers)): o.message for o in outs}
    assert withdrawn([by_peer[("10.0.0.1",)]]) == ["10.0.0.0/24"]
    assert list(announced([by_peer[("10.0.0.2",)]])) == ["10.0.0.0/24"]


def test_without_split_horizon_the_group_gets_one_message_set_like_frr() -> None:
    speaker = Speaker()
    key = attrs.evolve(EBGP_KEY, split_horizon=False)
    speaker.join(peer(1), key)
    speaker.join(peer(2), key)
    speaker.learn(peer(1), ("10.0.0.0/24",), attributes(path=(65001,)))
    (outs,) = speaker.out.flush().values()
    assert [o.peers for o in outs] == [frozenset({"10.0.0.1", "10.0.0.2"})]


def test_withdrawal_when_the_last_path_goes() -> None:
    speaker = Speaker()
    speaker.join(peer(2), EBGP_KEY)
    speaker.learn(peer(1), ("10.0.0.0/24", "10.0.1.0/24"), attributes(path=(65001,)))
    speaker.out.flush()
    assert speaker.out.advertised("10.0.0.2", IPV4_UNICAST) == 2
    speaker.forget(peer(1), "10.0.0.0/24", "10.0.1.0/24")
    assert sorted(withdrawn(speaker.sent_to("10.0.0.2"))) == ["10.0.0.0/24", "10.0.1.0/24"]
    assert speaker.out.advertised("10.0.0.2", IPV4_UNICAST) == 0


def test_changes_between_flushes_are_coalesced() -> None:
    speaker = Speaker()
    speaker.join(peer(2), EBGP_KEY)
    speaker.learn(peer(1), ("10.0.0.0/24",), attributes(path=(65001, 5)))
    speaker.learn(peer(1), ("10.0.0.0/24",), attributes(path=(65001, 6)))
    speaker.learn(peer(3), ("10.0.0.0/24",), attributes(path=(65003,)))
    speaker.forget(peer(3), "10.0.0.0/24")
    (only,) = announced(speaker.sent_to("10.0.0.2"), CodecContext()).values()
    assert only.as_path == ((SEQ, (LOCAL_AS, 65001, 6)),)
    speaker.learn(peer(1), ("10.0.1.0/24",), attributes(path=(65001,)))
    speaker.forget(peer(1), "10.0.1.0/24")
    assert speaker.sent_to("10.0.0.2") == []  # announced and gone before the flush


def test_new_member_gets_the_table_then_end_of_rib() -> None:
    speaker = Speaker()
    speaker.learn(peer(1), ("10.0.0.0/24", "10.0.1.0/24"), attributes(path=(65001,)))
    speaker.learn(peer(3), ("10.0.2.0/24",), attributes(path=(65003,)))
    table = speaker.join(peer(2), EBGP_KEY)  # a new group, filled from the Loc-RIB
    updates = decode(table, CodecContext())
    assert updates[-1].end_of_rib() == IPV4_UNICAST
    assert sorted(announced(table, CodecContext())) == ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"]
    own = speaker.join(peer(1), EBGP_KEY)  # joins the group; does not get its own routes back
    assert sorted(announced(own, CodecContext())) == ["10.0.2.0/24"]
    assert speaker.out.advertised("10.0.0.1", IPV4_UNICAST) == 1
    assert speaker.out.advertised("10.0.0.2", IPV4_UNICAST) == 3


def test_addpath_send_puts_a_path_id_on_each_prefix() -> None:
    speaker = Speaker()
    speaker.join(peer(2), attrs.evolve(EBGP_KEY, addpath_tx=frozenset({IPV4_UNICAST})))
    speaker.learn(peer(1), ("10.0.0.0/24",), attributes(path=(65001,)))
    ctx = CodecContext(addpath_rx=frozenset({IPV4_UNICAST}))
    (update,) = decode(speaker.sent_to("10.0.0.2"), ctx)
    assert update.nlri == (b"\0\0\0\1" + prefix("10.0.0.0/24"),)


def test_ipv6_routes_to_ebgp_use_the_ipv6_local_address() -> None:
    speaker = Speaker()
    loc6 = LocRib(IPV6_UNICAST)
    key = attrs.evolve(EBGP_KEY, local_address6="2001:db8::100", families=frozenset({IPV6_UNICAST}))
    speaker.out.add_peer(peer(2), key, {IPV6_UNICAST: loc6})
    rib = AdjRibIn(peer(1))
    keys = [prefix("2001:db8:1::/48", IPV6_UNICAST)]
    for touched in rib.announce(IPV6_UNICAST, keys, attributes(path=(65001,)), "2001:db8::1"):
        speaker.out.enqueue(IPV6_UNICAST, loc6.apply(touched, [rib]))
    (update,) = decode(speaker.sent_to("10.0.0.2"), CodecContext())
    assert update.mp_reach is not None and update.mp_reach.next_hops == ("2001:db8::100",)
    assert update.mp_reach.nlri == tuple(keys)


def test_ebgp_key_needs_a_local_address() -> None:
    with pytest.raises(ValueError, match="local address"):
        AdjRibOut().add_peer(peer(2), ExportKey(ibgp=False, local_asn=LOCAL_AS), {})


def test_outgoing_names_its_receivers_among_the_members() -> None:
    members = frozenset({"a", "b", "c"})
    assert Outgoing(b"x", EVERYONE, members).peers == members
    assert Outgoing(b"x", Target(skip="b"), members).peers == {"a", "c"}
    assert Outgoing(b"x", Target(only="c"), members).peers == {"c"}


def test_routes_of_a_groups_only_member_reach_a_member_who_joins_later() -> None:
    # While peer 1 is alone in its group its own routes are not exported (split horizon
    # leaves it nothing to send); peer 2 joining later must still get them.
    speaker = Speaker()
    speaker.join(peer(1), EBGP_KEY)
    speaker.learn(peer(1), ("10.0.0.0/24", "10.0.1.0/24"), attributes(path=(65001,)))
    assert speaker.sent_to("10.0.0.1") == []
    assert speaker.out.advertised("10.0.0.1", IPV4_UNICAST) == 0
    # A better path from elsewhere replaces peer 1's for one prefix: peer 1 gets it.
    speaker.learn(peer(3), ("10.0.1.0/24",), attributes(path=()))
    assert list(announced(speaker.sent_to("10.0.0.1"), CodecContext())) == ["10.0.1.0/24"]
    table = speaker.join(peer(2), EBGP_KEY)
    assert sorted(announced(table, CodecContext())) == ["10.0.0.0/24", "10.0.1.0/24"]
    assert speaker.out.advertised("10.0.0.1", IPV4_UNICAST) == 1
    assert speaker.out.advertised("10.0.0.2", IPV4_UNICAST) == 2
    # Peer 1 withdraws: peer 2 gets the withdrawal, peer 1 nothing.
    speaker.forget(peer(1), "10.0.0.0/24")
    outs = next(iter(speaker.out.flush().values()))
    assert [(sorted(o.peers), withdrawn([o.message])) for o in outs] == [
        (["10.0.0.2"], ["10.0.0.0/24"])
    ]


def test_a_member_joining_while_changes_wait_gets_each_route_once() -> None:
    """Peer 1's routes not yet flushed when peer 2 joins come to peer 2 with the next flush,
    the others with its table; peer 1 never gets its own, and a better path from peer 1 for
    a prefix it had from peer 3 withdraws that prefix from peer 1."""
    speaker = Speaker()
    speaker.join(peer(1), EBGP_KEY)
    speaker.learn(peer(3), ("10.0.2.0/24",), attributes(path=(65003, 65009)))
    speaker.learn(peer(1), ("10.0.0.0/24",), attributes(path=(65001,)))
    assert list(announced(speaker.sent_to("10.0.0.1"), CodecContext())) == ["10.0.2.0/24"]
    speaker.learn(peer(1), ("10.0.2.0/24",), attributes(path=(65001,)))  # shorter: best
    assert withdrawn(speaker.sent_to("10.0.0.1")) == ["10.0.2.0/24"]
    speaker.learn(peer(1), ("10.0.1.0/24",), attributes(path=(65001,)))  # pending at join
    table = speaker.join(peer(2), EBGP_KEY)
    assert sorted(announced(table, CodecContext())) == ["10.0.0.0/24", "10.0.2.0/24"]
    flushed = speaker.out.flush()
    sent = [
        (sorted(o.peers), sorted(announced([o.message], CodecContext())))
        for outs in flushed.values()
        for o in outs
    ]
    assert sent == [(["10.0.0.2"], ["10.0.1.0/24"])]
    assert speaker.out.advertised("10.0.0.1", IPV4_UNICAST) == 0
    assert speaker.out.advertised("10.0.0.2", IPV4_UNICAST) == 3


def test_flush_in_parts() -> None:
    speaker = Speaker()
    speaker.join(peer(2), EBGP_KEY)
    speaker.learn(peer(1), ("10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"), attributes(path=(65001,)))
    first = speaker.out.flush(limit=2)
    assert speaker.out.has_pending
    rest = speaker.out.flush(limit=2)
    assert not speaker.out.has_pending
    parts = [
        sorted(announced([o.message for outs in part.values() for o in outs]))
        for part in (first, rest)
    ]
    assert parts == [["10.0.0.0/24", "10.0.1.0/24"], ["10.0.2.0/24"]]
