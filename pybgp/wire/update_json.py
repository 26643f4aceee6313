"""The JSON form of an UPDATE (what `pybgp decode` prints and `pybgp encode` reads).

Attributes appear by name in wire order; MP_REACH_NLRI/MP_UNREACH_NLRI stand where they
stood. Flags are shown only where they differ from what our encoder would write, so the
JSON of a message re-encodes to the same bytes.
"""

from __future__ import annotations

from typing import Any

from pybgp.wire.attributes import SPECS, SPECS_BY_NAME, canonical_flags, encode_attribute
from pybgp.wire.constants import AttrType, Family
from pybgp.wire.context import CodecContext
from pybgp.wire.mp import MpReach, MpUnreach
from pybgp.wire.nlri import Nlri, address_from_str, nlri_from_str, nlri_path_id, nlri_to_str
from pybgp.wire.pathattrs import PathAttributes

_REACH, _UNREACH = "mp_reach_nlri", "mp_unreach_nlri"


def prefixes_to_json(keys: tuple[Nlri, ...], family: Family, addpath: bool) -> list[Any]:
    if not addpath:
        return [nlri_to_str(key, family) for key in keys]
    return [
        {"prefix": nlri_to_str(key, family, True), "path_id": nlri_path_id(key)} for key in keys
    ]


def prefixes_from_json(items: Any, family: Family, field: str, addpath: bool) -> tuple[Nlri, ...]:
    """Keys of a JSON prefix list. With ADD-PATH negotiated for the family (addpath=True)
    each item is {"prefix": P, "path_id": N}; otherwise a plain string (RFC 7911 §3)."""
    if not isinstance(items, list):
        raise ValueError(f"{field}: expected a list of prefixes")
    keys = []
    for item in items:
        try:
            keys.append(_prefix_from_json(item, family, addpath))
        except ValueError as exc:
            raise ValueError(f"{field}: {exc}") from None
    return tuple(keys)


def _prefix_from_json(item: Any, family: Family, addpath: bool) -> Nlri:
    if not addpath:
        if not isinstance(item, str):
            raise ValueError(
                f"expected a prefix string (ADD-PATH is off for {family.name}), not {item!r}"
            )
        return nlri_from_str(item, family)
    if not isinstance(item, dict) or not isinstance(item.get("path_id"), int):
        raise ValueError(
            f'ADD-PATH is on for {family.name}: expected {{"prefix": ..., "path_id": N}},'
            f" not {item!r}"
        )
    path_id = item["path_id"]
    if not 0 <= path_id < 2**32:
        raise ValueError(f"path_id {path_id} out of range")
    return nlri_from_str(str(item.get("prefix")), family, path_id)


def attributes_to_json(
    attributes: PathAttributes | None,
    mps: list[MpReach | MpUnreach],
    addpath: frozenset[Family],
) -> tuple[dict[str, Any], dict[str, int]]:
    """(attributes by name in wire order, flags that differ from the canonical ones)."""
    out: dict[str, Any] = {}
    flags_out: dict[str, int] = {}
    pending = sorted(mps, key=lambda mp: mp.position)

    def put_mp(mp: MpReach | MpUnreach) -> None:
        name, value = _mp_to_json(mp, addpath)
        out[name] = value
        if mp.flags != canonical_flags(AttrType.MP_REACH_NLRI, len(mp.value())):
            flags_out[name] = mp.flags

    plain = list(attributes.tlvs()) if attributes is not None else []
    taken = 0
    for index in range(len(plain) + len(mps)):
        # An MP attribute goes where it stood (its position counts all attributes before it).
        if pending and (pending[0].position <= index or taken == len(plain)):
            put_mp(pending.pop(0))
            continue
        flags, code, raw_value = plain[taken]
        taken += 1
        spec = SPECS.get(code)
        if spec is None:
            out[f"attr_{code}"] = {"flags": flags, "value": raw_value.hex()}
            continue
        assert attributes is not None
        out[spec.name] = spec.to_json(attributes.values[code])
        if flags != canonical_flags(code, len(raw_value)):
            flags_out[spec.name] = flags
    return out, flags_out


