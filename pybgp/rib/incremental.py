"""Deciding a prefix's best path from the current best and the one path that changed,
without gathering every candidate: the ingest fast path of the Loc-RIB (RFC 4271 §9.1.2).

With many peers sending the same prefixes, re-running the whole decision process for every
arriving path costs a pass over all candidates; comparing the new path with the current best
decides almost always. Where that is not sound (the best path itself changed; MED, step 4,
compares only within one neighbour AS, so it is no total order) the answer is RECOMPUTE.
"""

from __future__ import annotations

import enum
from typing import Literal

from pybgp.rib.best_path import BestPathConfig, keys
from pybgp.rib.route import Keys, Route


class Undecided(enum.Enum):
    RECOMPUTE = "recompute"


RECOMPUTE = Undecided.RECOMPUTE


def replace_one(
    best: Route | None,
    before: Route | None,
    after: Route | None,
    config: BestPathConfig,
    after_keys: Keys | None = None,
    alone: bool = False,
) -> Route | Literal[Undecided.RECOMPUTE] | None:
    """The new best path when one peer's path for a prefix went from `before` to `after`
    (either None), worked out from the current `best` alone; RECOMPUTE when that cannot be
    known without all candidates. Only for configurations without hooks and ECMP.
    `after_keys`: `keys(after, config)` when the caller has it (one per UPDATE). `alone`:
    no other candidate can have `after`'s neighbour AS (every source is an eBGP peer whose
    paths start with its own AS, and no other has that AS), so MED cannot put it out.

    Sound because `best` stays a candidate: a path that was not in the top tier of steps
    1-3 never mattered; a path joining the tier matters only if it beats `best` or shares
    its neighbour AS (MED, step 4, compares only within one AS, so any doubt recomputes)."""
    if best is None:
        return after if before is None else RECOMPUTE  # no best: there were no candidates
    if best is before or (before or after or best).peer.address == best.peer.address:
        return RECOMPUTE  # the best path itself changed
    best_keys = best.keys
    if best_keys is None or best_keys.config is not config:
        best_keys = keys(best, config)
    if before is not None:
        gone = keys(before, config)
        if gone.rank == best_keys.rank and not config.always_compare_med:
            return RECOMPUTE  # it may have put a path of its AS out on MED
    if after is None:
        return best
    new = after_keys or keys(after, config)
    if new.rank != best_keys.rank:
        return after if new.rank < best_keys.rank else best
    if config.always_compare_med:  # one total order
        return after if (new.med, new.tail) < (best_keys.med, best_keys.tail) else best
    if new.neighbour_as == best_keys.neighbour_as:
        return RECOMPUTE
    if new.tail < best_keys.tail:
        return after if alone else RECOMPUTE  # else a path of its AS may beat it on MED
    return best
