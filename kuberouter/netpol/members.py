"""The members of an ipset as a value whose small changes cost what changed.

`Members` is an immutable set of strings kept in 64 shards picked by the string's hash.
A version that differs from the one before by a few members shares every other shard
with it, so making it (`changed`), diffing two versions (`diff`) and comparing them cost
the shards that differ, not the size of the set: the shared named-port set of a
50,000-pod cluster changes by one member when one pod comes or goes, and the compiler
and the back ends then do about 1/64 of the set's work, not all of it.

`Tally` is the compiler's working copy of one set: it counts the sources of each entry
(two pods may briefly share an address) and hands out a new `Members` version when
entries appeared or disappeared since the last one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Set

_SHARDS = 64  # a power of two: a shard is `hash & (_SHARDS - 1)`
_MASK = _SHARDS - 1
_NONE: frozenset[str] = frozenset()


class Members(Set[str]):
    __slots__ = ("_shards", "_size")

    def __init__(self, shards: tuple[frozenset[str], ...], size: int) -> None:
        """Use `Members.of`; `shards` must be laid out by hash."""
        self._shards = shards
        self._size = size

    @classmethod
    def of(cls, entries: Iterable[str] = ()) -> Members:
        buckets: list[list[str]] = [[] for _ in range(_SHARDS)]
        for entry in entries:
            buckets[hash(entry) & _MASK].append(entry)
        shards = tuple(frozenset(bucket) if bucket else _NONE for bucket in buckets)
        return cls(shards, sum(map(len, shards)))

    def changed(self, added: Iterable[str] = (), removed: Iterable[str] = ()) -> Members:
        """This set with `added` put in and `removed` taken out; shards untouched by
        either are shared with this version."""
        touched: dict[int, tuple[list[str], list[str]]] = {}
        for entry in added:
            touched.setdefault(hash(entry) & _MASK, ([], []))[0].append(entry)
        for entry in removed:
            touched.setdefault(hash(entry) & _MASK, ([], []))[1].append(entry)
        if not touched:
            return self
        shards = list(self._shards)
        for number, (plus, minus) in touched.items():
            shard = shards[number].difference(minus).union(plus)
            shards[number] = shard if shard else _NONE
        return Members(tuple(shards), sum(map(len, shards)))

    def diff(self, old: Members) -> tuple[list[str], list[str]]:
        """(entries added, entries removed) going from `old` to this set, sorted."""
        added: list[str] = []
        removed: list[str] = []
        for new_shard, old_shard in zip(self._shards, old._shards, strict=True):
            if new_shard is not old_shard:
                added += new_shard - old_shard
                removed += old_shard - new_shard
        return sorted(added), sorted(removed)

    def __contains__(self, entry: object) -> bool:
        return isinstance(entry, str) and entry in self._shards[hash(entry) & _MASK]

    def __iter__(self) -> Iterator[str]:
        for shard in self._shards:
            yield from shard

    def __len__(self) -> int:
        return self._size

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Members):  # shard by shard, shared ones by identity
            return self._size == other._size and self._shards == other._shards
        return Set.__eq__(self, other)

    def __hash__(self) -> int:
        return hash(self._shards)

    def __repr__(self) -> str:
        return f"Members({sorted(self)!r})"


class Tally:
    """A set under construction: how many sources put each entry in, and the entries
    that appeared or disappeared since `members()` last made a version."""

    __slots__ = ("_added", "_counts", "_members", "_removed")

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._members = Members.of()
        self._added: set[str] = set()
        self._removed: set[str] = set()

    def add(self, entries: Iterable[str]) -> None:
        for entry in entries:
            count = self._counts.get(entry, 0)
            self._counts[entry] = count + 1
            if count == 0:
                if entry in self._removed:
                    self._removed.discard(entry)
                else:
                    self._added.add(entry)

    def remove(self, entries: Iterable[str]) -> None:
        for entry in entries:
            count = self._counts[entry] - 1
            if count:
                self._counts[entry] = count
                continue
            del self._counts[entry]
            if entry in self._added:
                self._added.discard(entry)
            else:
                self._removed.add(entry)

    @property
    def changed(self) -> bool:
        """Entries appeared or disappeared since the last `members()`."""
        return bool(self._added or self._removed)

    def members(self) -> Members:
        if self._added or self._removed:
            self._members = self._members.changed(self._added, self._removed)
            self._added, self._removed = set(), set()
        return self._members
