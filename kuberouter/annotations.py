"""Every annotation (and standard label) kube-router reads, as one table: the user guide's
list is generated from it (kuberouter.reference).

Names and meanings follow upstream kube-router v2.x; tests check the table against
fixtures/upstream/kube-router-annotations.csv and against the names kuberouter.model reads.
NOT_IMPLEMENTED holds the ones no controller acts on yet: work that acts on one removes it
there, as for flags (kuberouter.options.NOT_IMPLEMENTED).
"""

from __future__ import annotations

import attrs

NODE, SERVICE = "Node", "Service"
ROUTER, PODNET, PROXY = "router", "pod network", "service proxy"


@attrs.frozen
class Annotation:
    name: str
    on: str  # the kind of object it is set on
    controller: str  # the controller that acts on it
    help: str
    label: bool = False  # a label, not an annotation


ANNOTATIONS: tuple[Annotation, ...] = (
    # Nodes: BGP.
    Annotation("kube-router.io/node.asn", NODE, ROUTER,
               "This node's own AS number (eBGP between nodes, or per-rack ASNs)."),
    Annotation("kube-router.io/rr.server", NODE, ROUTER,
               "This node is a route reflector for the nodes of this cluster ID."),
    Annotation("kube-router.io/rr.client", NODE, ROUTER,
               "This node is a route reflector client of the reflectors of this cluster ID: "
               "it peers with them only."),
    Annotation("kube-router.io/peers", NODE, ROUTER,
               "External BGP peers of this node: a YAML list of remoteip, remoteasn and "
               "optional localip, password (base64) and port."),
    Annotation("kube-router.io/peer.ips", NODE, ROUTER,
               "External peers' addresses, comma separated (older form of "
               "kube-router.io/peers)."),
    Annotation("kube-router.io/peer.asns", NODE, ROUTER,
               "External peers' AS numbers, in the order of peer.ips."),
    Annotation("kube-router.io/peer.passwords", NODE, ROUTER,
               "External peers' TCP MD5 passwords, base64, in the order of peer.ips."),
    Annotation("kube-router.io/peer.localips", NODE, ROUTER,
               "The local address to use towards each peer, in the order of peer.ips."),
    Annotation("kube-router.io/peer.ports", NODE, ROUTER,
               "External peers' ports, in the order of peer.ips."),
    Annotation("kube-router.io/bgp-local-addresses", NODE, ROUTER,
               "The addresses BGP listens on, on this node, comma separated (default: the "
               "node's IP)."),
    Annotation("kube-router.io/path-prepend.as", NODE, ROUTER,
               "Prepend this AS number to the AS path of the routes this node advertises."),
    Annotation("kube-router.io/path-prepend.repeat-n", NODE, ROUTER,
               "How many times to prepend path-prepend.as."),
    Annotation("kube-router.io/node.bgp.communities", NODE, ROUTER,
               "Communities added to the routes this node advertises, comma separated."),
    Annotation("kube-router.io/node.bgp.customimportreject", NODE, ROUTER,
               "Prefixes this node refuses to import from its peers, comma separated."),
    Annotation("kube-router.io/pod-cidr", NODE, f"{ROUTER}, {PODNET}",
               "This node's pod CIDR, instead of spec.podCIDR (older, single form)."),
    Annotation("kube-router.io/pod-cidrs", NODE, f"{ROUTER}, {PODNET}",
               "This node's pod CIDRs, instead of spec.podCIDRs, comma separated."),
    # Services: the proxy.
    Annotation("kube-router.io/service.scheduler", SERVICE, PROXY,
               "The IPVS scheduler for this Service: rr, lc, dh, sh, mh, ..."),
    Annotation("kube-router.io/service.schedflags", SERVICE, PROXY,
               "Scheduler flags: flag-1, flag-2, flag-3, comma separated."),
    Annotation("kube-router.io/service.dsr", SERVICE, PROXY,
               "Direct server return; the value is the mode (tunnel)."),
    Annotation("kube-router.io/service.hairpin", SERVICE, PROXY,
               "Let this Service's endpoints reach themselves through its ClusterIP."),
    Annotation("kube-router.io/service.hairpin.externalips", SERVICE, PROXY,
               "Hairpin through the external IPs as well."),
    Annotation("kube-router.io/service.local", SERVICE, f"{ROUTER}, {PROXY}",
               "Only node-local endpoints, internal and external traffic alike (overrides "
               "the traffic policies): its addresses are advertised only from nodes with a "
               "ready endpoint."),
    # Services: what the router advertises.
    Annotation("kube-router.io/service.advertise.clusterip", SERVICE, ROUTER,
               "Advertise (true) or not (false) this Service's ClusterIP, whatever "
               "--advertise-cluster-ip says."),
    Annotation("kube-router.io/service.advertise.externalip", SERVICE, ROUTER,
               "The same for its external IPs (--advertise-external-ip)."),
    Annotation("kube-router.io/service.advertise.loadbalancerip", SERVICE, ROUTER,
               "The same for its LoadBalancer IPs (--advertise-loadbalancer-ip)."),
    Annotation("kube-router.io/service.skiplbips", SERVICE, ROUTER,
               "Do not advertise its LoadBalancer IPs (older form of "
               "service.advertise.loadbalancerip=false)."),
    # Standard labels.
    Annotation("service.kubernetes.io/service-proxy-name", SERVICE, PROXY,
               "Set: another proxy owns this Service, kube-router leaves it alone.", label=True),
    Annotation("service.kubernetes.io/headless", SERVICE, f"{ROUTER}, {PROXY}",
               "Set: a headless Service, nothing to advertise or proxy.", label=True),
)  # fmt: skip
BY_NAME = {annotation.name: annotation for annotation in ANNOTATIONS}

# Read but not acted on yet: DSR (such a Service is proxied with NAT, and
# `kube-router-ctl services` says so).
NOT_IMPLEMENTED: frozenset[str] = frozenset({"kube-router.io/service.dsr"})
