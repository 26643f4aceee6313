"""Readers for untyped Kubernetes dicts: each returns a typed value or raises `FieldError`.

Objects arrive as parsed JSON/YAML, so every field may be missing, null or of the wrong
type. These helpers keep that checking out of the model classes.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator, Mapping
from typing import Any

from kuberouter.model.errors import FieldError, InvalidObject
from kuberouter.model.labels import Labels
from kuberouter.model.shared import shared, text


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def mapping(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    """An optional nested object; missing or null reads as empty."""
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise FieldError(_join(path, key), f"expected an object, got {type(value).__name__}")
    return value


def items(obj: Mapping[str, Any], key: str, path: str) -> Iterator[tuple[str, Any]]:
    """Iterate an optional list, yielding (element path, element)."""
    value = obj.get(key)
    if value is None:
        return
    if not isinstance(value, list):
        raise FieldError(_join(path, key), f"expected a list, got {type(value).__name__}")
    for index, element in enumerate(value):
        yield f"{path}.{key}[{index}]", element


def objects(obj: Mapping[str, Any], key: str, path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Iterate an optional list of objects."""
    for element_path, element in items(obj, key, path):
        if not isinstance(element, Mapping):
            raise FieldError(element_path, "expected an object")
        yield element_path, element


def string(obj: Mapping[str, Any], key: str, path: str, default: str | None = None) -> str:
    value = obj.get(key)
    if value is None:
        if default is None:
            raise FieldError(_join(path, key), "required")
        return default
    if not isinstance(value, str):
        raise FieldError(_join(path, key), f"expected a string, got {value!r}")
    return value


def optional_string(obj: Mapping[str, Any], key: str, path: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise FieldError(_join(path, key), f"expected a string, got {value!r}")
    return value


def boolean(obj: Mapping[str, Any], key: str, path: str) -> bool:
    value = obj.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise FieldError(_join(path, key), f"expected true or false, got {value!r}")
    return value


def integer(value: Any, path: str, low: int, high: int) -> int:
    # bool is an int in Python but never a port number in Kubernetes.
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(path, f"expected an integer, got {value!r}")
    if not low <= value <= high:
        raise FieldError(path, f"{value} is outside {low}-{high}")
    return value


def labels(obj: Mapping[str, Any], key: str, path: str) -> Labels:
    """A string-to-string map such as metadata.labels or matchLabels."""
    raw = mapping(obj, key, path)
    for name, value in raw.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise FieldError(_join(path, key), f"label {name!r}: {value!r} is not a string pair")
    return shared(Labels({text(name): text(value) for name, value in raw.items()}))


def ip_address(value: Any, path: str) -> str:
    """One address, normalised so that equal addresses compare equal as strings."""
    if not isinstance(value, str):
        raise FieldError(path, f"expected an IP address, got {value!r}")
    if ":" not in value:
        # The C library's strict dotted quad (as ipaddress's: no leading zeros), ten
        # times faster; every pod and endpoint address goes through here.
        try:
            return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, value))
        except (OSError, ValueError):  # ValueError: a NUL in the string
            raise FieldError(path, f"{value!r} is not an IP address") from None
    try:
        return ipaddress.ip_address(value).compressed
    except ValueError:
        raise FieldError(path, f"{value!r} is not an IP address") from None


def metadata(
    obj: Mapping[str, Any], kind: str, namespaced: bool
) -> tuple[str, str, Mapping[str, Any]]:
    """(namespace, name, metadata); raise InvalidObject when the name itself is unusable."""
    try:
        meta = mapping(obj, "metadata", "")
        name = string(meta, "name", "metadata")
        namespace = string(meta, "namespace", "metadata", default="default") if namespaced else ""
    except FieldError as err:
        raise InvalidObject(kind, "<unnamed>", str(err)) from None
    return namespace, name, meta


def object_name(namespace: str, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name
