"""ADD-PATH send of several paths per prefix (RFC 7911) through the Adj-RIB-Out: the best
paths in decision-process order, each under an id of its own that follows the path, not
its rank; export rules and split horizon per path; members without ADD-PATH untouched."""

from __future__ import annotations

import attrs

from pybgp.rib.adj_in import AdjRibIn
from pybgp.rib.adj_out import AdjRibOut
from pybgp.rib.adj_out_paths import PathsGroup
from pybgp.rib.export import ExportKey
from pybgp.rib.loc_rib import LocRib
from pybgp.rib.peer import PeerInfo
from pybgp.wire.communities import NO_ADVERTISE
from pybgp.wire.constants import IPV4_UNICAST
from pybgp.wire.context import CodecContext
from pybgp.wire.header import split_messages
from pybgp.wire.nlri import nlri_to_str
from pybgp.wire.pathattrs import PathAttributes
from pybgp.wire.update import Update
from tests.pybgp.rib.builders import LOCAL_AS, attributes, peer, v4

V4 = frozenset({IPV4_UNICAST})
EBGP_KEY = ExportKey(ibgp=False, local_asn=LOCAL_AS, local_address="198.51.100.1")
IBGP_KEY = ExportKey(ibgp=True, local_asn=LOCAL_AS, local_address="10.255.0.100")
RECEIVER = CodecContext(addpath_rx=V4, ibgp=True)
P = "10.0.0.0/24"
TAG = (65002 << 16) | 7  # a community: passed on to eBGP (a MED would not be, RFC 4271 §5.1.4)


def paths_key(n: int, base: ExportKey = EBGP_KEY) -> ExportKey:
    return attrs.evolve(base, addpath_tx=V4, send_paths=n)


class Speaker:
    """Adj-RIBs-In -> Loc-RIB -> Adj-RIB-Out, wired as the Speaker does (pybgp.speaker.pipeline)."""

    def __init__(self) -> None:
        self.ribs: dict[str, AdjRibIn] = {}
        self.loc = LocRib(IPV4_UNICAST)
        self.out = AdjRibOut(paths=lambda family, prefix: self.loc.ranked(prefix, self.sources()))

    def sources(self) -> list[AdjRibIn]:
        return list(self.ribs.values())

    def join(self, member: PeerInfo, key: ExportKey) -> list[bytes]:
        group = self.out.add_peer(member, key, {IPV4_UNICAST: self.loc})
        return group.table_messages(member.address)

    def learn(self, source: PeerInfo, attrs: PathAttributes, *texts: str) -> None:
        rib = self.ribs.setdefault(source.address, AdjRibIn(source))
        self._take(rib.announce(IPV4_UNICAST, v4(*(texts or (P,))), attrs, source.address))

    def forget(self, source: PeerInfo, *texts: str) -> None:
        self._take(self.ribs[source.address].withdraw(IPV4_UNICAST, v4(*(texts or (P,)))))

    def _take(self, touched: list[object]) -> None:
        for item in touched:
            self.out.enqueue(IPV4_UNICAST, self.loc.apply(item, self.sources()))  # type: ignore[arg-type]
            if self.out.wants_paths:
                self.out.enqueue_paths(IPV4_UNICAST, item.prefixes)  # type: ignore[attr-defined]

    def sent_to(self, address: str) -> list[bytes]:
        flushed = self.out.flush().values()
        return [o.message for outs in flushed for o in outs if address in o.peers]


def decode(messages: list[bytes], ctx: CodecContext = RECEIVER) -> list[Update]:
    stream = bytearray(b"".join(messages))
    return [Update.decode(body, ctx) for _, body in split_messages(stream, ctx)]


def announced(messages: list[bytes]) -> dict[tuple[int, str], str]:
    """(path id, prefix) -> AS path, of what `messages` announce."""
    out = {}
    for update in decode(messages):
        for key in update.nlri:
            assert update.attributes is not None
            path = " ".join(str(asn) for _, asns in update.attributes.as_path for asn in asns)
            out[int.from_bytes(key[:4], "big"), nlri_to_str(key[4:], IPV4_UNICAST)] = path
    return out


def withdrawn(messages: list[bytes]) -> list[tuple[int, str]]:
    return [
        (int.from_bytes(key[:4], "big"), nlri_to_str(key[4:], IPV4_UNICAST))
        for update in decode(messages)
        for key in update.withdrawn
    ]


