"""ADD-PATH send (RFC 7911): which paths of a prefix go out, in which order, under which ids.

Ranking ("best-N", as GoBGP's send-max and FRR's best-selected do it): the best path first,
then the best of the remaining candidates, and so on, each pick a full run of the decision
process (RFC 4271 §9.1.2) over what is left. Step 4 (MED) compares only within one
neighbour AS, so the paths have no total order to sort by; picking one at a time keeps
every pick exactly what the decision process would choose if the better ones were gone.
It is lazy: a group that sends N paths runs the decision process N times (or until N of
them passed its export rules), not once per candidate.

Path identifiers (RFC 7911 §3: "the Path Identifier ... identifies a path, not a rank"):
a path is named by where it came from, (peer address, the path id that peer gave it; 0
without ADD-PATH in). A path keeps its id while it is advertised, whatever its rank, so a
change to one path replaces or withdraws that id alone. A new path takes the lowest id
the prefix did not use before this change: an id freed by a withdrawal is not given to
another path in the same change, so the receiver sees a withdrawal, not a replacement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from pybgp.rib.best_path import BestPathConfig, select
from pybgp.rib.route import Route
from pybgp.wire.constants import Family
from pybgp.wire.nlri import Nlri

PathKey = tuple[str, int]  # (peer address, the path id it sent; 0 without ADD-PATH)
Ranked = Iterator[tuple[PathKey, Route]]
# (family, prefix) -> the prefix's eligible paths, best first (the Loc-RIB's `ranked`).
PathSource = Callable[[Family, Nlri], Ranked]
MAX_PATHS = 64  # the most paths per prefix pybgpd sends (neighbour key add_path_send)


def ranked(paths: Iterable[tuple[PathKey, Route]], config: BestPathConfig) -> Ranked:
    """The paths in decision-process order, best first; unreachable ones (§9.1.2.1) left
    out. Lazy: stop iterating when enough paths were taken."""
    remaining = list(paths)
    while remaining:
        best, _ = select([route for _, route in remaining], config)
        if best is None:
            return
        index = next(i for i, (_, route) in enumerate(remaining) if route is best)
        yield remaining.pop(index)


def assign_ids(old: Mapping[PathKey, int], paths: Iterable[PathKey]) -> dict[PathKey, int]:
    """Path id per path to advertise now: the one it had in `old`, else the lowest id not
    in `old` (so an id withdrawn by this change is not reused by it)."""
    new: dict[PathKey, int] = {}
    fresh: list[PathKey] = []
    for path in paths:
        number = old.get(path)
        if number is None:
            fresh.append(path)
        else:
            new[path] = number
    if fresh:
        taken = set(old.values())
        number = 0
        for path in fresh:
            number += 1
            while number in taken:
                number += 1
            new[path] = number
    return new


def wire_key(path_id: int, prefix: Nlri) -> Nlri:
    """The NLRI as sent with ADD-PATH: the 4-octet path identifier, then the prefix (§3)."""
    return path_id.to_bytes(4, "big") + prefix
