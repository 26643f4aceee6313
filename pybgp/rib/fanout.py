"""One flush of an update group, as what each member is to be sent.

The UPDATEs for every member, or every member but one (split horizon), are joined once into
one `bytes`. A member gets that object itself, or memoryview slices of it around the UPDATEs
it must not get, then the few meant for it alone. Nothing is copied per member: sending a
flush of a thousand UPDATEs to a thousand members costs a thousand short lists, not a
million appends nor a thousand copies.
"""

from __future__ import annotations

from collections.abc import Sequence

from pybgp.rib.update_group import Outgoing

Chunk = bytes | memoryview


def fan_out(outgoing: Sequence[Outgoing]) -> dict[str, list[Chunk]]:
    """Member address -> the pieces of bytes it is to be sent, in order; members that get
    nothing are left out."""
    if not outgoing:
        return {}
    common: list[bytes] = []
    skipped: dict[str, list[int]] = {}  # member -> indices in `common` it does not get
    alone: dict[str, list[bytes]] = {}
    for message, (skip, only), _members in outgoing:
        if only is not None:
            alone.setdefault(only, []).append(message)
            continue
        if skip is not None:
            skipped.setdefault(skip, []).append(len(common))
        common.append(message)
    blob = b"".join(common)
    starts = [0] * len(common)
    offset = 0
    for index, message in enumerate(common):
        starts[index] = offset
        offset += len(message)
    view = memoryview(blob)
    out: dict[str, list[Chunk]] = {}
    for address in outgoing[0].members:
        gaps = skipped.get(address)
        chunks: list[Chunk] = [blob] if gaps is None and blob else []
        if gaps is not None:
            start = 0
            for index in gaps:
                if starts[index] > start:
                    chunks.append(view[start : starts[index]])
                start = starts[index] + len(common[index])
            if start < len(blob):
                chunks.append(view[start:])
        chunks += alone.get(address, ())
        if chunks:
            out[address] = chunks
    return out
