"""Equal values, one object: the views of a big cluster repeat themselves.

Fifty thousand pods of a few hundred deployments carry a few hundred distinct label
maps and port lists, twenty thousand policies stamped out per namespace a handful of
distinct selectors and rules, and their namespaces, node names and protocols are a
small vocabulary. The model constructors pass what they build through these helpers,
so each distinct value is held once, however many objects use it (the agent's memory
per pod is then mostly the pod's own name and address), and the garbage collector has
far fewer objects to walk.

- `shared(value)`: a hashable value that can be weakly referenced (Labels, the frozen
  attrs views). The table holds both its keys and its values weakly, so a value no
  object uses any more leaves it: churn cannot make it grow.
- `shared_tuple(value)`: tuples cannot be weakly referenced, so they go through a
  bounded cache of the most recently seen ones; past that an equal tuple is simply not
  shared.
- `text(value)`: strings, through `sys.intern` (an interned string no one holds is
  freed).

Model parsing runs in the watch layer's threads: the tables tolerate that (a race can
at worst leave two equal objects unshared).
"""

from __future__ import annotations

import functools
import sys
import weakref
from typing import Any, TypeVar

T = TypeVar("T")
TupleT = TypeVar("TupleT", bound=tuple[Any, ...])

_TABLE: weakref.WeakKeyDictionary[Any, weakref.ref[Any]] = weakref.WeakKeyDictionary()

text = sys.intern


def shared(value: T) -> T:
    """The one object equal to `value` that is in use (`value` itself if none is)."""
    found = _TABLE.get(value)
    existing = found() if found is not None else None
    if existing is None:
        _TABLE[value] = weakref.ref(value)
        return value
    return existing  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=8192)
def _cached(value: tuple[Any, ...]) -> tuple[Any, ...]:
    return value


def shared_tuple(value: TupleT) -> TupleT:
    """An equal tuple seen recently (the empty one always), or `value`."""
    return _cached(value) if value else ()  # type: ignore[return-value]
