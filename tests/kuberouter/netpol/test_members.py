"""Members behaves as a frozenset of strings whatever its history; Tally counts sources."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kuberouter.netpol.members import Members, Tally

entries = st.frozensets(st.sampled_from([f"10.0.{n // 256}.{n % 256}" for n in range(600)]))


@given(start=entries, added=entries, removed=entries)
def test_a_changed_version_equals_the_set_built_from_scratch(
    start: frozenset[str], added: frozenset[str], removed: frozenset[str]
) -> None:
    before = Members.of(start)
    after = before.changed(added, removed - added)
    want = (start - (removed - added)) | added
    assert after == Members.of(want) and set(after) == want and len(after) == len(want)
    assert hash(after) == hash(Members.of(want))
    assert all(entry in after for entry in want) and "10.9.9.9" not in after
    assert after.diff(before) == (sorted(want - start), sorted(start - want))


def test_an_unchanged_shard_is_shared_not_copied() -> None:
    big = Members.of(f"10.1.{n // 256}.{n % 256}" for n in range(5000))
    one_more = big.changed(["10.2.0.1"])
    shared = sum(a is b for a, b in zip(big._shards, one_more._shards, strict=True))
    assert shared == len(big._shards) - 1
    assert one_more.diff(big) == (["10.2.0.1"], [])
    assert big.changed() is big


def test_members_compare_with_plain_sets() -> None:
    assert Members.of(["a", "b"]) == {"a", "b"} and Members.of(["a"]) != {"a", "b"}


def test_a_tally_keeps_an_entry_while_any_source_has_it() -> None:
    tally = Tally()
    tally.add(["10.0.0.1", "10.0.0.2"])
    tally.add(["10.0.0.1"])  # a second pod with the same address
    assert tally.members() == {"10.0.0.1", "10.0.0.2"} and not tally.changed
    tally.remove(["10.0.0.1"])
    assert not tally.changed  # still one source
    tally.remove(["10.0.0.1", "10.0.0.2"])
    tally.add(["10.0.0.2"])  # gone and back within one version: no change
    assert tally.changed and tally.members() == {"10.0.0.2"}
