"""The `pybgp` command."""

from __future__ import annotations

import argparse
import os
import sys

from pybgp import __version__, client_cli, client_monitor, codec_cli
from pybgp.control import DEFAULT_SOCKET
from pybgp.mrt.cli import run_mrt


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
    client_monitor.add_command(commands)
    codec_cli.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "decode" and args.mrt:
            args.run = lambda args, _stdin, stdout: run_mrt(args, stdout)
        if args.command in ("decode", "encode"):
            return codec_cli.main_stdio(args)
        return client_cli.main_client(args)
    except BrokenPipeError:
        # The reader went (`pybgp -j neighbor | head`): stop quietly, as cat does. Output
        # still buffered goes to /dev/null, or flushing it at exit would fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command killed by it
    except KeyboardInterrupt:  # Ctrl-C ends `pybgp monitor`
        return 130


if __name__ == "__main__":
    sys.exit(main())
