"""The `pybgp` command."""

from __future__ import annotations

import argparse
import sys

from pybgp import __version__, client_cli, codec_cli
from pybgp.control import DEFAULT_SOCKET


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pybgp", description="pybgp: a BGP-4 speaker's command-line tool"
    )
    parser.add_argument("-V", "--version", action="version", version=f"pybgp {__version__}")
    parser.add_argument(
        "--socket",
        default=DEFAULT_SOCKET,
        help=f"pybgpd's control socket (default {DEFAULT_SOCKET})",
    )
    parser.add_argument("-j", "--json", action="store_true", help="print JSON")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    client_cli.add_commands(commands)
    codec_cli.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command in ("decode", "encode"):
        return codec_cli.main_stdio(args)
    return client_cli.main_client(args)


if __name__ == "__main__":
    sys.exit(main())