def _mp_to_json(mp: MpReach | MpUnreach, addpath: frozenset[Family]) -> tuple[str, Any]:
    nlri = prefixes_to_json(mp.nlri, mp.family, mp.family in addpath)
    if isinstance(mp, MpReach):
        return _REACH, {"family": mp.family.name, "next_hop": list(mp.next_hops), "nlri": nlri}
    return _UNREACH, {"family": mp.family.name, "withdrawn": nlri}


def attributes_from_json(
    obj: Any, flags_obj: Any, ctx: CodecContext
) -> tuple[PathAttributes | None, MpReach | None, MpUnreach | None]:
    if not isinstance(obj, dict):
        raise ValueError("attributes: expected an object keyed by attribute name")
    if not isinstance(flags_obj, dict):
        raise ValueError("attribute_flags: expected an object")
    width = 4 if ctx.asn4 else 2
    pieces: list[bytes] = []
    reach = unreach = None
    for name, value in obj.items():
        flags = flags_obj.get(name)
        if name in (_REACH, _UNREACH):
            position = len(pieces) + (reach is not None) + (unreach is not None)
            mp = _mp_from_json(name, value, flags, position, ctx)
            if isinstance(mp, MpReach):
                reach = mp
            else:
                unreach = mp
            continue
        pieces.append(_attribute_from_json(name, value, flags, width))
    raw = b"".join(pieces)
    attributes = PathAttributes(raw, ctx.asn4) if raw else None
    return attributes, reach, unreach


def _attribute_from_json(name: str, value: Any, flags: Any, width: int) -> bytes:
    spec = SPECS_BY_NAME.get(name)
    if spec is None:
        code = _unknown_code(name)
        if not isinstance(value, dict) or not isinstance(value.get("flags"), int):
            raise ValueError(f"{name}: expected {{'flags': N, 'value': HEX}}")
        try:
            data = bytes.fromhex(str(value.get("value", "")))
        except ValueError:
            raise ValueError(f"{name}: value is not hex") from None
        return encode_attribute(value["flags"], code, data)
    try:
        data = spec.encode(spec.from_json(value), width)
    except (OverflowError, TypeError, KeyError) as exc:
        raise ValueError(f"{name}: cannot encode {value!r}: {exc}") from None
    if flags is not None and not (isinstance(flags, int) and 0 <= flags <= 255):
        raise ValueError(f"attribute_flags.{name}: expected 0..255")
    return encode_attribute(
        flags if flags is not None else canonical_flags(spec.code, len(data)), spec.code, data
    )


def _unknown_code(name: str) -> int:
    if name.startswith("attr_") and name[5:].isdigit() and int(name[5:]) < 256:
        return int(name[5:])
    raise ValueError(
        f"unknown attribute {name!r} (known: {', '.join(sorted(SPECS_BY_NAME))}, or attr_N)"
    )


def _mp_from_json(
    name: str, value: Any, flags: Any, position: int, ctx: CodecContext
) -> MpReach | MpUnreach:
    if not isinstance(value, dict):
        raise ValueError(f"{name}: expected an object")
    family = Family.from_name(str(value.get("family")))
    addpath = family in ctx.addpath_tx
    flags = flags if isinstance(flags, int) else 0x80
    if name == _UNREACH:
        keys = prefixes_from_json(value.get("withdrawn", []), family, f"{name}.withdrawn", addpath)
        return MpUnreach(family=family, nlri=keys, position=position, flags=flags)
    hops = value.get("next_hop")
    if not isinstance(hops, list) or not 1 <= len(hops) <= 2:
        raise ValueError(f"{name}.next_hop: expected a list of one or two addresses")
    next_hop = b"".join(address_from_str(str(hop)) for hop in hops)
    keys = prefixes_from_json(value.get("nlri", []), family, f"{name}.nlri", addpath)
    return MpReach(family=family, next_hop=next_hop, nlri=keys, position=position, flags=flags)
