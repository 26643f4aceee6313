"""kube-router-ctl: operator tools. Each command group registers itself on the parser.

Exit status: 0 success, 2 bad usage or unusable input (one line on stderr naming it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kuberouter.ctl import cluster, policy, service
from kuberouter.ctl.inputs import InputError

EXIT_OK = 0
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kube-router-ctl", description=__doc__)
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    policy.register(groups)
    cluster.register(groups)
    service.register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(sys.argv[1:] if argv is None else list(argv))
    if extra and not getattr(args, "agent_flags", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    try:
        status: int = args.run(args)
    except InputError as err:
        print(f"kube-router-ctl: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. piped into `head`
        return EXIT_OK
    return status
