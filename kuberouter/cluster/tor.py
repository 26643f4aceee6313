"""The top-of-rack router: FRR's bgpd in its own namespace on the fabric, every node a neighbor.

The ToR is AS 64512, the upstream kube-router default cluster ASN, so each node peers with
it over iBGP (agents get --cluster-asn/--peer-router-ips/--peer-router-asns to match) and
the ToR reflects each node's pod CIDR to the others. Until the agent speaks BGP the
sessions stay Active/Idle; the configuration is ready for when it does. bgpd runs without
zebra (-Z), so it installs nothing in its namespace's kernel table: it is a route server.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from kuberouter.cluster import netns
from kuberouter.cluster.state import State
from kuberouter.cluster.topology import CLUSTER_ASN, TOR_ASN, Topology

BGPD = Path("/usr/lib/frr/bgpd")
FRR_TMP = Path("/var/tmp/frr")  # FRR keeps a per-process crash-log folder here
ROLE = "tor-bgpd"


def config(topology: Topology, log: Path) -> str:
    lines = [
        "frr defaults datacenter",
        f"hostname {topology.tor_netns}",
        f"log file {log}",
        "!",
        f"router bgp {TOR_ASN}",
        f" bgp router-id {topology.tor_ip}",
        " no bgp ebgp-requires-policy",
        " no bgp default ipv4-unicast",
        " neighbor NODES peer-group",
        f" neighbor NODES remote-as {CLUSTER_ASN}",
        " neighbor NODES timers connect 5",
    ]
    lines += [f" neighbor {node.ip} peer-group NODES" for node in topology.nodes]
    lines += [
        " address-family ipv4 unicast",
        "  neighbor NODES activate",
        "  neighbor NODES route-reflector-client",  # so nodes learn each other's pod CIDRs
        " exit-address-family",
        "!",
    ]
    return "\n".join(lines) + "\n"


def directory(state: State) -> Path:
    return state.path / "tor"


def argv(topology: Topology, state: State) -> list[str]:
    """bgpd's command line (its vty socket and pid file live in <state>/tor)."""
    where = directory(state)
    return [
        str(BGPD), "-f", str(where / "bgpd.conf"), "-i", str(where / "bgpd.pid"),
        "-Z", "-S", "-u", "root", "-g", "root", "--vty_socket", str(where),
        "-l", topology.tor_ip,
    ]  # fmt: skip


def write_config(topology: Topology, state: State) -> None:
    where = directory(state)
    where.mkdir(exist_ok=True)
    conf = where / "bgpd.conf"
    conf.write_text(config(topology, where / "bgpd.log"))
    state.record_file(conf)


def sessions(state: State) -> dict[str, str]:
    """Neighbor address -> BGP state, as bgpd reports it (empty if it does not answer)."""
    vtysh = shutil.which("vtysh")
    if vtysh is None:
        return {}
    command = [vtysh, "--vty_socket", str(directory(state)), "-d", "bgpd",
               "-c", "show bgp ipv4 unicast summary json"]  # fmt: skip
    try:  # the vty socket is a file: no need to enter the ToR's namespace
        text = netns.run(command, timeout=10)
        peers = json.loads(text).get("peers", {})
    except (netns.CommandError, ValueError, OSError):
        return {}
    return {address: str(peer.get("state", "?")) for address, peer in peers.items()}


def remove_crash_dir(pid: int) -> None:
    """FRR removes /var/tmp/frr/bgpd.<pid> when it exits cleanly; not when killed."""
    shutil.rmtree(FRR_TMP / f"bgpd.{pid}", ignore_errors=True)
