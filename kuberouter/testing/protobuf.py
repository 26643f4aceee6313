"""Request bodies in Kubernetes' protobuf encoding (application/vnd.kubernetes.protobuf),
decoded into the JSON form of the same object.

kubectl's typed commands (`create service`, `create namespace`, `run`) send their object
in protobuf; the real server decodes it as it decodes JSON. A body is the magic "k8s\\0"
and a runtime.Unknown: typeMeta (1: apiVersion 1, kind 2), raw (2: the object's message),
contentEncoding (3), contentType (4). Field numbers and JSON names come from
protoschema.py. As the real decoder, fields this schema does not know are skipped; a
zero value of an omitempty field is left out, as it would be in JSON.

Answers stay JSON: clients that send protobuf accept JSON too (kubectl sends
`Accept: application/vnd.kubernetes.protobuf,application/json`).
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import attrs

from kuberouter.testing.protoschema import SCHEMA

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
VARINT, FIXED64, BYTES, FIXED32 = 0, 1, 2, 5
TIME, MICRO_TIME = "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"


class ProtobufError(ValueError):
    """The body is not a protobuf object this server can read."""


@attrs.frozen
class Field:
    name: str  # the JSON name; "_" for an embedded message
    type: str  # "s", "i", "b" or a message name
    repeated: bool = False
    map: bool = False
    keep_zero: bool = False  # a pointer, or no omitempty


@functools.cache
def messages() -> dict[str, dict[int, Field]]:
    """SCHEMA parsed: message name -> field number -> Field."""
    table: dict[str, dict[int, Field]] = {}
    for message in re.split(r"\n(?=\S)", SCHEMA.strip()):
        name, *tokens = message.split()
        fields = {}
        for token in tokens:
            match = re.fullmatch(r"(\w+)=(\d+):(\w+)(\[\]|\{\})?([?!])?", token)
            if match is None:
                raise RuntimeError(f"bad schema token {token!r} in {name}")
            json_name, number, kind, many, keep = match.groups()
            fields[int(number)] = Field(
                json_name, kind, many == "[]", many == "{}", keep is not None
            )
        table[name] = fields
    return table


def decode(body: bytes) -> dict[str, Any]:
    """The object in `body`, as JSON would give it (apiVersion and kind included)."""
    try:
        return _decode(body)
    except (TypeError, UnicodeDecodeError, OverflowError) as error:  # a field of the wrong type
        raise ProtobufError(f"malformed protobuf body: {error}") from None


def _decode(body: bytes) -> dict[str, Any]:
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the protobuf magic number")
    envelope = dict(_pairs(body[len(MAGIC) :]))
    type_meta = {n: v for n, _, v in _fields(envelope.get(1, b""))}
    api_version = type_meta.get(1, b"").decode()
    kind = type_meta.get(2, b"").decode()
    if envelope.get(3) or envelope.get(4, MEDIA_TYPE.encode()).decode() not in ("", MEDIA_TYPE):
        raise ProtobufError("content encodings inside the envelope are not supported")
    if kind not in messages():
        raise ProtobufError(f"no protobuf schema for kind {kind!r} here")
    obj = _message(kind, envelope.get(2, b""))
    return {"apiVersion": api_version, "kind": kind} | obj


def _pairs(data: bytes) -> Iterator[tuple[int, bytes]]:
    for number, _, value in _fields(data):
        if isinstance(value, bytes):
            yield number, value


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value): an int for varints, bytes otherwise."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == VARINT:
            value, position = _varint(data, position)
        elif wire == BYTES:
            length, position = _varint(data, position)
            value, position = data[position : position + length], position + length
            if len(value) < length:
                raise ProtobufError("truncated length-delimited field")
        elif wire in (FIXED64, FIXED32):
            size = 8 if wire == FIXED64 else 4
            value, position = data[position : position + size], position + size
        else:
            raise ProtobufError(f"unsupported wire type {wire} (field {number})")
        yield number, wire, value


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise ProtobufError("truncated or overlong varint")
        byte = data[position]
        result |= (byte & 0x7F) << shift
        position, shift = position + 1, shift + 7
        if not byte & 0x80:
            return result, position


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _message(name: str, data: bytes) -> dict[str, Any]:
    schema = messages()[name]
    out: dict[str, Any] = {}
    for number, wire, raw in _fields(data):
        field = schema.get(number)
        if field is None:
            continue  # a field newer than this schema: skipped, as by the real decoder
        if field.map:
            key, value = _entry(field, raw)
            out.setdefault(field.name, {})[key] = value
        elif field.repeated:
            out.setdefault(field.name, []).extend(_values(field, wire, raw))
        else:
            out[field.name] = _value(field.type, raw)
    for key, field in ((f.name, f) for f in schema.values()):
        if key in out and not field.keep_zero and _is_zero(out[key]):
            del out[key]
    out.update(out.pop("_", {}))  # embedded messages join their parent
    return out


def _entry(field: Field, raw: bytes) -> tuple[str, Any]:
    """A map entry: key 1, value 2 (either may be left out when empty)."""
    parts = {number: value for number, _, value in _fields(raw)}
    empty = 0 if field.type == "i" else False if field.type == "b" else b""
    return bytes(parts.get(1, b"")).decode(), _value(field.type, parts.get(2, empty))


def _values(field: Field, wire: int, raw: Any) -> list[Any]:
    if wire == BYTES and field.type in ("i", "b"):  # a packed run of varints
        values, position = [], 0
        while position < len(raw):
            value, position = _varint(raw, position)
            values.append(_value(field.type, value))
        return values
    return [_value(field.type, raw)]


def _value(kind: str, raw: Any) -> Any:
    if kind == "s":
        return bytes(raw).decode("utf-8")
    if kind == "i":
        return _signed(int(raw))
    if kind == "b":
        return bool(raw)
    special = _SPECIAL.get(kind)
    if special is not None:
        return special(raw)
    return _message(kind, raw)


def _time(raw: bytes, fmt: str) -> str | None:
    parts = {n: v for n, _, v in _fields(raw)}
    if not parts:
        return None  # the zero time: null in JSON
    moment = datetime.fromtimestamp(_signed(parts.get(1, 0)), UTC)
    moment = moment.replace(microsecond=_signed(parts.get(2, 0)) // 1000)
    return moment.strftime(fmt)


def _int_or_string(raw: bytes) -> int | str:
    parts = {n: v for n, _, v in _fields(raw)}
    if parts.get(1, 0) == 1:
        return bytes(parts.get(3, b"")).decode()
    return _signed(parts.get(2, 0))


def _quantity(raw: bytes) -> str:
    return next((bytes(v).decode() for n, _, v in _fields(raw) if n == 1), "0")


def _fields_v1(raw: bytes) -> Any:
    data = next((v for n, _, v in _fields(raw) if n == 1), b"")
    try:
        return json.loads(data) if data else {}
    except ValueError:
        return base64.b64encode(data).decode()


_SPECIAL = {
    "Time": lambda raw: _time(raw, TIME),
    "MicroTime": lambda raw: _time(raw, MICRO_TIME),
    "IntOrString": _int_or_string,
    "Quantity": _quantity,
    "FieldsV1": _fields_v1,
}


def _is_zero(value: Any) -> bool:
    return value is None or value in ("", 0, {}, [])  # False == 0
