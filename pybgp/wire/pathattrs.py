"""A route's path attributes as one immutable, interned value.

Routes that share attributes share one `PathAttributes`: the RIB stores a reference, not a
copy, and the UPDATE decoder judges a given attribute blob once. The value is the wire form
of every attribute except MP_REACH/MP_UNREACH (which carry NLRI, not path attributes),
with the decoded values beside it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any, cast

from pybgp.wire import aspath
from pybgp.wire.attributes import SPECS, encode_attribute
from pybgp.wire.constants import AS_TRANS, AttrType, Origin


class PathAttributes:
    """Immutable; equal when the wire form and AS number width are equal."""

    __slots__ = ("_hash", "_values", "asn4", "present", "raw")

    raw: bytes
    asn4: bool  # AS numbers in AS_PATH/AGGREGATOR are 4 octets wide
    present: int  # bit (1 << type code) set for each attribute present

    def __init__(self, raw: bytes, asn4: bool = True, present: int | None = None) -> None:
        self.raw = raw
        self.asn4 = asn4
        self.present = present if present is not None else _present(raw)
        self._hash = hash((raw, asn4))
        self._values: dict[int, Any] | None = None

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PathAttributes):
            return NotImplemented
        return self is other or (self.raw == other.raw and self.asn4 == other.asn4)

    def __repr__(self) -> str:
        return f"PathAttributes({self.values!r}, asn4={self.asn4})"

    def __contains__(self, code: int) -> bool:
        return bool(self.present >> code & 1)

    @property
    def values(self) -> Mapping[int, Any]:
        """Type code -> decoded value (bytes for attributes we do not know), decoded on
        first use: the decoder has already judged them well formed."""
        if self._values is None:
            width = 4 if self.asn4 else 2
            values: dict[int, Any] = {}
            for _flags, code, value in iter_tlvs(self.raw):
                spec = SPECS.get(code)
                values[code] = spec.decode(value, width) if spec is not None else value
            self._values = values
        return self._values

    @classmethod
    def build(cls, values: Mapping[int, Any], asn4: bool = True) -> PathAttributes:
        """Encode decoded values (type code -> value, in the order given) with canonical flags."""
        width = 4 if asn4 else 2
        parts = []
        for code, value in values.items():
            spec = SPECS.get(code)
            if spec is None:
                raise ValueError(f"no encoder for attribute type {code}")
            parts.append(encode_attribute(spec.flags, code, spec.encode(value, width)))
        return intern(cls(b"".join(parts), asn4))

    def tlvs(self) -> Iterator[tuple[int, int, bytes]]:
        """(flags, type code, value) of each attribute, in wire order."""
        return iter_tlvs(self.raw)

    # What best-path selection and policy read (RFC 4271 §9.1.2.2).
    @property
    def origin(self) -> int:
        return int(self.values.get(AttrType.ORIGIN, Origin.INCOMPLETE))

    @property
    def as_path(self) -> aspath.AsPath:
        """The true AS path; from a 2-octet peer, AS_PATH merged with AS4_PATH (RFC 6793)."""
        path: aspath.AsPath = self.values.get(AttrType.AS_PATH, ())
        if self.asn4:
            return path
        aggregator = self.values.get(AttrType.AGGREGATOR)
        if aggregator is not None and aggregator[0] != AS_TRANS and AttrType.AS4_AGGREGATOR in self:
            return path  # RFC 6793 §4.2.3: AS4_AGGREGATOR and AS4_PATH are ignored
        return aspath.merge_as4_path(path, self.values.get(AttrType.AS4_PATH))

    @property
    def next_hop(self) -> str | None:
        return self.values.get(AttrType.NEXT_HOP)

    @property
    def med(self) -> int | None:
        return self.values.get(AttrType.MULTI_EXIT_DISC)

    @property
    def local_pref(self) -> int | None:
        return self.values.get(AttrType.LOCAL_PREF)

    @property
    def communities(self) -> tuple[int, ...]:
        return cast("tuple[int, ...]", self.values.get(AttrType.COMMUNITIES, ()))

    @property
    def large_communities(self) -> tuple[tuple[int, int, int], ...]:
        return cast(
            "tuple[tuple[int, int, int], ...]", self.values.get(AttrType.LARGE_COMMUNITIES, ())
        )

    @property
    def extended_communities(self) -> tuple[bytes, ...]:
        return cast("tuple[bytes, ...]", self.values.get(AttrType.EXTENDED_COMMUNITIES, ()))

    @property
    def originator_id(self) -> str | None:
        return self.values.get(AttrType.ORIGINATOR_ID)

    @property
    def cluster_list(self) -> tuple[str, ...]:
        return cast("tuple[str, ...]", self.values.get(AttrType.CLUSTER_LIST, ()))


def _present(raw: bytes) -> int:
    mask = 0
    for _flags, code, _value in iter_tlvs(raw):
        mask |= 1 << code
    return mask


def iter_tlvs(raw: bytes) -> Iterator[tuple[int, int, bytes]]:
    """Walk well-formed attribute TLVs (already validated by the decoder)."""
    pos, size = 0, len(raw)
    while pos < size:
        flags, code = raw[pos], raw[pos + 1]
        if flags & 0x10:
            length, start = int.from_bytes(raw[pos + 2 : pos + 4], "big"), pos + 4
        else:
            length, start = raw[pos + 2], pos + 3
        yield flags, code, raw[start : start + length]
        pos = start + length


class _Interner:
    """wire form -> the shared PathAttributes with it.

    Strong references, swept when the table has doubled since the last sweep (amortised
    O(1)): an entry whose only holder is the table is dropped. No weak reference per entry,
    because on the ingest path every extra object tracked by the garbage collector costs.
    """

    def __init__(self) -> None:
        self._table: dict[bytes, PathAttributes] = {}
        self._sweep_at = 1024

    def get(self, raw: bytes) -> PathAttributes | None:
        return self._table.get(raw)

    def put(self, attrs: PathAttributes) -> None:
        self._table[attrs.raw] = attrs
        if len(self._table) >= self._sweep_at:
            self._sweep()

    def _sweep(self) -> None:
        table = self._table
        # Two references mean unused: the table's and getrefcount's argument.
        for raw in [raw for raw in table if sys.getrefcount(table[raw]) == 2]:
            del table[raw]
        self._sweep_at = max(1024, 2 * len(table))

    def __len__(self) -> int:
        return len(self._table)


# Decoded attributes are scoped by the rules they were judged under
# (CodecContext.validation_key), so a hit also means "already judged clean".
_SCOPES: dict[object, _Interner] = {}


def interner(scope: object) -> _Interner:
    found = _SCOPES.get(scope)
    if found is None:
        found = _SCOPES[scope] = _Interner()
    return found


def intern(attrs: PathAttributes, scope: object = None) -> PathAttributes:
    """The one shared instance equal to `attrs` within `scope`."""
    table = interner(scope if scope is not None else attrs.asn4)
    found = table.get(attrs.raw)
    if found is None:
        table.put(attrs)
        return attrs
    return found
