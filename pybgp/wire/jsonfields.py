"""JSON field readers shared by the message and capability codecs.

Each reads one key of a decoded JSON object and raises ValueError naming the field, so a
mistake in hand-written JSON points at the key to fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pybgp.wire.constants import Family

_MISSING = object()  # no default: the key is required


def json_value(obj: dict[str, object], key: str, default: object = _MISSING) -> object:
    if not isinstance(obj, dict):
        raise ValueError(f"{key}: expected a JSON object around it, got {obj!r}")
    if key in obj:
        return obj[key]
    if default is _MISSING:
        raise ValueError(f"{key}: missing")
    return default


def json_int(obj: dict[str, object], key: str, default: object = _MISSING) -> int:
    value = json_value(obj, key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key}: expected an integer, got {value!r}")
    return value


def json_bool(obj: dict[str, object], key: str, default: object = _MISSING) -> bool:
    value = json_value(obj, key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{key}: expected true or false, got {value!r}")
    return value


def json_str(obj: dict[str, object], key: str, default: object = _MISSING) -> str:
    value = json_value(obj, key, default)
    if not isinstance(value, str):
        raise ValueError(f"{key}: expected a string, got {value!r}")
    return value


def json_hex(obj: dict[str, object], key: str, default: object = _MISSING) -> bytes:
    text = json_str(obj, key, default)
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{key}: not hexadecimal: {text!r}") from None


def json_objects(
    obj: dict[str, object], key: str, default: object = _MISSING
) -> list[dict[str, object]]:
    value = json_value(obj, key, default)
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError(f"{key}: expected a list of JSON objects, got {value!r}")
    return value


def json_name_or_int(obj: dict[str, object], key: str, names: Mapping[int, str]) -> int:
    """A number written as one of `names` or as an integer (for values without a name)."""
    value = json_value(obj, key)
    if isinstance(value, str):
        for number, name in names.items():
            if name == value:
                return int(number)
        raise ValueError(f"{key}: unknown name {value!r} (known: {', '.join(names.values())})")
    return json_int(obj, key)


def json_family(obj: dict[str, object], key: str) -> Family:
    """A family by name: "ipv4-unicast", or "afiN-safiM" as Family.name writes unnamed ones."""
    text = json_str(obj, key)
    match = re.fullmatch(r"afi(\d{1,5})-safi(\d{1,5})", text)
    if match:
        return Family(int(match[1]), int(match[2]))
    try:
        return Family.from_name(text)
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None


def json_check_type(obj: dict[str, object], expected: str) -> None:
    """A message's "type" must name its class when present (the dispatcher reads it first)."""
    value = json_value(obj, "type", expected)
    if value != expected:
        raise ValueError(f"type: expected {expected!r}, got {value!r}")
