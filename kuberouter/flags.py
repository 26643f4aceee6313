"""The kube-router command line as one declarative table: the single source of truth.

Rules:
- Names, defaults, types and meaning follow upstream kube-router v2.x (pkg/options/options.go),
  plus the large-cluster fork's `--advertise-service-cluster-ip-range` and
  `--bgp-graceful-restart-ipv6`, and this project's `--service-proxy-mode` (ipvs, upstream's,
  or nftables).
- A default is written as a user would type it and parsed by the same code as user input,
  so a default can never disagree with what the parser accepts.
- `kuberouter.options` builds both the argparse parser and the typed `Options` from FLAGS;
  adding a flag means one row here and one typed field there (an import-time check keeps
  the two in step).
"""

from __future__ import annotations

import csv
import enum
import ipaddress
import json
import re
from typing import Any

import attrs


class Group(enum.Enum):
    """A `--help` section: which part of the agent a flag belongs to."""

    GENERAL = "General"
    ROUTER = "Router (BGP)"
    POD_NETWORK = "Pod network (CNI, overlay, egress)"
    PROXY = "Service proxy (IPVS)"
    FIREWALL = "Firewall (network policy)"
    LOADBALANCER = "Load balancer allocator"
    HEALTH = "Health & metrics"


class Kind(enum.Enum):
    """How a flag's text becomes a value; the enum value is the type name shown by --help."""

    BOOL = ""  # Go style: --flag, --flag=true|false|1|0|t|f
    STRING = "string"
    INT32 = "int"
    UINT8 = "uint8"
    UINT16 = "uint16"
    UINT32 = "uint32"
    UINT = "uint"
    DURATION = "duration"  # Go time.ParseDuration syntax, stored as float seconds
    STRINGS = "strings"  # pflag StringSlice: repeatable and comma separated (CSV)
    UINTS = "uints"  # pflag UintSlice
    IPS = "ipSlice"  # pflag IPSlice


@attrs.frozen
class Flag:
    name: str
    kind: Kind
    default: str
    group: Group
    help: str
    short: str = ""
    secret: bool = False  # never echoed: not in errors, not in the effective-options dump
    action: bool = False  # --help / --version: handled by the CLI, not an Options field
    attr: str = ""  # the Options field, when not simply the name with "_" for "-"
    low: float | None = None  # checked at start, inclusive; durations in seconds
    high: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def field(self) -> str:
        return self.attr or self.name.replace("-", "_")


B, S, D, U8, U16, U32, U64 = (
    Kind.BOOL,
    Kind.STRING,
    Kind.DURATION,
    Kind.UINT8,
    Kind.UINT16,
    Kind.UINT32,
    Kind.UINT,
)
GEN, RTR, POD, PRX, FW, LB, HLT = (
    Group.GENERAL,
    Group.ROUTER,
    Group.POD_NETWORK,
    Group.PROXY,
    Group.FIREWALL,
    Group.LOADBALANCER,
    Group.HEALTH,
)
_MUST_BE_POSITIVE = "Must be greater than 0."
POSITIVE = 1e-9  # the smallest duration above 0 (1ns): "greater than 0" as an inclusive bound

