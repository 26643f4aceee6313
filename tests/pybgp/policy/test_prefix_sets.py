"""Prefix sets: FRR/GoBGP ge/le semantics, IPv4 and IPv6, parsed and compiled."""

from __future__ import annotations

import ipaddress

import pytest

from pybgp.policy import PrefixEntry
from pybgp.policy.match import PrefixTable
from pybgp.wire.constants import AFI_IPV4, AFI_IPV6, IPV4_UNICAST, IPV6_UNICAST
from pybgp.wire.nlri import nlri_from_str

from .helpers import ctx


def hit(entry: str, route: str) -> bool:
    table = PrefixTable([PrefixEntry.parse(entry)])
    v6 = ":" in route
    key = nlri_from_str(route, IPV6_UNICAST if v6 else IPV4_UNICAST)
    return table.contains(key, AFI_IPV6 if v6 else AFI_IPV4)


@pytest.mark.parametrize(
    ("entry", "route", "expected"),
    [
        # exact: no range means that prefix and no other
        ("10.0.0.0/8", "10.0.0.0/8", True),
        ("10.0.0.0/8", "10.0.0.0/9", False),
        ("10.0.0.0/8", "10.0.0.0/7", False),
        ("10.0.0.0/8", "11.0.0.0/8", False),
        # le: from the entry's own length up to le
        ("10.0.0.0/8 le 24", "10.0.0.0/8", True),
        ("10.0.0.0/8 le 24", "10.255.255.0/24", True),
        ("10.0.0.0/8 le 24", "10.1.2.0/25", False),
        ("10.0.0.0/8 le 24", "11.0.0.0/16", False),
        ("10.0.0.0/8 le 24", "8.0.0.0/6", False),
        # ge alone: from ge up to the family's end (FRR)
        ("10.0.0.0/8 ge 16", "10.0.0.0/15", False),
        ("10.0.0.0/8 ge 16", "10.3.0.0/16", True),
        ("10.0.0.0/8 ge 16", "10.3.4.5/32", True),
        ("10.0.0.0/8 ge 16 le 24", "10.3.0.0/16", True),
        ("10.0.0.0/8 ge 16 le 24", "10.3.4.0/24", True),
        ("10.0.0.0/8 ge 16 le 24", "10.3.4.0/25", False),
        ("10.0.0.0/8 ge 16 le 24", "10.2.0.0/15", False),
        # GoBGP masklength range
        ("10.33.0.0/16 21..24", "10.33.8.0/21", True),
        ("10.33.0.0/16 21..24", "10.33.0.0/16", False),
        ("10.33.0.0/16 21..24", "10.33.1.0/24", True),
        # lengths that are not whole octets
        ("10.128.0.0/9 le 12", "10.128.0.0/10", True),
        ("10.128.0.0/9 le 12", "10.0.0.0/10", False),
        ("10.128.0.0/9 le 12", "10.192.0.0/12", True),
        ("10.128.0.0/9 le 12", "10.240.0.0/12", True),
        ("10.128.0.0/9 le 12", "10.128.0.0/13", False),
        # the whole family, the default route, a host
        ("0.0.0.0/0 le 32", "203.0.113.7/32", True),
        ("0.0.0.0/0 le 32", "0.0.0.0/0", True),
        ("0.0.0.0/0 le 32", "2001:db8::/32", False),
        ("0.0.0.0/0", "0.0.0.0/0", True),
        ("0.0.0.0/0", "10.0.0.0/8", False),
        ("192.0.2.1/32", "192.0.2.1/32", True),
        ("192.0.2.1/32", "192.0.2.0/31", False),
        ("192.0.2.0/24 le 32", "192.0.2.255/32", True),
        # IPv6
        ("2001:db8::/32 ge 48 le 64", "2001:db8:1::/48", True),
        ("2001:db8::/32 ge 48 le 64", "2001:db8:1:2::/64", True),
        ("2001:db8::/32 ge 48 le 64", "2001:db8::/32", False),
        ("2001:db8::/32 ge 48 le 64", "2001:db8:1:2::/65", False),
        ("2001:db8::/32 ge 48 le 64", "2001:db9::/48", False),
        ("2001:db8::/32", "2001:db8::/32", True),
        ("2001:db8::/32", "2001:db8::/33", False),
        ("::/0 le 128", "2001:db8::1/128", True),
        ("::/0 le 128", "10.0.0.0/8", False),
        ("::/0", "::/0", True),
        ("2001:db8::1/128", "2001:db8::1/128", True),
        ("2001:db8::1/128", "2001:db8::2/128", False),
        ("2001:db8:8000::/33 le 40", "2001:db8:8000::/34", True),
        ("2001:db8:8000::/33 le 40", "2001:db8:4000::/34", False),
        ("2001:db8:8000::/33 le 40", "2001:db8:ff00::/40", True),
        ("2001:db8:8000::/33 le 40", "2001:db8:ff80::/41", False),
        # an IPv4 entry never meets an IPv6 route of the same bits
        ("10.0.0.0/8 le 32", "a00::/8", False),
    ],
)
def test_entry_matches(entry: str, route: str, expected: bool) -> None:
    assert hit(entry, route) is expected


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("10.0.0.0/8 le 24", "10.0.0.0/8 le 24"),
        ("10.0.0.0/8 ge 16", "10.0.0.0/8 ge 16"),
        ("10.0.0.0/8 ge 16 le 24", "10.0.0.0/8 ge 16 le 24"),
        ("10.0.0.0/8 16..24", "10.0.0.0/8 ge 16 le 24"),
        ("10.0.0.0/8 ge 8 le 8", "10.0.0.0/8"),
        ("2001:DB8::/32 le 64", "2001:db8::/32 le 64"),
    ],
)
def test_entry_text_round_trip(text: str, shown: str) -> None:
    entry = PrefixEntry.parse(text)
    assert str(entry) == shown
    assert PrefixEntry.parse(str(entry)) == entry


