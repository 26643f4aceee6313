"""Reading TOML documents into checked values: `ConfigTable` names every unknown key and every
bad value by the key that holds it ("neighbors[1].peer_asn: ..."), and the converters say
what they expected. Shared by pybgpd's configuration (`pybgp.config`) and its `[policy]`
(`pybgp.policy.config`)."""

from __future__ import annotations

import difflib
import ipaddress
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration mistake; the message starts with the key that holds it."""


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file as a document; an unreadable or invalid file is a ConfigError."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


class ConfigTable:
    """A TOML table being read: remembers which keys were used, so unknown ones are named."""

    def __init__(self, data: Mapping[str, Any], path: str) -> None:
        self.data, self.path, self.used = data, path, set[str]()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(
        self, name: str, convert: Callable[[Any], T], *, required: bool = False, default: Any = None
    ) -> T:
        self.used.add(name)
        if name not in self.data:
            if required:
                raise ConfigError(f"{self.key(name)}: missing (required)")
            return default  # type: ignore[no-any-return]
        try:
            return convert(self.data[name])
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{self.key(name)}: {exc}") from None

    def table(self, name: str, *, required: bool = False) -> ConfigTable:
        self.used.add(name)
        value = self.data.get(name)
        if value is None and required:
            raise ConfigError(f"[{self.key(name)}]: missing (required)")
        if value is not None and not isinstance(value, dict):
            raise ConfigError(f"{self.key(name)}: expected a table")
        return ConfigTable(value or {}, self.key(name))

    def tables(self, name: str) -> list[ConfigTable]:
        self.used.add(name)
        value = self.data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ConfigError(f"{self.key(name)}: expected an array of tables ([[{name}]])")
        return [ConfigTable(v, f"{self.key(name)}[{i}]") for i, v in enumerate(value)]

    def done(self) -> None:
        for name in self.data:
            if name not in self.used:
                close = difflib.get_close_matches(name, list(self.used), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise ConfigError(f"{self.key(name)}: unknown key{hint}")


def int_range(low: int, high: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ValueError(f"expected an integer {low}..{high}, got {value!r}")
        return value

    return convert


def seconds_value(value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ValueError(f"expected a number of seconds >= 0, got {value!r}")
    return float(value)


def bool_value(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def string_value(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def address_value(value: Any) -> str:
    try:
        return str(ipaddress.ip_address(string_value(value)))
    except ValueError:
        raise ValueError(f"expected an IP address, got {value!r}") from None


def ipv4_value(value: Any) -> str:
    try:
        return str(ipaddress.IPv4Address(string_value(value)))
    except ValueError:
        raise ValueError(f"expected an IPv4 address (dotted quad), got {value!r}") from None


def network_value(value: Any) -> str:
    try:
        return str(ipaddress.ip_network(string_value(value), strict=True))
    except ValueError as exc:
        raise ValueError(f"expected a prefix like 10.0.0.0/24: {exc}") from None


def choice(*choices: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return convert


def readable_file(value: Any) -> str:
    path = Path(string_value(value))
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    return str(path)


def list_of(convert: Callable[[Any], T]) -> Callable[[Any], list[T]]:
    def convert_list(value: Any) -> list[T]:
        if not isinstance(value, list):
            raise ValueError(f"expected a list, got {value!r}")
        out = []
        for index, item in enumerate(value):
            try:
                out.append(convert(item))
            except ValueError as exc:
                raise ValueError(f"item {index}: {exc}") from None
        return out

    return convert_list
