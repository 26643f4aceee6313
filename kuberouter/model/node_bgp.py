"""A Node's kube-router.io/ BGP annotations, read one by one (upstream's names and formats).

A malformed annotation never refuses the Node: it becomes a `Problem` (the annotation,
and why) and reads as absent, while every other annotation and field still counts. The
routing controller reports each problem once (log and Event) and keeps using the last good
value of an annotation that turned bad, so a typo loses nothing.

Formats, as upstream reads them:
- node.asn, path-prepend.as: an AS number; path-prepend.repeat-n: 1..255, both or neither;
- rr.server / rr.client: a cluster ID, a 32-bit number or an IPv4 address;
- pod-cidrs (or the older pod-cidr), bgp-local-addresses, node.bgp.customimportreject:
  comma-separated CIDRs or addresses;
- node.bgp.communities: comma-separated communities ("65000:100", a 32-bit number, or a
  well-known name such as "no-export");
- peers: a YAML list of {remoteip, remoteasn, localip, password (base64), port, bfd}; when
  absent, the older comma-separated peer.ips, peer.asns, peer.passwords (base64),
  peer.localips and peer.ports, matched by position.
Passwords are decoded here and kept out of repr() and every message.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import yaml

from kuberouter.model import fields
from kuberouter.model.errors import FieldError
from pybgp.policy.sets import WELL_KNOWN_NAMES

PREFIX = "kube-router.io/"
ASN = PREFIX + "node.asn"
RR_SERVER = PREFIX + "rr.server"
RR_CLIENT = PREFIX + "rr.client"
POD_CIDRS = PREFIX + "pod-cidrs"
POD_CIDR = PREFIX + "pod-cidr"  # upstream's older, single-valued name
LOCAL_ADDRESSES = PREFIX + "bgp-local-addresses"
PREPEND_AS = PREFIX + "path-prepend.as"
PREPEND_REPEAT = PREFIX + "path-prepend.repeat-n"
COMMUNITIES = PREFIX + "node.bgp.communities"
IMPORT_REJECT = PREFIX + "node.bgp.customimportreject"
PEERS = PREFIX + "peers"
PEER_IPS, PEER_ASNS = PREFIX + "peer.ips", PREFIX + "peer.asns"
PEER_PASSWORDS, PEER_LOCAL_IPS = PREFIX + "peer.passwords", PREFIX + "peer.localips"
PEER_PORTS = PREFIX + "peer.ports"
MAX_ASN = 4294967295


@attrs.frozen
class Problem:
    """A malformed annotation: its key and what is wrong (never its value: it may be secret)."""

    annotation: str
    message: str

    def __str__(self) -> str:
        return f"annotation {self.annotation}: {self.message}"


@attrs.frozen(kw_only=True)
class BfdOptions:
    min_rx_ms: int | None = None
    min_tx_ms: int | None = None
    multiplier: int | None = None


@attrs.frozen(kw_only=True)
class BgpPeer:
    """An external BGP peer of the node (from the annotations, or the --peer-router flags)."""

    address: str
    asn: int
    port: int | None = None  # None: --bgp-port's value, as upstream
    password: bytes | None = attrs.field(default=None, repr=False)  # the MD5 key, decoded
    local_address: str | None = None
    bfd: BfdOptions | None = None


@attrs.frozen(kw_only=True)
class NodeBgp:
    """What the routing controller reads from a Node's annotations; None or () = absent."""

    asn: int | None = None
    rr_server: str | None = None
    rr_client: str | None = None
    pod_cidrs: tuple[str, ...] = ()
    local_addresses: tuple[str, ...] = ()
    prepend: tuple[int, int] | None = None  # (AS, repeat)
    communities: tuple[str, ...] = ()
    import_reject: tuple[str, ...] = ()
    peers: tuple[BgpPeer, ...] | None = None  # None: no peer annotation at all
    problems: tuple[Problem, ...] = ()

    def keeping_last_good(self, previous: NodeBgp | None) -> NodeBgp:
        """This view, with the previous value of each field whose annotation is malformed
        now (a typo in an annotation must not drop what it configured)."""
        if previous is None or not self.problems:
            return self
        kept = {ANNOTATION_FIELDS[p.annotation] for p in self.problems}
        return attrs.evolve(self, **{name: getattr(previous, name) for name in kept})


