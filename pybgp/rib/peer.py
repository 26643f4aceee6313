"""Where a route came from: what best-path selection (RFC 4271 §9.1.2.2) and the export
rules (RFC 4271 §5.1, RFC 4456 §6, RFC 5065 §5) need to know about the sending peer."""

from __future__ import annotations

import ipaddress

import attrs

LOCAL_ADDRESS = "0.0.0.0"  # the address the local origin sorts under: lowest of all


def ip_sort_key(text: str) -> tuple[int, int]:
    """(IP version, value): addresses compare as unsigned numbers, IPv4 before IPv6."""
    address = ipaddress.ip_address(text)
    return address.version, int(address)


def _router_id_value(text: str) -> int:
    """A BGP Identifier as the unsigned 32-bit number it is compared as (RFC 4271 §9.1.2.2 f)."""
    return int(ipaddress.IPv4Address(text))


@attrs.frozen(kw_only=True, cache_hash=True)
class PeerInfo:
    """One neighbour as the RIB sees it; shared by every route learned from it.

    `ibgp`: the peer is in our AS (or our member AS of a confederation). `confederation`:
    the peer is in another member AS of our confederation (RFC 5065); such a peer is neither
    internal nor external for the decision process' eBGP-over-iBGP step (it ranks with iBGP,
    as FRR does). `route_reflector_client`: the peer is our client (RFC 4456 §6).
    `local`: this is the local origin (routes we originate), see `local_origin`.
    `enforce_first_as`: an eBGP peer's paths must start with its AS (RFC 4271 §6.3, as FRR
    does by default; off for route servers, which do not prepend theirs).
    """

    address: str
    asn: int
    router_id: str
    ibgp: bool
    local_asn: int
    route_reflector_client: bool = False
    confederation: bool = False
    local: bool = False
    enforce_first_as: bool = True
    # Derived once, read on the hot path of the decision process.
    address_key: tuple[int, int] = attrs.field(init=False, eq=False, repr=False)
    router_id_value: int = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "address_key", ip_sort_key(self.address))
        object.__setattr__(self, "router_id_value", _router_id_value(self.router_id))

    @property
    def external(self) -> bool:
        """A true eBGP peer: outside our AS and outside our confederation."""
        return not (self.ibgp or self.confederation or self.local)


def local_origin(asn: int, router_id: str) -> PeerInfo:
    """The source of the routes this speaker originates. It sorts under the address 0.0.0.0,
    so it wins the final tie-break, and counts as 'not learned via iBGP' (§9.1.2.2 d)."""
    return PeerInfo(
        address=LOCAL_ADDRESS,
        asn=asn,
        router_id=router_id,
        ibgp=False,
        local_asn=asn,
        local=True,
    )
