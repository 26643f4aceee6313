"""The top-of-rack router: FRR's bgpd in its own namespace on the fabric, every node a neighbor.

By default the ToR is AS 64512, the upstream kube-router default cluster ASN, so each node
peers with it over iBGP (agents get --cluster-asn/--peer-router-ips/--peer-router-asns to
match) and the ToR reflects each node's routes to the others. With `up --tor-asn` it has
an AS of its own: nodes in another AS (the cluster's, or with --nodes-full-mesh=false their
kube-router.io/node.asn) peer with it over eBGP, and it passes their routes on with the next
hop unchanged, as a route server does, so a pod CIDR still points at its node. With
`up --tor-password-file` every session is signed with TCP MD5 (RFC 2385): the ToR's
configuration holds the password (mode 0600) and the agents read it, base64 as upstream's
--peer-router-passwords-file wants it, from a 0600 file in the state directory.
bgpd runs without zebra (-Z), so it installs nothing in its namespace's kernel table; it
forwards between the fabric's subnets only (connected routes).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kuberouter.cluster import netns
from kuberouter.cluster.state import State
from kuberouter.cluster.topology import CLUSTER_ASN, Topology, TopologyError
from kuberouter.model.node_bgp import ASN as NODE_ASN
from kuberouter.options import OptionError, Options, parse_command_line

BGPD = Path("/usr/lib/frr/bgpd")
FRR_TMP = Path("/var/tmp/frr")  # FRR keeps a per-process crash-log folder here
ROLE = "tor-bgpd"
PASSWORD_FILE = "peer-passwords"  # in the ToR's directory: what the agents read
MAX_PASSWORD = 80  # the kernel's TCP_MD5SIG_MAXKEYLEN


def config(
    topology: Topology,
    log: Path,
    node_asns: Mapping[str, int] | None = None,
    password: str | None = None,
) -> str:
    """bgpd.conf: every node a neighbor in its AS (`node_asns`, the cluster's by default)."""
    asns = node_asns or {}
    lines = [
        "frr defaults datacenter",
        f"hostname {topology.tor_netns}",
        f"log file {log}",
        "!",
        f"router bgp {topology.tor_asn}",
        f" bgp router-id {topology.tor_ip}",
        " no bgp ebgp-requires-policy",
        " no bgp default ipv4-unicast",
        " neighbor NODES peer-group",
        " neighbor NODES timers connect 5",
    ]
    if password is not None:
        lines.append(f" neighbor NODES password {password}")
    for node in topology.nodes:
        asn = asns.get(node.name, CLUSTER_ASN)
        lines += [f" neighbor {node.ip} remote-as {asn}", f" neighbor {node.ip} peer-group NODES"]
    lines += [" address-family ipv4 unicast", "  neighbor NODES activate"]
    for node in topology.nodes:
        if asns.get(node.name, CLUSTER_ASN) == topology.tor_asn:
            # so nodes learn each other's pod CIDRs
            lines.append(f"  neighbor {node.ip} route-reflector-client")
        else:  # a route server's next hop: the node that has the pods
            lines.append(f"  neighbor {node.ip} attribute-unchanged next-hop")
    lines += [" exit-address-family", "!"]
    return "\n".join(lines) + "\n"


def node_asns(
    topology: Topology, annotations: Mapping[str, Mapping[str, str]], agent_args: Sequence[str]
) -> dict[str, int]:
    """Each node's AS as its agent takes it (upstream's rule): the cluster's, or with
    --nodes-full-mesh=false the node's kube-router.io/node.asn. `annotations` by node name;
    a value that is not an AS is the agent's to report (the cluster's is assumed here)."""
    options = agent_options(agent_args)
    cluster = options.cluster_asn or CLUSTER_ASN
    found = {}
    for node in topology.nodes:
        given = annotations.get(node.name, {}).get(NODE_ASN, "")
        per_node = not options.nodes_full_mesh and given.strip().isdigit()
        found[node.name] = int(given) if per_node else cluster
    return found


def agent_options(agent_args: Sequence[str]) -> Options:
    """The agents' options as the box starts them (defaults if the extra flags are wrong:
    the agents say so themselves)."""
    base = [f"--cluster-asn={CLUSTER_ASN}"]
    try:
        return parse_command_line([*base, *agent_args]).options
    except OptionError:
        return parse_command_line(base).options


def read_password(path: Path) -> str:
    """The MD5 password from a file (its first line): printable ASCII, no spaces."""
    try:
        text = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise TopologyError(f"--tor-password-file {path}: cannot read it ({err})") from None
    password = text[0].strip() if text else ""
    if not 1 <= len(password) <= MAX_PASSWORD or not all(33 <= ord(c) < 127 for c in password):
        raise TopologyError(
            f"--tor-password-file {path}: the first line must be 1..{MAX_PASSWORD} printable"
            " ASCII characters without spaces"
        )
    return password


def directory(state: State) -> Path:
    return state.path / "tor"


def argv(topology: Topology, state: State) -> list[str]:
    """bgpd's command line (its vty socket and pid file live in <state>/tor); it listens
    on its address in every subnet."""
    where = directory(state)
    listen = [word for subnet in topology.subnets for word in ("-l", subnet.tor_ip)]
    return [
        str(BGPD), "-f", str(where / "bgpd.conf"), "-i", str(where / "bgpd.pid"),
        "-Z", "-S", "-u", "root", "-g", "root", "--vty_socket", str(where), *listen,
    ]  # fmt: skip


def write_config(
    topology: Topology,
    state: State,
    node_asns: Mapping[str, int] | None = None,
    password: str | None = None,
) -> None:
    """bgpd.conf, and with a password the agents' copy of it (both 0600)."""
    where = directory(state)
    where.mkdir(exist_ok=True)
    conf = where / "bgpd.conf"
    _write_secret(conf, config(topology, where / "bgpd.log", node_asns, password))
    state.record_file(conf)
    if password is not None:
        _write_secret(password_file(state), base64.b64encode(password.encode()).decode() + "\n")
        state.record_file(password_file(state))


def password_file(state: State) -> Path:
    return directory(state) / PASSWORD_FILE


def agent_args(state: State) -> list[str]:
    """What the agents need to peer with this ToR beyond the box's defaults."""
    return [f"--peer-router-passwords-file={password_file(state)}"] if state.tor_md5 else []


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def sessions(state: State) -> dict[str, str]:
    """Neighbor address -> BGP state, as bgpd reports it (empty if it does not answer)."""
    return {address: str(peer.get("state", "?")) for address, peer in summary(state).items()}


def summary(state: State) -> dict[str, dict[str, Any]]:
    """Neighbor address -> what `show bgp ipv4 unicast summary json` says of it (state,
    remoteAs, pfxRcd, ...); empty if bgpd does not answer."""
    try:
        peers = vtysh(state, "show bgp ipv4 unicast summary json").get("peers", {})
    except (netns.CommandError, ValueError, OSError):
        return {}
    return {str(address): dict(peer) for address, peer in peers.items()}


def vtysh(state: State, command: str) -> dict[str, Any]:
    """One `vtysh -c COMMAND` (a JSON one) against the ToR's bgpd; raises CommandError."""
    program = shutil.which("vtysh")
    if program is None:
        raise netns.CommandError("vtysh is not installed")
    argv = [program, "--vty_socket", str(directory(state)), "-d", "bgpd", "-c", command]
    # the vty socket is a file: no need to enter the ToR's namespace
    answer = json.loads(netns.run(argv, timeout=10) or "{}")
    return answer if isinstance(answer, dict) else {}


def remove_crash_dir(pid: int) -> None:
    """FRR removes /var/tmp/frr/bgpd.<pid> when it exits cleanly; not when killed."""
    shutil.rmtree(FRR_TMP / f"bgpd.{pid}", ignore_errors=True)
