"""One peer's session settings (RFC 4271 §8.1 session attributes) and the OPEN they announce."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

import attrs
from attrs.validators import ge, gt, in_, optional

from pybgp.wire.capabilities import (
    FQDN,
    AddPath,
    AddPathFamily,
    AddPathMode,
    BGPRole,
    Capability,
    EnhancedRouteRefresh,
    ExtendedMessage,
    ExtendedNextHop,
    ExtendedNextHopFamily,
    FourOctetAS,
    GracefulRestart,
    Multiprotocol,
    Role,
    RouteRefresh,
)
from pybgp.wire.constants import IPV4_UNICAST, Family
from pybgp.wire.open import Open

DEFAULT_HOLD_TIME = 90  # RFC 4271 §10 suggests 90 s
DEFAULT_CONNECT_RETRY_TIME = 120.0  # RFC 4271 §10
LARGE_HOLD_TIME = 240  # RFC 4271 §8.2.2: the HoldTimer in OpenSent, "4 minutes" suggested
MIN_SEND_HOLD_TIME = 480.0  # RFC 9687 §3: the greater of 8 minutes and 2 x HoldTime


def _router_id(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    try:
        if int(ipaddress.IPv4Address(value)) == 0:
            raise ValueError
    except ValueError:
        raise ValueError(f"{attribute.name}: not a non-zero IPv4 address: {value!r}") from None


def _hold_time(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value != 0 and not 3 <= value <= 0xFFFF:  # RFC 4271 §4.2: zero or at least three
        raise ValueError(f"{attribute.name}: {value} is neither 0 nor 3..65535")


def _families(value: Iterable[Family]) -> tuple[Family, ...]:
    return tuple(value)


def _next_hops(value: Iterable[ExtendedNextHopFamily]) -> tuple[ExtendedNextHopFamily, ...]:
    return tuple(value)


_ASN = in_(range(1, 1 << 32))


@attrs.frozen(kw_only=True)
class SessionConfig:
    """What the local system announces and accepts on one peering, and its timers (seconds).

    IdleHoldTime (RFC 4271 §8.1.1) delays each automatic restart after a failure: the first
    wait is `idle_hold_time`, each further failure doubles it up to `idle_hold_max`, and a
    session that stays Established for `idle_hold_reset` seconds clears the count.
    """

    local_asn: int = attrs.field(validator=_ASN)
    router_id: str = attrs.field(validator=_router_id)
    peer_asn: int = attrs.field(validator=_ASN)
    hold_time: int = attrs.field(default=DEFAULT_HOLD_TIME, validator=_hold_time)
    connect_retry_time: float = attrs.field(default=DEFAULT_CONNECT_RETRY_TIME, validator=gt(0))
    idle_hold_time: float = attrs.field(default=5.0, validator=ge(0))
    idle_hold_max: float = attrs.field(default=120.0, validator=ge(0))
    idle_hold_reset: float = attrs.field(default=300.0, validator=ge(0))
    send_hold_time: float | None = attrs.field(default=None, validator=optional(gt(0)))
    passive: bool = False
    families: tuple[Family, ...] = attrs.field(default=(IPV4_UNICAST,), converter=_families)
    route_refresh: bool = True  # RFC 2918
    enhanced_route_refresh: bool = False  # RFC 7313
    four_octet_as: bool = True  # RFC 6793
    extended_message: bool = False  # RFC 8654
    graceful_restart: GracefulRestart | None = None  # RFC 4724, announced as given
    add_path: Mapping[Family, AddPathMode] = attrs.field(factory=dict, hash=False)  # RFC 7911
    extended_next_hop: tuple[ExtendedNextHopFamily, ...] = attrs.field(
        default=(), converter=_next_hops
    )  # RFC 8950
    hostname: str | None = None  # draft-walton-bgp-hostname-capability
    domain_name: str = ""
    role: Role | None = None  # RFC 9234
    role_strict: bool = False  # RFC 9234 §4.2: refuse a peer that announces no role
    max_prefixes: Mapping[Family, int] = attrs.field(factory=dict, hash=False)
    restart_after: float | None = attrs.field(default=None, validator=optional(ge(0)))
    # restart_after: after a max-prefix Cease, restart that much later; None: stay down.

    def __attrs_post_init__(self) -> None:
        if self.local_asn > 0xFFFF and not self.four_octet_as:
            raise ValueError(f"four_octet_as: AS {self.local_asn} needs 4-octet AS support")
        if self.idle_hold_max < self.idle_hold_time:
            raise ValueError("idle_hold_max: smaller than idle_hold_time")
        if not self.families:
            raise ValueError("families: at least one address family")

    @property
    def ibgp(self) -> bool:
        return self.local_asn == self.peer_asn

    def capabilities(self) -> tuple[Capability, ...]:
        """Our capabilities, in the order FRR and GoBGP send them (RFC 5492)."""
        caps: list[Capability] = [Multiprotocol(family=family) for family in self.families]
        if self.route_refresh:
            caps.append(RouteRefresh())
        if self.enhanced_route_refresh:
            caps.append(EnhancedRouteRefresh())
        if self.extended_message:
            caps.append(ExtendedMessage())
        if self.extended_next_hop:
            caps.append(ExtendedNextHop(families=self.extended_next_hop))
        if self.role is not None:
            caps.append(BGPRole(role=self.role))
        if self.graceful_restart is not None:
            caps.append(self.graceful_restart)
        if self.four_octet_as:
            caps.append(FourOctetAS(asn=self.local_asn))
        if self.add_path:
            entries = (AddPathFamily(family=f, mode=m) for f, m in self.add_path.items())
            caps.append(AddPath(families=tuple(entries)))
        if self.hostname is not None:
            caps.append(FQDN(hostname=self.hostname, domain=self.domain_name))
        return tuple(caps)

    def open_message(self) -> Open:
        """Our OPEN (RFC 4271 §4.2): AS_TRANS in My AS for a 4-octet AS (RFC 6793 §4.1)."""
        return Open.build(
            asn=self.local_asn,
            hold_time=self.hold_time,
            bgp_id=self.router_id,
            capabilities=self.capabilities(),
        )

    def send_hold_for(self, hold_time: int) -> float:
        """RFC 9687 §3: the configured SendHoldTime, else max(8 minutes, 2 x HoldTime)."""
        if self.send_hold_time is not None:
            return self.send_hold_time
        return max(MIN_SEND_HOLD_TIME, 2.0 * hold_time)
