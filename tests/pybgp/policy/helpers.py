"""Small constructors for policy tests: peers, attributes, route contexts, chains."""

from __future__ import annotations

from typing import Any

from pybgp.policy import (
    Actions,
    CompiledPolicy,
    Conditions,
    Definitions,
    Policy,
    PolicyChain,
    Result,
    RouteContext,
    Statement,
    evaluate,
)
from pybgp.rib.peer import PeerInfo
from pybgp.wire.constants import IPV4_UNICAST, IPV6_UNICAST
from pybgp.wire.nlri import nlri_from_str
from pybgp.wire.pathattrs import PathAttributes
from tests.pybgp.rib.builders import attributes as rib_attributes

LOCAL_AS = 65000


def peer(
    address: str = "192.0.2.1",
    *,
    asn: int = 65001,
    ibgp: bool = False,
    confederation: bool = False,
    local: bool = False,
) -> PeerInfo:
    return PeerInfo(
        address=address,
        asn=LOCAL_AS if ibgp else asn,
        router_id="10.255.0.1",
        ibgp=ibgp,
        local_asn=LOCAL_AS,
        confederation=confederation,
        local=local,
    )


def attributes(*, next_hop: str | None = "192.0.2.1", **fields: Any) -> PathAttributes:
    """The RIB tests' attributes, with a NEXT_HOP unless told otherwise."""
    return rib_attributes(next_hop=next_hop, **fields)


def ctx(
    prefix: str = "10.1.0.0/16",
    *,
    attrs: PathAttributes | None = None,
    from_peer: PeerInfo | None = None,
    next_hop: str = "192.0.2.1",
    local_address: str | None = None,
    source: PeerInfo | None = None,
) -> RouteContext:
    family = IPV6_UNICAST if ":" in prefix else IPV4_UNICAST
    return RouteContext(
        nlri_from_str(prefix, family),
        family,
        attrs if attrs is not None else attributes(),
        next_hop,
        from_peer or peer(),
        LOCAL_AS,
        local_address,
        source,
    )


def statement(
    name: str = "s", conditions: Conditions | None = None, actions: Actions | None = None
) -> Statement:
    return Statement(name=name, conditions=conditions or Conditions(), actions=actions or Actions())


def chain(
    *statements: Statement,
    default: str = "reject",
    policy_default: str | None = None,
    **sets: Any,
) -> PolicyChain:
    """One policy "p" with `statements`, the sets given by kind (prefix_sets=(...), ...)."""
    definitions = Definitions(
        policies=(Policy(name="p", statements=statements, default=policy_default),), **sets
    )
    return CompiledPolicy(definitions).chain(["p"], default)


def matches(conditions: Conditions, route: RouteContext, **sets: Any) -> bool:
    """Does a statement with these conditions match the route?"""
    accept = statement(conditions=conditions, actions=Actions(disposition="accept"))
    result = evaluate(chain(accept, **sets), route)
    return result.accepted


def run(actions: Actions, route: RouteContext, **sets: Any) -> Result:
    """The route through one unconditional statement with `actions`, then accepted."""
    return evaluate(chain(statement(actions=actions), default="accept", **sets), route)