def parse(notes: Mapping[str, str]) -> NodeBgp:
    """Every BGP annotation of `notes` (a Node's kube-router.io/ annotations)."""
    problems: list[Problem] = []

    def read(key: str, reader: Callable[[str, str], Any], default: Any = None) -> Any:
        if key not in notes:
            return default
        try:
            return reader(notes[key], annotation_path(key))
        except FieldError as err:
            problems.append(Problem(key, err.message))
            return default

    pod_key = POD_CIDRS if POD_CIDRS in notes else POD_CIDR
    values = {
        "asn": read(ASN, asn),
        "rr_server": read(RR_SERVER, cluster_id),
        "rr_client": read(RR_CLIENT, cluster_id),
        "pod_cidrs": read(pod_key, listed(cidr), ()),
        "local_addresses": read(LOCAL_ADDRESSES, listed(fields.ip_address), ()),
        "communities": read(COMMUNITIES, listed(community), ()),
        "import_reject": read(IMPORT_REJECT, listed(cidr), ()),
    }
    prepend = _prepend(notes)
    if isinstance(prepend, Problem):
        problems.append(prepend)
        prepend = None
    peers = _peers(notes)
    if isinstance(peers, Problem):
        problems.append(peers)
        peers = None
    return NodeBgp(**values, prepend=prepend, peers=peers, problems=tuple(problems))


def annotation_path(key: str) -> str:
    return f"metadata.annotations[{key}]"


# --- single values -----------------------------------------------------------------------


def number(value: Any, path: str, low: int, high: int) -> int:
    text = str(value).strip()
    if not text.isdigit():
        raise FieldError(path, f"{value!r} is not a number")
    return fields.integer(int(text), path, low, high)


def asn(value: Any, path: str) -> int:
    return number(value, path, 1, MAX_ASN)


def cluster_id(value: str, path: str) -> str:
    """Upstream accepts a 32-bit number or a dotted IPv4 address; normalised to the latter."""
    text = value.strip()
    if text.isdigit() and int(text) <= MAX_ASN:
        return str(ipaddress.IPv4Address(int(text)))
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise FieldError(path, f"{value!r} is not a cluster ID (a number or IPv4)") from None


def cidr(value: Any, path: str) -> str:
    """One network, normalised (host bits dropped, as Go's net.ParseCIDR tolerates)."""
    if not isinstance(value, str) or "/" not in value:
        raise FieldError(path, f"{value!r} is not a CIDR")
    try:
        return ipaddress.ip_network(value.strip(), strict=False).compressed
    except ValueError:
        raise FieldError(path, f"{value!r} is not a CIDR") from None


def community(value: str, path: str) -> str:
    """A standard community as GoBGP parses one: "A:B", a 32-bit number, a well-known name."""
    text = value.strip()
    if text.isdigit() and int(text) <= 0xFFFFFFFF:
        return f"{int(text) >> 16}:{int(text) & 0xFFFF}"
    high, colon, low = text.partition(":")
    if colon and high.isdigit() and low.isdigit() and int(high) < 65536 and int(low) < 65536:
        return f"{int(high)}:{int(low)}"
    if text.lower() in WELL_KNOWN_NAMES:
        return text.lower()
    raise FieldError(path, f"{value!r} is not a BGP community")


def password(value: Any, path: str) -> bytes | None:
    """A base64 password ("" or absent: none); the value is never put in the message."""
    if value is None or value == "":
        return None
    try:
        decoded = base64.b64decode(str(value).strip(), validate=True)
    except (binascii.Error, ValueError):
        raise FieldError(path, "a password that is not valid base64") from None
    if not 1 <= len(decoded) <= 80:  # the kernel's TCP_MD5SIG_MAXKEYLEN
        raise FieldError(path, "a password must decode to 1..80 bytes")
    return decoded


def listed(parse_one: Callable[[Any, str], Any]) -> Callable[[str, str], tuple[Any, ...]]:
    """A comma-separated annotation, each part read by `parse_one`; duplicates dropped."""

    def read(value: str, path: str) -> tuple[Any, ...]:
        parts = [part.strip() for part in value.split(",") if part.strip()]
        return tuple(dict.fromkeys(parse_one(part, path) for part in parts))

    return read


# --- path prepend and peers ----------------------------------------------------------------


def _prepend(notes: Mapping[str, str]) -> tuple[int, int] | Problem | None:
    if PREPEND_AS not in notes and PREPEND_REPEAT not in notes:
        return None
    if PREPEND_AS not in notes or PREPEND_REPEAT not in notes:
        key = PREPEND_AS if PREPEND_AS in notes else PREPEND_REPEAT
        return Problem(key, f"{PREPEND_AS} and {PREPEND_REPEAT} must be set together")
    try:
        return (
            asn(notes[PREPEND_AS], annotation_path(PREPEND_AS)),
            number(notes[PREPEND_REPEAT], annotation_path(PREPEND_REPEAT), 1, 255),
        )
    except FieldError as err:
        key = PREPEND_AS if PREPEND_AS in err.path else PREPEND_REPEAT
        return Problem(key, err.message)


