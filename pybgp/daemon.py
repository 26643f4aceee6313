"""pybgpd: the daemon. `pybgpd -c FILE.toml [--socket PATH] [--fib]`.

One root trio nursery: the speaker (listener and one task per peer), the control socket,
and the signal watcher. SIGHUP reloads the file: neighbours whose settings did not change
keep their sessions; SIGTERM/SIGINT stop cleanly (and flush --fib routes).

With [global.graceful_restart] enabled, SIGTERM is a graceful stop (RFC 4724): no Cease,
--fib routes left in the kernel, and a note beside the control socket (SOCKET.restart), so
that a start within the restart time announces the Restart State bit and defers its
selection until the peers' End-of-RIB. SIGINT still stops cleanly.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

import trio

from pybgp import __version__
from pybgp.api import Speaker
from pybgp.config import DaemonConfig, load
from pybgp.config_values import ConfigError
from pybgp.control import DEFAULT_SOCKET, ControlError, serve_control
from pybgp.mrt.dumper import dumpers
from pybgp.speaker.monitor import monitor

log = logging.getLogger("pybgpd")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pybgpd", description="pybgp's BGP-4 daemon")
    parser.add_argument(
        "-c", "--config", required=True, metavar="FILE.toml", help="configuration file"
    )
    parser.add_argument(
        "--socket",
        default=DEFAULT_SOCKET,
        help=f"control socket (default {DEFAULT_SOCKET}, mode 0600)",
    )
    parser.add_argument(
        "--fib",
        action="store_true",
        help="install best paths into the kernel routing table (needs pyroute2)",
    )
    parser.add_argument(
        "--fib-table",
        type=int,
        default=254,
        metavar="N",
        help="routing table for --fib (default 254, main)",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)"
    )
    parser.add_argument("-V", "--version", action="version", version=f"pybgpd {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"pybgpd: {exc}", file=sys.stderr)
        return 2
    # A full table is millions of long-lived objects: collect the young generation less
    # often (each collection walks it) and leave the old one to the long-lived heuristic.
    gc.set_threshold(50_000, 20, 100)
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(serve, config, args)
    return 0


async def serve(config: DaemonConfig, args: argparse.Namespace) -> None:
    fib = None
    if args.fib:
        from pybgp.fib import Fib, FibError  # noqa: PLC0415 (optional dependency)

        try:
            fib = Fib(table=args.fib_table)
        except FibError as exc:
            log.error("%s", exc)
            raise SystemExit(2) from None
    restarting = _restarting(args.socket, config)
    if restarting:
        log.info("restarting gracefully: selection waits for the peers' End-of-RIB")
    speaker = Speaker.from_config(config, fib=fib, restarting=restarting)
    dumps = dumpers(config.mrt, speaker)
    async with trio.open_nursery() as nursery:
        await nursery.start(speaker.run)
        for dump in dumps:
            nursery.start_soon(dump.run)
        await nursery.start(serve_control, args.socket, lambda req: handle(speaker, req))
        log.info(
            "pybgpd %s up: AS %d, router id %s",
            __version__,
            config.global_.asn,
            config.global_.router_id,
        )
        await watch_signals(speaker, args, nursery)


async def watch_signals(speaker: Speaker, args: argparse.Namespace, nursery: trio.Nursery) -> None:
    with trio.open_signal_receiver(signal.SIGHUP, signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            if signum == signal.SIGHUP:
                try:
                    speaker.reconfigure(load(args.config))
                    log.info("configuration reloaded from %s", args.config)
                except ConfigError as exc:
                    log.error("reload refused, configuration kept: %s", exc)
                continue
            log.info("stopping (signal %d)", signum)
            graceful = signum == signal.SIGTERM and speaker.restart.enabled
            await speaker.shutdown(graceful=graceful)
            if graceful:
                _restart_note(args.socket).write_text(f"{time.time()}\n")
            nursery.cancel_scope.cancel()
            return


def _restart_note(socket_path: str) -> Path:
    return Path(f"{socket_path}.restart")


def _restarting(socket_path: str, config: DaemonConfig) -> bool:
    """A graceful stop left its note, recently enough that peers still hold our routes."""
    note = _restart_note(socket_path)
    try:
        stopped = float(note.read_text())
    except (OSError, ValueError):
        return False
    note.unlink(missing_ok=True)
    restart = config.global_.graceful_restart
    return restart.enabled and time.time() - stopped <= restart.restart_time


async def handle(speaker: Speaker, request: dict[str, Any]) -> Any:
    """The control socket's commands (see pybgp.client_cli for the client side)."""
    try:
        return _dispatch(speaker, request)
    except ValueError as exc:  # a bad argument (ConfigError too): the reply says why
        raise ControlError(str(exc)) from None


def _dispatch(speaker: Speaker, request: dict[str, Any]) -> Any:
    command = request["command"]
    if command == "neighbors":
        return speaker.neighbors(request.get("address"))
    if command == "rib":
        return speaker.rib_json(request.get("family"), request.get("prefix"))
    if command == "rib_add":
        return speaker.announce_json(request.get("route") or {})
    if command == "rib_del":
        return speaker.withdraw(str(request.get("prefix")))
    if command == "neighbor_reset":
        return speaker.reset_peer(str(request.get("address")), soft=bool(request.get("soft")))
    if command == "adj_rib":
        return speaker.adj_rib_json(
            str(request.get("address")), str(request.get("direction")), request.get("family")
        )
    if command == "monitor":
        return monitor(
            speaker,
            rib=bool(request.get("rib", True)),
            peers=bool(request.get("peers", True)),
            family=request.get("family"),
            address=request.get("address"),
        )
    if command == "policy":
        return speaker.policy_json()
    if command == "explain":
        return speaker.explain_json(
            str(request.get("prefix")),
            str(request.get("address")),
            str(request.get("direction", "export")),
        )
    raise ControlError(f"unknown command {command!r}")


if __name__ == "__main__":
    sys.exit(main())
