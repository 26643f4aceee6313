"""One test per action; attributes are rebuilt (and interned) only when they change."""

from __future__ import annotations

from pybgp.policy import (
    Actions,
    CommunityAction,
    CommunitySet,
    LargeCommunityAction,
    LargeCommunitySet,
    MedAction,
    Prepend,
)
from pybgp.wire.attributes import encode_attribute
from pybgp.wire.communities import community_from_str
from pybgp.wire.constants import AS_TRANS, AttrType, SegmentType
from pybgp.wire.pathattrs import PathAttributes

from .helpers import LOCAL_AS, attributes, ctx, run

C = community_from_str
SEQ = SegmentType.AS_SEQUENCE


def test_local_pref() -> None:
    route = ctx(attrs=attributes(local_pref=100))
    result = run(Actions(local_pref=200), route)
    assert result.attributes.local_pref == 200
    assert result.attributes is PathAttributes.build(dict(result.attributes.values))  # interned
    assert run(Actions(local_pref=100), route).attributes is route.attributes  # no change


def test_med_set_add_subtract_and_clamp() -> None:
    def med(action: str | int, start: int | None) -> int | None:
        return run(
            Actions(med=MedAction.parse(action)), ctx(attrs=attributes(med=start))
        ).attributes.med

    assert med(50, 10) == 50
    assert med("50", None) == 50
    assert med("+5", 10) == 15
    assert med("-5", 10) == 5
    assert med("-50", 10) == 0  # clamped at 0
    assert med("+10", 0xFFFFFFFA) == 0xFFFFFFFF  # clamped at 2**32-1
    assert med("+7", None) == 7  # a missing MED counts as 0


def test_next_hop_self_and_address() -> None:
    route = ctx(next_hop="192.0.2.1", local_address="203.0.113.1")
    assert run(Actions(next_hop="self"), route).next_hop == "203.0.113.1"
    assert run(Actions(next_hop="198.51.100.9"), route).next_hop == "198.51.100.9"
    assert run(Actions(next_hop="self"), ctx(next_hop="192.0.2.1")).next_hop == "192.0.2.1"
    assert run(Actions(next_hop="self"), route).attributes is route.attributes


def test_communities_add() -> None:
    route = ctx(attrs=attributes(communities=(C("65000:1"),)))
    action = Actions(communities=CommunityAction(add=(C("65000:2"), C("65000:1"), C("no-export"))))
    result = run(action, route)
    assert result.attributes.communities == (C("65000:1"), C("65000:2"), C("no-export"))
    again = run(Actions(communities=CommunityAction(add=(C("65000:1"),))), route)
    assert again.attributes is route.attributes  # already there: no new attributes


def test_communities_remove_by_set_and_replace() -> None:
    route = ctx(
        attrs=attributes(communities=(C("65000:1"), C("65000:666"), C("blackhole"), C("1:2")))
    )
    sets = (CommunitySet(name="drop", members=(":666$", "blackhole")),)
    removed = run(Actions(communities=CommunityAction(remove="drop")), route, community_sets=sets)
    assert removed.attributes.communities == (C("65000:1"), C("1:2"))
    replaced = run(Actions(communities=CommunityAction(replace=(C("9:9"),))), route)
    assert replaced.attributes.communities == (C("9:9"),)
    cleared = run(Actions(communities=CommunityAction(replace=())), route)
    assert AttrType.COMMUNITIES not in cleared.attributes  # empty: the attribute goes
    both = run(
        Actions(communities=CommunityAction(remove="drop", add=(C("7:7"),))),
        route,
        community_sets=sets,
    )
    assert both.attributes.communities == (C("65000:1"), C("1:2"), C("7:7"))


def test_large_communities() -> None:
    route = ctx(attrs=attributes(large=((65000, 1, 1), (65000, 2, 9))))
    sets = (LargeCommunitySet(name="two", members=("^65000:2:",)),)
    added = run(Actions(large_communities=LargeCommunityAction(add=((1, 2, 3),))), route)
    assert added.attributes.large_communities == ((65000, 1, 1), (65000, 2, 9), (1, 2, 3))
    removed = run(
        Actions(large_communities=LargeCommunityAction(remove="two")),
        route,
        large_community_sets=sets,
    )
    assert removed.attributes.large_communities == ((65000, 1, 1),)
    replaced = run(Actions(large_communities=LargeCommunityAction(replace=((4, 5, 6),))), route)
    assert replaced.attributes.large_communities == ((4, 5, 6),)


def test_prepend_self_last_as_and_number() -> None:
    route = ctx(attrs=attributes(path=(65001, 65002)))
    me = run(Actions(as_path_prepend=Prepend(asn="self", repeat=2)), route)
    assert me.attributes.as_path == ((SEQ, (LOCAL_AS, LOCAL_AS, 65001, 65002)),)
    last = run(Actions(as_path_prepend=Prepend(asn="last-as", repeat=3)), route)
    assert last.attributes.as_path == ((SEQ, (65001, 65001, 65001, 65001, 65002)),)
    number = run(Actions(as_path_prepend=Prepend(asn=4200000000)), route)
    assert number.attributes.as_path == ((SEQ, (4200000000, 65001, 65002)),)


def test_prepend_last_as_on_an_empty_path_does_nothing() -> None:
    route = ctx(attrs=attributes(path=()))
    assert (
        run(Actions(as_path_prepend=Prepend(asn="last-as")), route).attributes is route.attributes
    )
    mine = run(Actions(as_path_prepend=Prepend(asn="self")), route)
    assert mine.attributes.as_path == ((SEQ, (LOCAL_AS,)),)


def test_prepend_on_a_two_octet_path_gives_four_octet_attributes() -> None:
    two = ((SEQ, (65001, AS_TRANS)),)
    four = ((SEQ, (4200000000,)),)
    values = {
        AttrType.ORIGIN: 0,
        AttrType.AS_PATH: two,
        AttrType.NEXT_HOP: "192.0.2.1",
        AttrType.AS4_PATH: four,
    }
    old = PathAttributes.build(values, asn4=False)
    assert old.as_path == ((SEQ, (65001, 4200000000)),)
    result = run(Actions(as_path_prepend=Prepend(asn="self")), ctx(attrs=old))
    assert result.attributes.asn4
    assert result.attributes.as_path == ((SEQ, (LOCAL_AS, 65001, 4200000000)),)
    assert AttrType.AS4_PATH not in result.attributes
    # other edits leave the 2-octet form alone
    kept = run(Actions(local_pref=5), ctx(attrs=old))
    assert not kept.attributes.asn4 and kept.attributes.as_path == old.as_path


def test_unknown_attributes_survive_an_edit() -> None:
    base = attributes()
    unknown = encode_attribute(0xC0, 99, b"\x01\x02")
    route = ctx(attrs=PathAttributes(base.raw + unknown))
    result = run(Actions(local_pref=7), route)
    assert unknown in result.attributes.raw and result.attributes.local_pref == 7


def test_several_actions_in_one_statement() -> None:
    action = Actions(
        local_pref=300,
        med=MedAction.parse("+1"),
        communities=CommunityAction(add=(C("65000:9"),)),
        as_path_prepend=Prepend(asn="self"),
        next_hop="198.51.100.1",
    )
    result = run(action, ctx(attrs=attributes(med=1)))
    a = result.attributes
    assert (a.local_pref, a.med, a.communities) == (300, 2, (C("65000:9"),))
    assert a.as_path == ((SEQ, (LOCAL_AS, 65001)),) and result.next_hop == "198.51.100.1"