@pytest.mark.parametrize(
    "text",
    [
        "10.0.0.1/8",  # host bits set
        "10.0.0.0/8 le 7",
        "10.0.0.0/8 ge 7",
        "10.0.0.0/8 ge 33",
        "10.0.0.0/8 ge 24 le 16",
        "10.0.0.0/8 le",
        "10.0.0.0/8 le 24 ge 16",
        "10.0.0.0/8 24..16",
        "2001:db8::/32 le 129",
        "10.0.0.0/8 foo",
        "not-a-prefix",
    ],
)
def test_bad_entries(text: str) -> None:
    with pytest.raises(ValueError) as info:
        PrefixEntry.parse(text)
    assert str(info.value).startswith(repr(text))  # the message names the entry


def test_table_agrees_with_a_scan_over_every_short_prefix() -> None:
    """Every IPv4 prefix up to /12 inside 10.0.0.0/8 and around it, against a scan."""
    entries = [
        PrefixEntry.parse(t)
        for t in ("10.0.0.0/8 ge 10 le 11", "10.64.0.0/10", "10.128.0.0/9 le 12", "8.0.0.0/6 ge 9")
    ]
    table = PrefixTable(entries)
    for length in range(13):
        for index in range(1 << min(length, 12)):
            value = (index << (32 - length)) if length else 0
            net = ipaddress.IPv4Network((value, length))
            expected = any(
                e.ge <= length <= e.le and net.subnet_of(e.network)  # type: ignore[arg-type]
                for e in entries
            )
            key = nlri_from_str(str(net), IPV4_UNICAST)
            assert table.contains(key, AFI_IPV4) is expected, net
            route = ctx(str(net))
            assert table.route_test(False)(route, "") is expected, net
            assert table.route_test(True)(route, "") is not expected, net


def test_empty_table_and_other_family() -> None:
    assert not PrefixTable([]).contains(b"\x00", AFI_IPV4)
    table = PrefixTable([PrefixEntry.parse("10.0.0.0/8 le 32")])
    assert not table.contains(nlri_from_str("2001:db8::/32", IPV6_UNICAST), AFI_IPV6)
