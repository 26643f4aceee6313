"""The `pybgp` command."""

from __future__ import annotations

import argparse
import sys

from pybgp import __version__, codec_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pybgp", description="pybgp: a BGP-4 speaker's command-line tool"
    )
    parser.add_argument("-V", "--version", action="version", version=f"pybgp {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    codec_cli.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return codec_cli.main_stdio(args)


if __name__ == "__main__":
    sys.exit(main())