def _peers(notes: Mapping[str, str]) -> tuple[BgpPeer, ...] | Problem | None:
    try:
        if PEERS in notes:
            return _peers_yaml(notes[PEERS])
        if PEER_IPS in notes or PEER_ASNS in notes:
            return _peers_listed(notes)
    except FieldError as err:
        key = PEERS if PEERS in notes else err.path.split("[", 1)[-1].rstrip("]")
        return Problem(key, err.message)
    return None


def _peers_yaml(text: str) -> tuple[BgpPeer, ...]:
    path = annotation_path(PEERS)
    try:
        entries = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise FieldError(path, f"not valid YAML{where}") from None
    if entries is None:
        return ()
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise FieldError(path, "expected a YAML list of peers")
    return tuple(_peer_entry(entry, f"{path}[{i}]") for i, entry in enumerate(entries))


PEER_KEYS = frozenset({"remoteip", "remoteasn", "localip", "password", "port", "bfd"})


def _peer_entry(entry: Mapping[str, Any], path: str) -> BgpPeer:
    unknown = sorted(str(k) for k in entry if k not in PEER_KEYS)
    if unknown:
        known = ", ".join(sorted(PEER_KEYS))
        raise FieldError(path, f"unknown key {unknown[0]!r} (known: {known})")
    for required in ("remoteip", "remoteasn"):
        if entry.get(required) in (None, ""):
            raise FieldError(path, f"{required} cannot be empty")
    local = entry.get("localip")
    port = entry.get("port")
    return BgpPeer(
        address=fields.ip_address(str(entry["remoteip"]), f"{path}.remoteip"),
        asn=asn(entry["remoteasn"], f"{path}.remoteasn"),
        port=None if port in (None, "") else number(port, f"{path}.port", 1, 65535),
        password=password(entry.get("password"), f"{path}.password"),
        local_address=fields.ip_address(str(local), f"{path}.localip") if local else None,
        bfd=_bfd(entry.get("bfd"), f"{path}.bfd"),
    )


def _bfd(value: Any, path: str) -> BfdOptions | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise FieldError(path, "expected a mapping")
    if not value.get("enabled"):
        return None

    def optional(key: str, low: int, high: int) -> int | None:
        found = value.get(key)
        return None if found is None else number(found, f"{path}.{key}", low, high)

    return BfdOptions(
        min_rx_ms=optional("required_min_rx_interval", 10, 60_000),
        min_tx_ms=optional("desired_min_tx_interval", 10, 60_000),
        multiplier=optional("detection_multiplier", 1, 255),
    )


def _peers_listed(notes: Mapping[str, str]) -> tuple[BgpPeer, ...]:
    """The older per-field annotations, matched by position; an empty item means "none"."""

    def parts(key: str) -> list[str]:
        return [part.strip() for part in notes.get(key, "").split(",")] if key in notes else []

    ips, asns = parts(PEER_IPS), parts(PEER_ASNS)
    passwords, locals_, ports = parts(PEER_PASSWORDS), parts(PEER_LOCAL_IPS), parts(PEER_PORTS)
    if len(ips) != len(asns):
        raise FieldError(annotation_path(PEER_ASNS), f"{len(asns)} AS numbers for {len(ips)} peers")
    for key, given in ((PEER_PASSWORDS, passwords), (PEER_LOCAL_IPS, locals_), (PEER_PORTS, ports)):
        if given and len(given) != len(ips):
            raise FieldError(annotation_path(key), f"{len(given)} items for {len(ips)} peers")
    peers = []
    for i, ip in enumerate(ips):
        port, local = ports[i] if ports else "", locals_[i] if locals_ else ""
        secret = passwords[i] if passwords else ""
        peers.append(
            BgpPeer(
                address=fields.ip_address(ip, annotation_path(PEER_IPS)),
                asn=asn(asns[i], annotation_path(PEER_ASNS)),
                port=number(port, annotation_path(PEER_PORTS), 1, 65535) if port else None,
                password=password(secret, annotation_path(PEER_PASSWORDS)),
                local_address=(
                    fields.ip_address(local, annotation_path(PEER_LOCAL_IPS)) if local else None
                ),
            )
        )
    return tuple(peers)


ANNOTATION_FIELDS: Mapping[str, str] = {
    ASN: "asn", RR_SERVER: "rr_server", RR_CLIENT: "rr_client", POD_CIDRS: "pod_cidrs",
    POD_CIDR: "pod_cidrs", LOCAL_ADDRESSES: "local_addresses", PREPEND_AS: "prepend",
    PREPEND_REPEAT: "prepend", COMMUNITIES: "communities", IMPORT_REJECT: "import_reject",
    PEERS: "peers", PEER_IPS: "peers", PEER_ASNS: "peers", PEER_PASSWORDS: "peers",
    PEER_LOCAL_IPS: "peers", PEER_PORTS: "peers",
}  # fmt: skip