def three_paths() -> Speaker:
    """Paths for P from peers 1, 2 and 3, ranked in that order (AS path length)."""
    speaker = Speaker()
    speaker.learn(peer(1), attributes(path=(65001,)))
    speaker.learn(peer(2), attributes(path=(65002, 65002)))
    speaker.learn(peer(3), attributes(path=(65003, 65003, 65003)))
    return speaker


def test_several_paths_go_out_best_first_with_distinct_ids() -> None:
    speaker = three_paths()
    table = speaker.join(peer(9), paths_key(3))
    assert announced(table) == {
        (1, P): "65000 65001",
        (2, P): "65000 65002 65002",
        (3, P): "65000 65003 65003 65003",
    }
    assert decode(table)[-1].end_of_rib() == IPV4_UNICAST
    assert speaker.out.advertised("10.0.0.9", IPV4_UNICAST) == 3


def test_paths_arriving_one_by_one_each_get_a_new_id() -> None:
    speaker = Speaker()
    speaker.join(peer(9), paths_key(3))
    speaker.learn(peer(2), attributes(path=(65002, 65002)))
    assert announced(speaker.sent_to("10.0.0.9")) == {(1, P): "65000 65002 65002"}
    speaker.learn(peer(1), attributes(path=(65001,)))  # the new best keeps no old id
    assert announced(speaker.sent_to("10.0.0.9")) == {(2, P): "65000 65001"}


def test_a_change_to_the_second_best_replaces_only_its_id() -> None:
    speaker = three_paths()
    speaker.join(peer(9), paths_key(3))
    speaker.learn(peer(2), attributes(path=(65002, 65002), communities=(TAG,)))
    sent = speaker.sent_to("10.0.0.9")
    assert announced(sent) == {(2, P): "65000 65002 65002"}
    assert withdrawn(sent) == []


def test_the_id_follows_the_path_not_its_rank() -> None:
    speaker = three_paths()
    speaker.join(peer(9), paths_key(3))
    speaker.learn(peer(3), attributes(path=(65003,), local_pref=200))  # as import policy sets
    best = speaker.loc.best(v4(P)[0])
    assert best is not None and best.peer == peer(3)
    sent = speaker.sent_to("10.0.0.9")
    assert announced(sent) == {(3, P): "65000 65003"} and withdrawn(sent) == []


def test_withdrawal_of_one_path_withdraws_only_its_id() -> None:
    speaker = three_paths()
    speaker.join(peer(9), paths_key(3))
    speaker.forget(peer(2))
    sent = speaker.sent_to("10.0.0.9")
    assert withdrawn(sent) == [(2, P)] and announced(sent) == {}
    assert speaker.out.advertised("10.0.0.9", IPV4_UNICAST) == 2
    speaker.forget(peer(1))  # the best goes: the others keep their ids
    sent = speaker.sent_to("10.0.0.9")
    assert withdrawn(sent) == [(1, P)] and announced(sent) == {}


def test_n_caps_the_count_and_the_next_path_moves_up_under_a_new_id() -> None:
    speaker = three_paths()
    assert announced(speaker.join(peer(9), paths_key(2))) == {
        (1, P): "65000 65001",
        (2, P): "65000 65002 65002",
    }
    speaker.forget(peer(1))
    sent = speaker.sent_to("10.0.0.9")
    # Id 1 is withdrawn, not reused for another path in the same change.
    assert withdrawn(sent) == [(1, P)]
    assert announced(sent) == {(3, P): "65000 65003 65003 65003"}
    assert speaker.out.advertised("10.0.0.9", IPV4_UNICAST) == 2
    speaker.learn(peer(4), attributes(path=(65004, 65004, 65004, 65004)))  # ranks last: nothing
    assert speaker.sent_to("10.0.0.9") == []


def test_a_freed_id_is_used_again_by_a_later_change() -> None:
    speaker = three_paths()
    speaker.join(peer(9), paths_key(2))
    speaker.forget(peer(1))
    speaker.sent_to("10.0.0.9")
    speaker.learn(peer(1), attributes(path=(65001,)))  # back: takes the lowest free id
    sent = speaker.sent_to("10.0.0.9")
    assert announced(sent) == {(1, P): "65000 65001"} and withdrawn(sent) == [(3, P)]


