"""`kube-router-ctl cluster up|status|load|down`: the cluster in a box (see kuberouter.cluster)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from kuberouter import cluster
from kuberouter.cluster.agents import AgentError
from kuberouter.cluster.api import ApiError, ManifestError
from kuberouter.cluster.containers import ImageError
from kuberouter.cluster.netns import CommandError
from kuberouter.cluster.state import default_state_dir
from kuberouter.cluster.topology import TOR_ASN

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
FAILURES = (cluster.UpError, ApiError, AgentError, CommandError, ImageError, OSError)


def register(groups: Any) -> None:
    group = groups.add_parser(
        "cluster", help="a local cluster in network namespaces: up, status, load, down (root)",
        description=cluster.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)

    up = commands.add_parser("up", help="build the cluster and start its agents")
    _common(up)
    up.add_argument("--nodes", type=int, default=3, help="number of nodes (3)")
    up.add_argument("--pods-per-node", type=int, default=2, help="pods on each node (2)")
    _files(up, required=False)
    up.add_argument(
        "--agent-arg", dest="agent_args", action="append", default=[], metavar="FLAG",
        help="an extra kube-router flag for every agent, written with '=', e.g. "
        "--agent-arg=--run-firewall (repeatable; later flags win over the box's defaults "
        "--run-firewall=false --service-proxy-mode=nftables)",
    )  # fmt: skip
    up.add_argument(
        "--no-workloads", dest="workloads", action="store_false",
        help="leave the pods bare network namespaces (by default each runs a workload that "
        "answers TCP, UDP and SCTP with the pod's name)",
    )  # fmt: skip
    up.add_argument(
        "--agent-image", default="", metavar="IMAGE",
        help="run each node's agent from this local image (scripts/agent-image.sh), as a "
        "privileged container in the node's namespace, as a hostNetwork pod runs",
    )  # fmt: skip
    up.add_argument(
        "--no-static-routes", dest="static_routes", action="store_false",
        help="do not route pod CIDRs between nodes statically (leave it to the routing "
        "controller, over BGP via the ToR)",
    )  # fmt: skip
    up.add_argument("--subnets", type=int, default=1, metavar="N",
                    help="fabric subnets, routed by the ToR; nodes take turns (1)")  # fmt: skip
    up.add_argument(
        "--node-annotation", dest="node_annotations", action="append", default=[],
        metavar="NODE:KEY=VALUE",
        help="an annotation on a Node object from the start, e.g. "
        "node2:kube-router.io/rr.client=42 (NODE: node<i> or its full name; repeatable)",
    )  # fmt: skip
    up.add_argument(
        "--tor-asn", type=int, default=TOR_ASN, metavar="ASN",
        help=f"the ToR's AS ({TOR_ASN}, the agents' cluster ASN: iBGP, the ToR reflects); "
        "another makes the sessions eBGP, e.g. with --agent-arg=--nodes-full-mesh=false and "
        "per-node kube-router.io/node.asn annotations",
    )  # fmt: skip
    up.add_argument(
        "--tor-password-file", type=Path, metavar="FILE",
        help="sign every ToR session with TCP MD5, this password (the file's first line) on "
        "both sides; the agents get it with --peer-router-passwords-file",
    )  # fmt: skip
    up.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                    help="for the API server, agents and BGP sessions to come up (60)")  # fmt: skip
    up.add_argument("--keep-on-failure", action="store_true",
                    help="leave a failed cluster in place to look at (then run down)")  # fmt: skip
    up.set_defaults(run=run_up)

    status = commands.add_parser(
        "status", help="nodes, pods, agent health, each node's and the ToR's BGP sessions"
    )
    _common(status)
    status.set_defaults(run=run_status)

    load = commands.add_parser("load", help="create or replace objects from YAML")
    _common(load)
    _files(load, required=True)
    load.set_defaults(run=run_load)

    agent = commands.add_parser(
        "agent", help="stop, start or restart nodes' agents (stop is a SIGTERM, as a kubelet's)"
    )
    _common(agent)
    agent.add_argument("action", choices=["stop", "start", "restart"])
    agent.add_argument("nodes", nargs="+", metavar="NODE", help="node<i> or its full name")
    agent.set_defaults(run=run_agent)

    down = commands.add_parser("down", help="remove everything the cluster made")
    _common(down)
    down.set_defaults(run=run_down)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", default="krbox",
                        help="cluster name, the prefix of all its names (krbox)")  # fmt: skip
    parser.add_argument("--state-dir", type=Path,
                        help="state directory (/run/kube-router-cluster/<name>)")  # fmt: skip


def _files(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "-f", "--filename", dest="files", action="extend", nargs="+", default=[],
        required=required, metavar="FILE",
        help="YAML with Services, EndpointSlices, NetworkPolicies... ('-' for stdin)",
    )  # fmt: skip


def _state_dir(args: argparse.Namespace) -> Path:
    return (args.state_dir or default_state_dir(args.name)).absolute()


def run_up(args: argparse.Namespace) -> int:
    options = cluster.UpOptions(
        name=args.name, nodes=args.nodes, pods_per_node=args.pods_per_node,
        state_dir=_state_dir(args), manifests=args.files, agent_args=args.agent_args,
        static_routes=args.static_routes, timeout=args.timeout,
        keep_on_failure=args.keep_on_failure, subnets=args.subnets,
        node_annotations=args.node_annotations, tor_asn=args.tor_asn,
        tor_password_file=args.tor_password_file, agent_image=args.agent_image,
        workloads=args.workloads, say=say,
    )  # fmt: skip
    return _guarded(lambda: cluster.up(options))


def run_status(args: argparse.Namespace) -> int:
    return _guarded(lambda: cluster.status(args.name, _state_dir(args), say))


def run_load(args: argparse.Namespace) -> int:
    return _guarded(lambda: cluster.load(args.name, _state_dir(args), args.files, say))


def run_agent(args: argparse.Namespace) -> int:
    return _guarded(
        lambda: cluster.agent(args.name, _state_dir(args), args.action, args.nodes, say)
    )


def run_down(args: argparse.Namespace) -> int:
    return _guarded(lambda: cluster.down(args.name, _state_dir(args), say))


def say(message: str) -> None:
    """Print a progress line; a closed stdout (`| head`) must not stop `up` or `down`."""
    try:
        print(message, flush=True)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the exit flush does not fail either
        os.close(devnull)


def _guarded(action: Any) -> int:
    """Run a subcommand as root; a failure is one line on stderr (usage errors exit 2)."""
    if os.geteuid() != 0:
        return _fail("the cluster in a box needs root (network namespaces)", EXIT_FAILED)
    try:
        result = action()
    except (cluster.TopologyError, ManifestError) as err:
        return _fail(str(err), EXIT_USAGE)
    except FAILURES as err:
        return _fail(str(err), EXIT_FAILED)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return result if isinstance(result, int) else 0


def _fail(message: str, code: int) -> int:
    print(f"kube-router-ctl: error: {message}", file=sys.stderr)
    return code