# fmt: off
FLAGS: tuple[Flag, ...] = (
    # --- General -------------------------------------------------------------------------
    Flag("help", B, "false", GEN, "Print usage information.", short="h", action=True),
    Flag("version", B, "false", GEN, "Print version information.", short="V", action=True),
    Flag("v", Kind.INT32, "0", GEN, "Log level for V logs.", short="v", attr="log_level"),
    Flag("kubeconfig", S, "", GEN, "Path to kubeconfig file with authorization information "
         "(the master location is set by the master flag)."),
    Flag("master", S, "", GEN,
         "The address of the Kubernetes API server (overrides any value in kubeconfig)."),
    Flag("hostname-override", S, "", GEN, "Overrides the NodeName of the node. Set this if "
         "kube-router is unable to determine your NodeName automatically."),
    Flag("cache-sync-timeout", D, "1m", GEN, "The timeout for cache synchronization "
         f"(e.g. '5s', '1m'). {_MUST_BE_POSITIVE}", low=POSITIVE),
    Flag("cleanup-config", B, "false", GEN,
         "Remove the configuration kube-router creates and exit (today the network "
         "policy firewall's: its iptables chains and jumps in both iptables variants, "
         "its ipsets and its nftables tables; and the pod network's: its egress rule and "
         "sets and the CNI file, kube-bridge stays; and the service proxy's: its nftables "
         "tables, or its IPVS services, kube-dummy-if, chains and sets)."),
    Flag("enable-ipv4", B, "true", GEN, "Enables IPv4 support."),
    Flag("enable-ipv6", B, "false", GEN, "Enables IPv6 support."),
    Flag("run-router", B, "true", GEN,
         "Enables Pod Networking -- Advertises and learns the routes to Pods via iBGP."),
    Flag("run-service-proxy", B, "true", GEN,
         "Enables Service Proxy -- sets up IPVS for Kubernetes Services."),
    Flag("run-firewall", B, "true", GEN, "Enables Network Policy -- sets up iptables to "
         "provide ingress firewall for pods."),
    Flag("run-loadbalancer", B, "false", GEN, "Enable loadbalancer address allocator."),
    Flag("service-cluster-ip-range", Kind.STRINGS, "10.96.0.0/12", GEN, "CIDR values from "
         "which service cluster IPs are assigned (can be specified up to 2 times)."),
    Flag("service-external-ip-range", Kind.STRINGS, "", GEN, "Specify external IP CIDRs "
         "that are used for inter-cluster communication (can be specified multiple times). "
         "Also used by the proxy to validate externalIPs when "
         "--strict-external-ip-validation is enabled."),
    Flag("loadbalancer-ip-range", Kind.STRINGS, "", GEN, "CIDR values from which "
         "loadbalancer services addresses are assigned (can be specified multiple times). "
         "Also used by the proxy to validate loadBalancerIPs when "
         "--strict-external-ip-validation is enabled."),
    Flag("enable-pprof", B, "false", GEN,
         "Enables pprof for debugging performance and memory leak issues."),
    # --- Router (BGP) ----------------------------------------------------------------------
    Flag("advertise-cluster-ip", B, "false", RTR, "Add Cluster IP of the service to the RIB "
         "so that it gets advertised to the BGP peers."),
    Flag("advertise-external-ip", B, "false", RTR, "Add External IP of service to the RIB "
         "so that it gets advertised to the BGP peers."),
    Flag("advertise-loadbalancer-ip", B, "false", RTR, "Add LoadBalancer IP of service "
         "status as set by the LB provider to the RIB so that it gets advertised to the BGP "
         "peers."),
    Flag("advertise-pod-cidr", B, "true", RTR,
         "Add Node's POD cidr to the RIB so that it gets advertised to the BGP peers."),
    Flag("advertise-service-cluster-ip-range", Kind.STRINGS, "", RTR, "Advertise these "
         "CIDRs (normally the --service-cluster-ip-range) as one aggregate route each "
         "instead of one host route per ClusterIP (large-cluster fork)."),
    Flag("bgp-graceful-restart", B, "false", RTR, "Enables the BGP Graceful Restart "
         "capability so that routes are preserved on unexpected restarts."),
    Flag("bgp-graceful-restart-time", D, "90s", RTR,
         "BGP Graceful restart time according to RFC4724 3, maximum 4095s.",
         low=POSITIVE, high=4095),
    Flag("bgp-graceful-restart-deferral-time", D, "6m", RTR,
         "BGP Graceful restart deferral time according to RFC4724 4.1, maximum 18h.",
         low=POSITIVE, high=18 * 3600),
    Flag("bgp-graceful-restart-ipv6", B, "false", RTR, "Also negotiate Graceful Restart "
         "for the IPv6 unicast family (large-cluster fork)."),
    Flag("bgp-holdtime", D, "90s", RTR, "The holdtime declared to BGP peers; it bounds how "
         "long peers keep our routes when kube-router goes down abnormally. Holdtime must be "
         "in the range 3s to 18h12m15s.", low=3, high=65535),
    Flag("bgp-port", U32, "179", RTR, "The port open for incoming BGP connections and to "
         "use for connecting with other BGP peers."),
    Flag("cluster-asn", U64, "0", RTR, "ASN number under which cluster nodes will run iBGP "
         "(0 = 64512)."),
    Flag("enable-ibgp", B, "true", RTR, "Enables peering with nodes with the same ASN, if "
         "disabled will only peer with external BGP peers."),
    Flag("nodes-full-mesh", B, "true", RTR,
         "Each node in the cluster will setup BGP peering with rest of the nodes."),
    Flag("router-id", S, "", RTR, "BGP router-id. Must be specified in a ipv6 only cluster, "
         "\"generate\" can be specified to generate the router id."),
    Flag("peer-router-ips", Kind.IPS, "", RTR, "The ip address of the external router to "
         "which all nodes will peer and advertise the cluster ip and pod cidr's."),
    Flag("peer-router-asns", Kind.UINTS, "", RTR, "ASN numbers of the BGP peer to which "
         "cluster nodes will advertise cluster ip and node's pod cidr."),
    Flag("peer-router-ports", Kind.UINTS, "", RTR, "The remote port of the external BGP to "
         "which all nodes will peer. If not set, default BGP port (179) will be used."),
    Flag("peer-router-passwords", Kind.STRINGS, "", RTR, "Base64 password for "
         "authenticating against the BGP peer defined with \"--peer-router-ips\".",
         secret=True),
    Flag("peer-router-passwords-file", S, "", RTR, "Path to file containing password for "
         "authenticating against the BGP peer defined with \"--peer-router-ips\". "
         "--peer-router-passwords will be preferred if both are set."),
    Flag("peer-router-multihop-ttl", U8, "0", RTR, "Enable eBGP multihop supports -- sets "
         "multihop-ttl. (Relevant only if ttl >= 2)"),
    Flag("override-nexthop", B, "false", RTR,
         "Override the next-hop in bgp routes sent to peers with the local ip."),
    Flag("routes-sync-period", D, "5m", RTR, "The delay between route updates and "
         f"advertisements (e.g. '5s', '1m', '2h22m'). {_MUST_BE_POSITIVE}", low=POSITIVE),
    Flag("injected-routes-sync-period", D, "60s", RTR, "The delay between route table "
         f"synchronizations (e.g. '5s', '1m', '2h22m'). {_MUST_BE_POSITIVE}", low=POSITIVE),
    Flag("disable-source-dest-check", B, "true", RTR, "Disable the source-dest-check "
         "attribute for AWS EC2 instances. When this option is false, it must be set some "
         "other way."),
    Flag("bgp-control-socket", S, "/run/kube-router/pybgp.sock", RTR, "Unix socket (mode "
         "0600) where the embedded BGP speaker answers `pybgp --socket PATH neighbor|rib|"
         "policy`, as gobgp does inside upstream's pod; empty: none."),
    Flag("gobgp-admin-address", S, "127.0.0.1", RTR, "Address for the GoBGP admin server, "
         "with gobgp-admin-port (empty = 127.0.0.1)."),
    Flag("gobgp-admin-port", U16, "50051", RTR,
         "Port of the GoBGP admin gRPC server; 0 disables it."),
    Flag("enable-bfd", B, "false", RTR, "Enable BFD for BGP peers."),
    Flag("bfd-port", U32, "3784", RTR, "UDP port for BFD control packets.", low=1, high=65535),
    Flag("bfd-detection-multiplier", U32, "3", RTR,
         "BFD failure detection multiplier. Must be between 1-255.", low=1, high=255),
    Flag("bfd-desired-min-tx-interval", U32, "1000", RTR,
         "The desired min interval in milliseconds to transmit BFD control packets.",
         low=1, high=2**32 // 1000),
    Flag("bfd-required-min-rx-interval", U32, "1000", RTR,
         "Min interval in milliseconds to receive BFD control packets.", low=1, high=2**32 // 1000),
    # --- Pod network -----------------------------------------------------------------------
    Flag("enable-cni", B, "true", POD, "Enable CNI plugin. Disable if you want to use "
         "kube-router features alongside another CNI plugin. The file written is "
         "$KUBE_ROUTER_CNI_CONF_FILE (default /etc/cni/net.d/10-kuberouter.conflist; "
         "*.conflist: bridge and portmap, any other name: the bridge plugin alone)."),
    Flag("auto-mtu", B, "true", POD, "Auto detect and set the largest possible MTU for "
         "kube-bridge and pod interfaces (also accounts for IPIP overlay network when "
         "enabled)."),
    Flag("enable-overlay", B, "true", POD, "When true, IP-in-IP tunneling is used for "
         "pod-to-pod networking across nodes in different subnets. When false no tunneling "
         "is used and routing infrastructure is expected to route that traffic."),
    Flag("overlay-type", S, "subnet", POD, "Possible values: subnet,full - \"subnet\" "
         "tunnels only to nodes in other subnets; \"full\" tunnels pod-to-pod traffic to "
         "every node regardless of subnet.", choices=("subnet", "full")),
    Flag("overlay-encap", S, "ipip", POD, "Valid encapsulation types are \"ipip\" or \"fou\" "
         "(for \"fou\" the udp port is set by --overlay-encap-port).", choices=("ipip", "fou")),
    Flag("overlay-encap-port", U16, "5555", POD,
         "Overlay tunnel encapsulation port (only used for \"fou\" encapsulation).", low=1024),
    Flag("enable-pod-egress", B, "true", POD,
         "SNAT traffic from Pods to destinations outside the cluster."),
    # --- Service proxy ---------------------------------------------------------------------
    Flag("service-proxy-mode", S, "ipvs", PRX, "The service proxy's kernel load balancer: "
         "\"ipvs\" (IPVS, as upstream) or \"nftables\" (nftables verdict maps and DNAT).",
         choices=("ipvs", "nftables")),
    Flag("ipvs-sync-period", D, "5m", PRX, "The delay between ipvs config synchronizations "
         f"(e.g. '5s', '1m', '2h22m'). {_MUST_BE_POSITIVE}", low=POSITIVE),
    Flag("ipvs-graceful-termination", B, "false", PRX,
         "Enables the experimental IPVS graceful termination capability."),
    Flag("ipvs-graceful-period", D, "30s", PRX, "The graceful period before removing "
         f"destinations from IPVS services (e.g. '5s', '1m'). {_MUST_BE_POSITIVE}", low=POSITIVE),
    Flag("ipvs-permit-all", B, "true", PRX,
         "Enables rule to accept all incoming traffic to service VIP's on the node."),
    Flag("masquerade-all", B, "false", PRX, "SNAT all traffic to cluster IP/node port."),
    Flag("hairpin-mode", B, "false", PRX,
         "Add iptables rules for every Service Endpoint to support hairpin traffic."),
    Flag("nodeport-bindon-all-ip", B, "false", PRX, "For service of NodePort type create "
         "IPVS service that listens on all IP's of the node."),
    Flag("service-node-port-range", S, "30000-32767", PRX,
         "NodePort range specified with either a hyphen or colon."),
    Flag("excluded-cidrs", Kind.STRINGS, "", PRX,
         "Excluded CIDRs are used to exclude IPVS rules from deletion."),
    Flag("service-tcp-timeout", D, "0s", PRX, "TCP timeout for IPVS services (e.g. '5s', "
         "'1m'); 0s keeps the system default.", low=0),
    Flag("service-tcpfin-timeout", D, "0s", PRX, "TCP FIN timeout for IPVS services "
         "(e.g. '5s', '1m'); 0s keeps the system default.", low=0),
    Flag("service-udp-timeout", D, "0s", PRX, "UDP timeout for IPVS services (e.g. '5s', "
         "'1m'); 0s keeps the system default.", low=0),
    Flag("strict-external-ip-validation", B, "true", PRX, "Validate externalIPs and "
         "loadBalancerIPs against --service-external-ip-range and --loadbalancer-ip-range; "
         "with no range configured all of them are rejected (default-deny). Disable to "
         "accept all IPs without validation."),
    Flag("runtime-endpoint", S, "", PRX, "Path to CRI compatible container runtime socket "
         "(used for DSR mode). Currently known working with containerd."),
    # --- Firewall --------------------------------------------------------------------------
    Flag("iptables-sync-period", D, "5m", FW, "The delay between iptables rule "
         f"synchronizations (e.g. '5s', '1m'). {_MUST_BE_POSITIVE}", low=POSITIVE),
    Flag("netpol-default-deny", B, "false", FW,
         "Drop the traffic of a new pod of this node's pod CIDRs until the firewall has "
         "programmed its network policy state."),
    Flag("use-nftables-for-netpol", B, "false", FW, "[Experimental] Use nftables instead "
         "of iptables for the network policy controller."),
    # --- Load balancer allocator -----------------------------------------------------------
    Flag("loadbalancer-default-class", B, "true", LB,
         "Handle loadbalancer services without a class."),
    Flag("loadbalancer-sync-period", D, "1m", LB, "The delay between checking for missed "
         f"services (e.g. '5s', '1m'). {_MUST_BE_POSITIVE}", low=POSITIVE),
    # --- Health & metrics ------------------------------------------------------------------
    Flag("health-addr", S, "", HLT, "Health check address to listen on (default: all "
         "interfaces; point the livenessProbe at the same address)."),
    Flag("health-port", U16, "20244", HLT, "Health check port, 0 = Disabled."),
    Flag("metrics-addr", S, "", HLT,
         "Prometheus metrics address to listen on (default: all interfaces)."),
    Flag("metrics-port", U16, "0", HLT, "Prometheus metrics port, 0 = Disabled."),
    Flag("metrics-path", S, "/metrics", HLT, "Prometheus metrics path."),
)
# fmt: on

BY_NAME: dict[str, Flag] = {f.name: f for f in FLAGS}
BY_SHORT: dict[str, Flag] = {f.short: f for f in FLAGS if f.short}


# --- Go value syntax: how a flag's text becomes its value and back ---------------------------


def go_quote(text: str) -> str:
    """Double-quoted and escaped like Go's %q, so a message stays on one line."""
    return json.dumps(text, ensure_ascii=False)


_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_NS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign, accepted by Go
    "\u03bcs": 1_000,  # Greek mu, accepted by Go
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")
_MAX_DURATION_NS = 2**63 - 1  # Go's time.Duration is an int64 of nanoseconds
_UINT_SYNTAX = re.compile(r"0[xX][0-9a-fA-F]+|0[oO]?[0-7]+|0[bB][01]+|[0-9]+")
_UINT_BITS = {Kind.UINT8: 8, Kind.UINT16: 16, Kind.UINT32: 32, Kind.UINT: 64}


def parse_bool(text: str) -> bool:
    """Go's strconv.ParseBool."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("not a boolean (use true, false, 1 or 0)")


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration ("1h2m3.5s", "300ms", "-1s", "0"), in seconds."""
    rest, sign = text, 1
    if rest[:1] in ("+", "-"):
        sign, rest = (-1 if rest[0] == "-" else 1), rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise ValueError(f"time: invalid duration {go_quote(text)}")
    total, pos = 0, 0
    while pos < len(rest):
        match = _DURATION_PART.match(rest, pos)
        assert match is not None  # every group can be empty, so it always matches
        whole, frac, unit = match.groups()
        if not whole and not frac:
            raise ValueError(f"time: invalid duration {go_quote(text)}")
        if not unit:
            raise ValueError(f"time: missing unit in duration {go_quote(text)}")
        if unit not in _NS_PER_UNIT:
            raise ValueError(f"time: unknown unit {go_quote(unit)} in duration {go_quote(text)}")
        scale = _NS_PER_UNIT[unit]
        total += int(whole or "0") * scale
        if frac:  # Go truncates below a nanosecond
            total += int(frac) * scale // 10 ** len(frac)
        pos = match.end()
    if total > _MAX_DURATION_NS:
        raise ValueError(f"time: invalid duration {go_quote(text)}")
    return sign * total / 1e9


def parse_uint(text: str, bits: int) -> int:
    """Go's strconv.ParseUint(text, 0, bits), as pflag's uint flags use it (0x.., 0o.., 010)."""
    if not _UINT_SYNTAX.fullmatch(text):
        raise ValueError("not an unsigned integer")
    octal = len(text) > 1 and text[0] == "0" and text[1].isdigit()
    try:
        value = int(text, 8) if octal else int(text, 0)
    except ValueError:
        raise ValueError("not an unsigned integer") from None
    if value >= 2**bits:
        raise ValueError(f"out of range for an unsigned {bits}-bit integer")
    return value


def parse_csv(text: str) -> tuple[str, ...]:
    """One pflag StringSlice value: a CSV record ("" is the empty list)."""
    if text == "":
        return ()
    try:
        return tuple(next(csv.reader([text], strict=True)))
    except csv.Error as err:
        raise ValueError(f"not a comma-separated list: {err}") from None


def parse_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise ValueError(f"{go_quote(text)} is not an IP address") from None


def parse_value(flag: Flag, text: str) -> Any:
    kind = flag.kind
    if kind is Kind.BOOL:
        return parse_bool(text)
    if kind is Kind.STRING:
        return text
    if kind is Kind.DURATION:
        return parse_duration(text)
    if kind is Kind.INT32:
        if not re.fullmatch(r"[+-]?[0-9]+", text) or not -(2**31) <= int(text) < 2**31:
            raise ValueError("not an integer")
        return int(text)
    if kind in _UINT_BITS:
        return parse_uint(text, _UINT_BITS[kind])
    if kind is Kind.STRINGS:
        return parse_csv(text)
    if kind is Kind.UINTS:
        return tuple(parse_uint(item, 64) for item in text.split(",")) if text else ()
    return tuple(parse_ip(item) for item in parse_csv(text))  # Kind.IPS


def format_duration(seconds: float) -> str:
    """Go's time.Duration.String(): 1m30s, 5m0s, 300ms, 0s."""
    ns = round(seconds * 1e9)
    sign, ns = ("-" if ns < 0 else ""), abs(ns)
    if ns == 0:
        return "0s"
    if ns < 1_000_000_000:
        unit, size = next((u, s) for u, s in (("ms", 10**6), ("µs", 10**3), ("ns", 1)) if ns >= s)
        return sign + _decimal(ns, size) + unit
    hours, ns = divmod(ns, 3600 * 10**9)
    minutes, ns = divmod(ns, 60 * 10**9)
    head = f"{hours}h{minutes}m" if hours else (f"{minutes}m" if minutes else "")
    return sign + head + _decimal(ns, 10**9) + "s"


def _decimal(value: int, size: int) -> str:
    whole, frac = divmod(value, size)
    digits = str(frac).rjust(len(str(size)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def format_value(flag: Flag, value: Any) -> str:
    """A value as it would be typed on the command line."""
    if flag.secret and value:
        return "<redacted>"
    if flag.kind is Kind.BOOL:
        return "true" if value else "false"
    if flag.kind is Kind.DURATION:
        return format_duration(value)
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    return str(value)