def test_a_member_without_add_path_still_gets_only_the_best() -> None:
    speaker = three_paths()
    speaker.join(peer(9), paths_key(3))
    plain = speaker.join(peer(8), EBGP_KEY)
    ctx = CodecContext()
    first, end = decode(plain, ctx)  # the best path alone, without a path id; End-of-RIB
    assert first.nlri == v4(P) and end.end_of_rib() == IPV4_UNICAST
    assert first.attributes is not None and first.attributes.as_path == ((2, (65000, 65001)),)
    speaker.learn(peer(2), attributes(path=(65002, 65002), communities=(TAG,)))  # not the best
    assert speaker.sent_to("10.0.0.8") == []
    assert list(announced(speaker.sent_to("10.0.0.9"))) == []  # flushed above already
    speaker.forget(peer(1))  # the best changes: the plain member gets the new one
    outs = speaker.out.flush()
    plain_group = speaker.out.group_of("10.0.0.8")
    assert plain_group is not None and not isinstance(plain_group, PathsGroup)
    (update,) = decode([o.message for o in outs[plain_group]], ctx)
    assert update.nlri == v4(P) and update.attributes is not None
    assert update.attributes.as_path == ((2, (65000, 65002, 65002)),)
    paths_group = speaker.out.group_of("10.0.0.9")
    assert paths_group is not None and isinstance(paths_group, PathsGroup)
    assert withdrawn([o.message for o in outs[paths_group]]) == [(1, P)]


def test_split_horizon_per_path() -> None:
    speaker = three_paths()
    speaker.join(peer(9), paths_key(3))
    own = speaker.join(peer(2), paths_key(3))  # the same group; it sent path 2
    assert announced(own) == {(1, P): "65000 65001", (3, P): "65000 65003 65003 65003"}
    assert speaker.out.advertised("10.0.0.2", IPV4_UNICAST) == 2
    assert speaker.out.advertised("10.0.0.9", IPV4_UNICAST) == 3
    speaker.learn(peer(2), attributes(path=(65002, 65002), communities=(TAG,)))
    outs = [out for outs in speaker.out.flush().values() for out in outs]
    assert [o.peers for o in outs] == [frozenset({"10.0.0.9"})]


def test_export_rules_apply_per_path_and_n_counts_what_may_be_sent() -> None:
    speaker = Speaker()
    speaker.learn(peer(1, ibgp=True), attributes(path=(65010,), local_pref=300))  # the best
    speaker.learn(peer(2), attributes(path=(65002,), communities=(NO_ADVERTISE,)))
    speaker.learn(peer(3), attributes(path=(65003, 65003)))
    speaker.learn(peer(4), attributes(path=(65004, 65004, 65004)))
    # iBGP member: the iBGP-learned best is not sent (RFC 4271 §9.2), NO_ADVERTISE neither
    # (RFC 1997); the two paths that may go fill N.
    assert announced(speaker.join(peer(9, ibgp=True), paths_key(2, IBGP_KEY))) == {
        (1, P): "65003 65003",
        (2, P): "65004 65004 65004",
    }


def test_prefixes_gone_entirely_are_withdrawn_under_every_id() -> None:
    speaker = three_paths()
    speaker.join(peer(9), paths_key(2))
    for source in (peer(1), peer(2), peer(3)):
        speaker.forget(source)
    sent = speaker.sent_to("10.0.0.9")
    assert sorted(withdrawn(sent)) == [(1, P), (2, P)] and announced(sent) == {}
    assert speaker.out.advertised("10.0.0.9", IPV4_UNICAST) == 0
    assert not speaker.out.has_pending


def test_without_a_paths_group_nothing_is_tracked() -> None:
    speaker = three_paths()
    speaker.join(peer(8), EBGP_KEY)
    speaker.out.flush()
    assert not speaker.out.wants_paths
    speaker.out.enqueue_paths(IPV4_UNICAST, v4(P))
    assert not speaker.out.has_pending
    speaker.join(peer(9), paths_key(2))
    assert speaker.out.wants_paths
    speaker.out.remove_peer("10.0.0.9")
    assert not speaker.out.wants_paths


def test_a_single_path_with_add_path_keeps_path_id_one() -> None:
    speaker = three_paths()
    group = speaker.out.add_peer(peer(9), paths_key(1), {IPV4_UNICAST: speaker.loc})
    assert not isinstance(group, PathsGroup)
    assert announced(group.table_messages("10.0.0.9")) == {(1, P): "65000 65001"}


def test_several_paths_need_a_path_source() -> None:
    try:
        AdjRibOut().add_peer(peer(9), paths_key(2), {})
    except ValueError as exc:
        assert "paths" in str(exc)
    else:
        raise AssertionError("no error")
