"""AS-path sets: regular expressions over "65001 65002 {65003,65004}" with FRR's `_`."""

from __future__ import annotations

import pytest

from pybgp.policy import AsPathSet, Conditions, MatchSet
from pybgp.policy.sets import as_path_regex
from pybgp.wire.constants import SegmentType

from .helpers import attributes, ctx, matches

SEQ, SET = SegmentType.AS_SEQUENCE, SegmentType.AS_SET
CONFED = SegmentType.AS_CONFED_SEQUENCE
PATHS = {
    "plain": ((SEQ, (65001, 65002, 65003)),),
    "empty": (),
    "with-set": ((SEQ, (65001, 65002)), (SET, (65003, 65004))),
    "confed": ((CONFED, (64512,)), (SEQ, (65001, 65002))),
    "long-asn": ((SEQ, (650011, 4200000000)),),
}


def path_matches(pattern: str, path: str, option: str = "any") -> bool:
    route = ctx(attrs=attributes(segments=PATHS[path]))
    conditions = Conditions(as_path_set=MatchSet(set_name="a", option=option))
    return matches(conditions, route, as_path_sets=(AsPathSet(name="a", members=(pattern,)),))


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("^65001_", "plain", True),  # from AS 65001 directly
        ("^65002_", "plain", False),
        ("^65001_", "long-asn", False),  # 650011 is not 65001
        ("_65002$", "plain", False),
        ("_65003$", "plain", True),  # originated by 65003
        ("_65002_", "plain", True),  # through 65002
        ("_65003_", "plain", True),  # `_` is also the end
        ("_65001_", "plain", True),  # ... and the start
        ("_6500_", "plain", False),
        ("^$", "empty", True),  # our own routes
        ("^$", "plain", False),
        ("^65001 65002 65003$", "plain", True),
        ("^65001_65002_", "plain", True),
        ("_65003_", "with-set", True),  # "{65003,65004}": braces and comma separate
        ("_65004_", "with-set", True),
        ("_65004$", "with-set", False),  # "}" is the end of the text
        ("_65004}$", "with-set", True),
        ("^\\(64512\\)_65001_", "confed", True),
        ("^64512_", "confed", False),  # "(" comes first
        ("_64512_", "confed", True),
        (".*", "empty", True),
        ("^[0-9]+_4200000000$", "long-asn", True),
        ("[_]", "plain", False),  # `_` inside brackets is a plain underscore
    ],
)
def test_as_path_regex(pattern: str, path: str, expected: bool) -> None:
    assert path_matches(pattern, path) is expected


def test_match_options_over_several_patterns() -> None:
    both = AsPathSet(name="a", members=("^65001_", "_65003$"))
    one = AsPathSet(name="a", members=("^65001_", "_65009$"))
    route = ctx(attrs=attributes(segments=PATHS["plain"]))
    for aset, option, expected in [
        (both, "any", True),
        (both, "all", True),
        (both, "invert", False),
        (one, "any", True),
        (one, "all", False),
        (one, "invert", False),
        (AsPathSet(name="a", members=("_65009_",)), "invert", True),
        (AsPathSet(name="a"), "any", False),  # empty set: nothing
        (AsPathSet(name="a"), "invert", True),
    ]:
        conditions = Conditions(as_path_set=MatchSet(set_name="a", option=option))
        assert matches(conditions, route, as_path_sets=(aset,)) is expected, (aset, option)


def test_separator_translation() -> None:
    assert as_path_regex("_1_").pattern == "(?:^|[ ,{}()\\[\\]]|$)1(?:^|[ ,{}()\\[\\]]|$)"
    assert as_path_regex("\\_").pattern == "\\_"
    with pytest.raises(ValueError, match="not a valid regular expression"):
        AsPathSet(name="a", members=("^(65001",))
