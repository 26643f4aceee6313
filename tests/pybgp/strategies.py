"""hypothesis strategies for generated BGP messages.

Each message kind has its own clearly named functions; every generated value is valid, so
decode(encode(x)) == x is expected to hold exactly.
"""

from __future__ import annotations

import ipaddress

import attrs
from hypothesis import strategies as st

from pybgp.wire.capabilities import (
    FQDN,
    AddPath,
    AddPathFamily,
    BGPRole,
    Capability,
    CapabilityCode,
    EnhancedRouteRefresh,
    ExtendedMessage,
    ExtendedNextHop,
    ExtendedNextHopFamily,
    FourOctetAS,
    GracefulRestart,
    GracefulRestartFamily,
    Multiprotocol,
    RouteRefresh,
    UnknownCapability,
    encode_capability,
)
from pybgp.wire.constants import Family
from pybgp.wire.notification import Notification
from pybgp.wire.open import Open
from pybgp.wire.route_refresh import RouteRefresh as RouteRefreshMessage

# ---------------------------------------------------------------------------------------------
# OPEN and capabilities


def families(max_safi: int = 0xFF) -> st.SearchStrategy[Family]:
    common = st.sampled_from([Family(1, 1), Family(2, 1), Family(1, 2), Family(25, 70)])
    return common | st.builds(Family, st.integers(0, 0xFFFF), st.integers(0, max_safi))


def _mostly_zero(bits: int) -> st.SearchStrategy[int]:
    return st.just(0) | st.integers(0, (1 << bits) - 1)


def _short_text() -> st.SearchStrategy[str]:
    return st.text(max_size=30).filter(lambda s: len(s.encode("utf-8")) <= 255)


def graceful_restart_capabilities() -> st.SearchStrategy[GracefulRestart]:
    entry = st.builds(
        GracefulRestartFamily,
        family=families(),
        forwarding_state=st.booleans(),
        reserved_flags=_mostly_zero(7),
    )
    return st.builds(
        GracefulRestart,
        restart_state=st.booleans(),
        notification=st.booleans(),
        restart_time=st.integers(0, 0xFFF),
        families=st.lists(entry, max_size=4).map(tuple),
        reserved_flags=_mostly_zero(2),
    )


def add_path_capabilities() -> st.SearchStrategy[AddPath]:
    mode = st.integers(1, 3) | st.integers(0, 0xFF)  # invalid modes are kept (RFC 7911 §4)
    entry = st.builds(AddPathFamily, family=families(), mode=mode)
    return st.builds(AddPath, families=st.lists(entry, max_size=4).map(tuple))


def extended_next_hop_capabilities() -> st.SearchStrategy[ExtendedNextHop]:
    entry = st.builds(
        ExtendedNextHopFamily, family=families(0xFFFF), next_hop_afi=st.integers(0, 0xFFFF)
    )
    return st.builds(ExtendedNextHop, families=st.lists(entry, max_size=4).map(tuple))


_KNOWN_CODES = {code.value for code in CapabilityCode} - {CapabilityCode.ROUTE_REFRESH_OLD}


def unknown_capabilities() -> st.SearchStrategy[UnknownCapability]:
    code = st.integers(0, 0xFF).filter(lambda c: c not in _KNOWN_CODES)
    return st.builds(UnknownCapability, code=code, value=st.binary(max_size=24))


def capabilities(four_octet_as_zero: bool = True) -> st.SearchStrategy[Capability]:
    """Any capability; `four_octet_as_zero=False` leaves out AS 0, which an OPEN rejects."""
    empty = st.sampled_from([RouteRefresh(), EnhancedRouteRefresh(), ExtendedMessage()])
    return st.one_of(
        st.builds(Multiprotocol, family=families(), reserved=_mostly_zero(8)),
        empty,
        st.builds(FourOctetAS, asn=st.integers(0 if four_octet_as_zero else 1, 0xFFFFFFFF)),
        graceful_restart_capabilities(),
        add_path_capabilities(),
        extended_next_hop_capabilities(),
        st.builds(FQDN, hostname=_short_text(), domain=_short_text()),
        st.builds(BGPRole, role=st.integers(0, 0xFF)),
        unknown_capabilities(),
    )


def _roles_agree(groups: tuple[tuple[Capability, ...], ...]) -> bool:
    roles = {cap.role for group in groups for cap in group if isinstance(cap, BGPRole)}
    return len(roles) <= 1  # RFC 9234 §4.2: disagreeing roles are rejected


def _classic_params_len(message: Open) -> int:
    return sum(2 + sum(len(encode_capability(c)) for c in g) for g in message.parameters)


@st.composite
def open_messages(draw: st.DrawFn) -> Open:
    group = st.lists(capabilities(four_octet_as_zero=False), max_size=5).map(tuple)
    groups = draw(st.lists(group, max_size=4).map(tuple).filter(_roles_agree))
    extended = draw(st.booleans())
    message = Open(
        my_as=draw(st.integers(1, 0xFFFF)),
        hold_time=draw(st.just(0) | st.integers(3, 0xFFFF)),
        bgp_id=str(ipaddress.IPv4Address(draw(st.integers(1, 0xFFFFFFFF)))),
        parameters=groups,
        extended_params=extended,
        non_ext_op_len=draw(st.just(255) | st.integers(1, 255)) if extended else 255,
    )
    if not extended and _classic_params_len(message) > 255:
        message = attrs.evolve(message, extended_params=True)  # what the encoder will choose
    return message


# ---------------------------------------------------------------------------------------------
# NOTIFICATION, ROUTE-REFRESH


def notifications() -> st.SearchStrategy[Notification]:
    raw = st.builds(
        Notification,
        code=st.integers(0, 0xFF),
        subcode=st.integers(0, 0xFF),
        data=st.binary(max_size=300),
    )
    shutdown = st.builds(
        Notification.shutdown, text=st.text(max_size=100), subcode=st.sampled_from([2, 4])
    )
    return raw | shutdown


@st.composite
def route_refresh_messages(draw: st.DrawFn) -> RouteRefreshMessage:
    subtype = draw(st.sampled_from([0, 1, 2]) | st.integers(0, 0xFF))
    extra = b"" if subtype in (1, 2) else draw(st.just(b"") | st.binary(max_size=40))
    return RouteRefreshMessage(family=draw(families()), subtype=subtype, extra=extra)
