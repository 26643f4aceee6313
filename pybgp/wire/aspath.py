"""AS_PATH and AS4_PATH (RFC 4271 §4.3, §9.1.2.2; RFC 5065 §3; RFC 6793 §4.2)."""

from __future__ import annotations

import struct

from pybgp.wire.constants import AS_TRANS, SegmentType

Segment = tuple[int, tuple[int, ...]]  # (segment type, AS numbers)
AsPath = tuple[Segment, ...]

_SEGMENT_TYPES = frozenset(SegmentType)
_UNPACK = {
    width: [struct.Struct(f">{n}{'I' if width == 4 else 'H'}").unpack_from for n in range(256)]
    for width in (2, 4)
}
_SEGMENT_NAMES = {
    SegmentType.AS_SET: "set",
    SegmentType.AS_SEQUENCE: "sequence",
    SegmentType.AS_CONFED_SEQUENCE: "confed-sequence",
    SegmentType.AS_CONFED_SET: "confed-set",
}
_SEGMENT_BY_NAME = {name: code for code, name in _SEGMENT_NAMES.items()}


class MalformedAttribute(ValueError):
    """An attribute value that does not parse; the message says why."""


def decode_as_path(value: bytes, width: int) -> AsPath:
    """Segments of an AS_PATH whose AS numbers are `width` (2 or 4) octets."""
    segments = []
    pos, size = 0, len(value)
    unpack = _UNPACK[width]
    while pos < size:
        if size - pos < 2:
            raise MalformedAttribute("AS_PATH segment header truncated")
        seg_type, count = value[pos], value[pos + 1]
        if seg_type not in _SEGMENT_TYPES:
            raise MalformedAttribute(f"unknown AS_PATH segment type {seg_type}")
        if count == 0:
            raise MalformedAttribute("AS_PATH segment of length zero")
        end = pos + 2 + count * width
        if end > size:
            raise MalformedAttribute("AS_PATH segment overruns the attribute")
        segments.append((seg_type, unpack[count](value, pos + 2)))
        pos = end
    return tuple(segments)


def encode_as_path(path: AsPath, width: int) -> bytes:
    code = "I" if width == 4 else "H"
    out = bytearray()
    for seg_type, asns in path:
        # A segment holds at most 255 AS numbers; longer runs split into several (§4.3).
        for start in range(0, len(asns), 255):
            chunk = asns[start : start + 255]
            out += bytes((seg_type, len(chunk))) + struct.pack(f">{len(chunk)}{code}", *chunk)
    return bytes(out)


def path_length(path: AsPath) -> int:
    """Length for best-path selection: an AS_SET counts 1, confederation segments 0 (§9.1.2.2 a)."""
    total = 0
    for seg_type, asns in path:
        if seg_type == SegmentType.AS_SEQUENCE:
            total += len(asns)
        elif seg_type == SegmentType.AS_SET:
            total += 1
    return total


def first_as(path: AsPath) -> int | None:
    """The neighbouring AS: the first AS of a leading AS_SEQUENCE."""
    if path and path[0][0] == SegmentType.AS_SEQUENCE:
        return path[0][1][0]
    return None


def has_confed_segments(path: AsPath) -> bool:
    return any(seg_type >= SegmentType.AS_CONFED_SEQUENCE for seg_type, _ in path)


def contains_as(path: AsPath, asn: int) -> bool:
    return any(asn in asns for _, asns in path)


def prepend(path: AsPath, asn: int, times: int = 1) -> AsPath:
    """Put `asn` in front `times` times, extending a leading AS_SEQUENCE (RFC 4271 §5.1.2)."""
    if path and path[0][0] == SegmentType.AS_SEQUENCE:
        return ((SegmentType.AS_SEQUENCE, (asn,) * times + path[0][1]), *path[1:])
    return ((SegmentType.AS_SEQUENCE, (asn,) * times), *path)


def merge_as4_path(as_path: AsPath, as4_path: AsPath | None) -> AsPath:
    """Rebuild the true path from a 2-octet peer's AS_PATH and AS4_PATH (RFC 6793 §4.2.3).

    When AS4_PATH is longer than AS_PATH it is ignored; otherwise the leading AS numbers of
    AS_PATH that AS4_PATH does not cover are kept in front of AS4_PATH.
    """
    if as4_path is None:
        return as_path
    excess = path_length(as_path) - path_length(as4_path)
    if excess < 0:
        return as_path
    head: list[Segment] = []
    for seg_type, asns in as_path:
        if seg_type >= SegmentType.AS_CONFED_SEQUENCE:
            head.append((seg_type, asns))  # confederation segments count 0: always kept
        elif excess <= 0:
            break
        elif seg_type == SegmentType.AS_SET:
            head.append((seg_type, asns))
            excess -= 1
        else:
            head.append((seg_type, asns[:excess]))
            excess -= min(excess, len(asns))
    return _join(tuple(head), as4_path)


def _join(head: AsPath, tail: AsPath) -> AsPath:
    """head + tail, one AS_SEQUENCE where a sequence meets a sequence (one path, one form)."""
    if head and tail and head[-1][0] == tail[0][0] == SegmentType.AS_SEQUENCE:
        return (*head[:-1], (SegmentType.AS_SEQUENCE, head[-1][1] + tail[0][1]), *tail[1:])
    return head + tail


def split_as4_path(path: AsPath) -> tuple[AsPath, AsPath | None]:
    """For a 2-octet peer: (AS_PATH with AS_TRANS for big ASNs, AS4_PATH or None) (§4.2.2)."""
    if all(asn <= 0xFFFF for _, asns in path for asn in asns):
        return path, None
    two = tuple(
        (seg_type, tuple(asn if asn <= 0xFFFF else AS_TRANS for asn in asns))
        for seg_type, asns in path
    )
    # AS4_PATH carries no confederation segments (RFC 6793 §3).
    four = tuple(seg for seg in path if seg[0] < SegmentType.AS_CONFED_SEQUENCE)
    return two, four or None


def as_path_to_json(path: AsPath) -> list[dict[str, object]]:
    return [{"type": _SEGMENT_NAMES[SegmentType(t)], "asns": list(asns)} for t, asns in path]


def as_path_from_json(obj: object) -> AsPath:
    if not isinstance(obj, list):
        raise ValueError("as path: expected a list of segments")
    segments = []
    for seg in obj:
        if not isinstance(seg, dict) or seg.get("type") not in _SEGMENT_BY_NAME:
            raise ValueError(
                f"as path: bad segment {seg!r} (type one of {sorted(_SEGMENT_BY_NAME)})"
            )
        asns = seg.get("asns")
        if not isinstance(asns, list) or not all(
            isinstance(a, int) and 0 <= a < 2**32 for a in asns
        ):
            raise ValueError(f"as path: bad AS numbers in {seg!r}")
        segments.append((_SEGMENT_BY_NAME[seg["type"]], tuple(asns)))
    return tuple(segments)


def as_path_to_str(path: AsPath) -> str:
    """Operator notation: "65001 65002 {65003,65004} (65010)"."""
    parts = []
    for seg_type, asns in path:
        text = " ".join(map(str, asns))
        if seg_type == SegmentType.AS_SET:
            text = "{" + ",".join(map(str, asns)) + "}"
        elif seg_type == SegmentType.AS_CONFED_SEQUENCE:
            text = f"({text})"
        elif seg_type == SegmentType.AS_CONFED_SET:
            text = "[" + ",".join(map(str, asns)) + "]"
        parts.append(text)
    return " ".join(parts)
