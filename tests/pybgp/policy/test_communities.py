"""Community, large community and extended community sets: exact, named, regex."""

from __future__ import annotations

import pytest

from pybgp.policy import CommunitySet, Conditions, ExtCommunitySet, LargeCommunitySet, MatchSet
from pybgp.wire.communities import community_from_str, extended_community_from_str

from .helpers import attributes, ctx, matches

C = community_from_str


def community_matches(
    members: tuple[str, ...], values: tuple[int, ...], option: str = "any"
) -> bool:
    route = ctx(attrs=attributes(communities=values))
    conditions = Conditions(community_set=MatchSet(set_name="c", option=option))
    return matches(conditions, route, community_sets=(CommunitySet(name="c", members=members),))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("no-export", 0xFFFFFF01),
        ("NO_EXPORT", 0xFFFFFF01),
        ("no-advertise", 0xFFFFFF02),
        ("no-export-subconfed", 0xFFFFFF03),
        ("local-AS", 0xFFFFFF03),
        ("blackhole", 0xFFFF029A),
        ("graceful-shutdown", 0xFFFF0000),
        ("no-peer", 0xFFFFFF04),
    ],
)
def test_well_known_names(name: str, value: int) -> None:
    assert community_matches((name,), (C("65000:1"), value))
    assert not community_matches((name,), (C("65000:1"),))


def test_exact_and_regex_members() -> None:
    assert community_matches(("65000:100",), (C("65000:100"),))
    assert not community_matches(("65000:100",), (C("65000:10"),))  # exact, not a prefix
    assert community_matches(("^65000:1[0-9]{2}$",), (C("65000:150"),))
    assert not community_matches(("^65000:1[0-9]{2}$",), (C("65000:15"),))
    assert community_matches((":666$",), (C("64512:666"),))  # searched, not anchored
    assert not community_matches(("65000:100",), ())


def test_community_match_options() -> None:
    members = ("65000:1", "^65000:2")
    have_both = (C("65000:1"), C("65000:20"), C("1:1"))
    have_one = (C("65000:1"), C("1:1"))
    assert community_matches(members, have_both, "all")
    assert not community_matches(members, have_one, "all")
    assert community_matches(members, have_one, "any")
    assert not community_matches(members, have_one, "invert")
    assert community_matches(members, (C("1:1"),), "invert")
    assert community_matches(members, (), "invert")
    assert community_matches((), have_one, "all")  # vacuous
    assert not community_matches((), have_one, "any")


def test_bad_members() -> None:
    with pytest.raises(ValueError, match="invalid community"):
        CommunitySet(name="c", members=("65000:70000",))
    with pytest.raises(ValueError, match="regular expression"):
        CommunitySet(name="c", members=("65000:[",))
    with pytest.raises(ValueError, match="large community"):
        LargeCommunitySet(name="l", members=("1:2:4294967296",))


def large_matches(
    members: tuple[str, ...], values: tuple[tuple[int, int, int], ...], option: str = "any"
) -> bool:
    route = ctx(attrs=attributes(large=values))
    conditions = Conditions(large_community_set=MatchSet(set_name="l", option=option))
    sets = (LargeCommunitySet(name="l", members=members),)
    return matches(conditions, route, large_community_sets=sets)


def test_large_communities() -> None:
    assert large_matches(("65000:1:1",), ((65000, 1, 1),))
    assert not large_matches(("65000:1:1",), ((65000, 1, 11),))
    assert large_matches(("^65000:2:",), ((65000, 2, 7),))
    assert not large_matches(("^65000:2:",), ((65000, 22, 7),))
    assert large_matches(("65000:1:1", "^4200000000:"), ((65000, 1, 1), (4200000000, 0, 0)), "all")
    assert not large_matches(("65000:1:1", "^4200000000:"), ((65000, 1, 1),), "all")
    assert large_matches(("65000:1:1",), ((1, 1, 1),), "invert")


def ext_matches(members: tuple[str, ...], values: tuple[str, ...], option: str = "any") -> bool:
    route = ctx(attrs=attributes(ext=tuple(extended_community_from_str(v) for v in values)))
    conditions = Conditions(ext_community_set=MatchSet(set_name="e", option=option))
    return matches(
        conditions, route, ext_community_sets=(ExtCommunitySet(name="e", members=members),)
    )


def test_extended_communities() -> None:
    assert ext_matches(("rt:65000:1",), ("rt:65000:1",))
    assert ext_matches(("RT:65000:1",), ("rt:65000:1",))  # GoBGP spelling
    assert not ext_matches(("rt:65000:1",), ("soo:65000:1",))
    assert ext_matches(("^soo:",), ("soo:192.0.2.1:7",))
    assert ext_matches(("^RT:65000:",), ("rt:65000:9",))  # regexes ignore case
    assert ext_matches(("rt4:4200000000:1",), ("rt4:4200000000:1",))
    assert ext_matches(("rt:65000:1", "^soo:"), ("rt:65000:1",), "all") is False
    assert ext_matches(("rt:65000:1",), ("rt:65000:2",), "invert")
