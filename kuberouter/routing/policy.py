"""The BGP policy of a node, as named pybgp definitions an operator reads with `pybgp policy`.

Upstream kube-router's policies, under its set and policy names:
- export (`kube_router_export`, default reject: nothing else leaves the node):
  - this node's pod CIDRs to the node peers (`iBGPpeerset`), with --enable-ibgp;
  - this node's service IPs to the external peers (`externalpeerset`), and its pod CIDRs
    too with --advertise-pod-cidr, both with the node's communities, AS-path prepend and,
    with --override-nexthop, our address as next hop. Only routes we originate match, so
    nothing learned from one external peer is sent to another;
  - a route-reflector server also passes node peers' routes on to the node peers (upstream
    runs its servers without any export policy; this is the part of that which is needed).
- import (`kube_router_import`, default accept): routes inside the service ranges
  (--service-cluster-ip-range, --service-external-ip-range, --loadbalancer-ip-range), the
  default route, and the node's kube-router.io/node.bgp.customimportreject prefixes are
  refused from every peer: service IPs are originated by the nodes that serve them.
The sets change as nodes and services come and go; pybgp re-examines only the sessions a
change concerns.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence

import attrs

from kuberouter.model.node_bgp import NodeBgp
from kuberouter.routing.origin import Originated
from kuberouter.routing.peers import Peering
from kuberouter.routing.settings import RouterSettings
from pybgp.policy import (
    Actions,
    Attachment,
    CommunityAction,
    CompiledPolicy,
    Conditions,
    Definitions,
    MatchSet,
    NeighborSet,
    Policy,
    PolicyAssignment,
    PrefixSet,
    Prepend,
    Statement,
)
from pybgp.policy.sets import WELL_KNOWN_NAMES
from pybgp.wire.communities import community_from_str

EXPORT, IMPORT = "kube_router_export", "kube_router_import"
POD_CIDRS, SERVICE_VIPS = "podcidrdefinedset", "servicevipsdefinedset"
SERVICE_RANGES, DEFAULT_ROUTE = "serviceipsrangedefinedset", "defaultroutedefinedset"
IMPORT_REJECT = "customimportrejectdefinedset"
NODE_PEERS, EXTERNAL_PEERS, ALL_PEERS = "iBGPpeerset", "externalpeerset", "allpeerset"


@attrs.frozen(kw_only=True)
class PolicyInputs:
    settings: RouterSettings
    bgp: NodeBgp  # this node's annotations
    rr_server: bool
    routes: Mapping[str, Originated]
    peerings: Mapping[str, Peering]
    service_ranges: Sequence[str]  # the service, external IP and load-balancer ranges


def definitions(inputs: PolicyInputs) -> Definitions:
    routes = inputs.routes
    pod_cidrs = sorted(p for p, r in routes.items() if r.kind == "pod-cidr")
    vips = sorted(p for p, r in routes.items() if r.kind != "pod-cidr")
    node_peers = sorted(a for a, p in inputs.peerings.items() if p.kind == "node")
    external = sorted(a for a, p in inputs.peerings.items() if p.kind == "external")
    return Definitions(
        prefix_sets=(
            PrefixSet.parse(POD_CIDRS, pod_cidrs),
            PrefixSet.parse(SERVICE_VIPS, vips),
            PrefixSet.parse(SERVICE_RANGES, _or_longer(inputs.service_ranges)),
            PrefixSet.parse(DEFAULT_ROUTE, ["0.0.0.0/0", "::/0"]),
            PrefixSet.parse(IMPORT_REJECT, _or_longer(inputs.bgp.import_reject)),
        ),
        neighbor_sets=(
            NeighborSet(name=NODE_PEERS, members=tuple(node_peers)),
            NeighborSet(name=EXTERNAL_PEERS, members=tuple(external)),
            NeighborSet(name=ALL_PEERS, members=tuple(node_peers + external)),
        ),
        policies=(_export(inputs), _import()),
    )


def compiled(inputs: PolicyInputs) -> CompiledPolicy:
    attach = Attachment(
        import_policies=(IMPORT,),
        export_policies=(EXPORT,),
        default_import="accept",
        default_export="reject",
    )
    return CompiledPolicy(definitions(inputs), PolicyAssignment(global_=attach))


def _export(inputs: PolicyInputs) -> Policy:
    settings = inputs.settings
    accept = Actions(disposition="accept")
    statements = []
    if settings.enable_ibgp:
        statements.append(_statement("pod-cidrs-to-nodes", POD_CIDRS, NODE_PEERS, accept))
    if inputs.rr_server:
        reflect = Conditions(route_type="internal", neighbor_set=MatchSet(set_name=NODE_PEERS))
        statements.append(Statement(name="reflect-to-nodes", conditions=reflect, actions=accept))
    outward = _outward_actions(inputs)
    statements.append(_statement("service-ips-to-external", SERVICE_VIPS, EXTERNAL_PEERS, outward))
    if settings.advertise_pod_cidr:
        statements.append(_statement("pod-cidrs-to-external", POD_CIDRS, EXTERNAL_PEERS, outward))
    return Policy(name=EXPORT, statements=tuple(statements))


def _import() -> Policy:
    reject = Actions(disposition="reject")
    return Policy(
        name=IMPORT,
        statements=tuple(
            _statement(name, prefixes, ALL_PEERS, reject, local_only=False)
            for name, prefixes in (
                ("reject-service-ips", SERVICE_RANGES),
                ("reject-default-route", DEFAULT_ROUTE),
                ("reject-custom", IMPORT_REJECT),
            )
        ),
    )


def _statement(
    name: str, prefixes: str, peers: str, actions: Actions, *, local_only: bool = True
) -> Statement:
    conditions = Conditions(
        prefix_set=MatchSet(set_name=prefixes),
        neighbor_set=MatchSet(set_name=peers),
        route_type="local" if local_only else None,
    )
    return Statement(name=name, conditions=conditions, actions=actions)


def _outward_actions(inputs: PolicyInputs) -> Actions:
    """What routes to external peers carry: the node's communities and prepend, and our
    address as next hop with --override-nexthop."""
    bgp = inputs.bgp
    communities = tuple(_community(c) for c in bgp.communities)
    prepend = bgp.prepend
    return Actions(
        disposition="accept",
        communities=CommunityAction(add=communities) if communities else None,
        as_path_prepend=Prepend(asn=prepend[0], repeat=prepend[1]) if prepend else None,
        next_hop="self" if inputs.settings.override_next_hop else None,
    )


def _community(text: str) -> int:
    """As node_bgp normalised it: "A:B" or a well-known name."""
    known = WELL_KNOWN_NAMES.get(text)
    return known if known is not None else community_from_str(text)


def _or_longer(prefixes: Iterable[str]) -> tuple[str, ...]:
    """Each prefix and every longer one inside it."""
    entries = []
    for text in prefixes:
        network = ipaddress.ip_network(text, strict=False)
        entries.append(f"{network} le {network.max_prefixlen}")
    return tuple(entries)
