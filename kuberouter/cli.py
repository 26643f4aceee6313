"""`kube-router`: parse and check the upstream-compatible command line, then run the agent.

Every command-line mistake is refused before anything starts: one line on stderr that names
the flag, exit code 2. Checks mirror upstream kube-router's (where it refuses at start or
would fail later, we refuse at once) and apply whether or not the owning controller runs.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import platform
import re
import sys
import textwrap
from collections.abc import Sequence
from typing import Any, TextIO

from kuberouter.flags import (
    BY_NAME,
    FLAGS,
    POSITIVE,
    Flag,
    Group,
    format_value,
    go_quote,
)
from kuberouter.options import NOT_IMPLEMENTED, OptionError, Options, parse_command_line
from kuberouter.version import __version__

logger = logging.getLogger("kuberouter")

EXIT_USAGE = 2
NOT_IMPLEMENTED_NOTE = "(accepted, not implemented yet)"
_FOREVER = float("inf")
# Upstream's cluster ASN must be private (RFC 6996); 0 means 64512.
_CLUSTER_ASNS = ((64512, 65535), (4200000000, 4294967294))
# Upstream refuses reserved peer ASNs: 0, 23456 (AS_TRANS), 64000-64511, 65535-131071, 2**32-1.
_PEER_ASNS = ((1, 23455), (23457, 63999), (64512, 65534), (131072, 4294967294))
_PORT_RANGE = re.compile(r"([0-9]+)[:-]([0-9]+)")
_CIDR_FLAGS = (
    "service-cluster-ip-range",
    "service-external-ip-range",
    "loadbalancer-ip-range",
    "advertise-service-cluster-ip-range",
)


# --- help and version ------------------------------------------------------------------------


def render_help() -> str:
    lines = ["Usage: kube-router [flags]", ""]
    for group in Group:
        lines.append(f"{group.value}:")
        for flag in (f for f in FLAGS if f.group is group):
            short = f"-{flag.short}, " if flag.short else "    "
            lines.append(f"  {short}--{flag.name} {flag.kind.value}".rstrip())
            lines.extend(_wrap(_help_text(flag)))
        lines.append("")
    return "\n".join(lines)


def _wrap(text: str) -> list[str]:
    """Indented and wrapped; a parenthesised note such as "(default 5m0s)" is never split."""
    glued = re.sub(r"\((?:default|accepted) [^()]*\)", lambda m: m[0].replace(" ", "\0"), text)
    lines = textwrap.wrap(glued, 92, initial_indent=" " * 8, subsequent_indent=" " * 8)
    return [line.replace("\0", " ") for line in lines]


def default_text(flag: Flag) -> str:
    """The default as --help shows it; empty for a zero value (false, 0, "", [])."""
    default = format_value(flag, Options.defaults().value(flag)) if not flag.action else ""
    return "" if default in ("", "0", "0s", "false") else default


def _help_text(flag: Flag) -> str:
    text = flag.help
    if default := default_text(flag):
        text += f" (default {default})"
    if flag.name in NOT_IMPLEMENTED:
        text += f" {NOT_IMPLEMENTED_NOTE}"
    return text


def version_line() -> str:
    return f"Running kube-router version {__version__}, Python {platform.python_version()}"


# --- validation ------------------------------------------------------------------------------


def validate(opts: Options) -> list[str]:
    """Refuse a bad command line with OptionError; return warnings for dubious ones."""
    if not (opts.enable_ipv4 or opts.enable_ipv6):
        raise OptionError(
            "at least one of --enable-ipv4 and --enable-ipv6 must be true",
            flag="enable-ipv4",
            value="false",
        )
    _check_cidrs(opts)
    for flag in (f for f in FLAGS if not f.action):
        _check_bounds(flag, opts.value(flag))
    _check_node_port_range(opts.service_node_port_range)
    _check_asn(
        "cluster-asn",
        opts.cluster_asn,
        _CLUSTER_ASNS,
        "0 (meaning 64512) or a private ASN",
        zero=True,
    )
    if opts.router_id not in ("", "generate"):
        try:
            ipaddress.IPv4Address(opts.router_id)
        except ValueError:
            raise OptionError(
                'must be an IPv4 address or "generate"', flag="router-id", value=opts.router_id
            ) from None
    if not opts.metrics_path.startswith("/"):
        raise OptionError('must start with "/"', flag="metrics-path", value=opts.metrics_path)
    return _check_peers(opts)


def _network(flag: str, text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """Go's net.ParseCIDR: address/prefix, host bits allowed (10.96.0.1/12)."""
    address, slash, prefix = text.partition("/")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise OptionError("not a CIDR (address/prefix)", flag=flag, value=text) from None
    if not slash:
        raise OptionError("missing /prefix-length", flag=flag, value=text)
    if not re.fullmatch(r"[0-9]{1,3}", prefix) or int(prefix) > ip.max_prefixlen:
        raise OptionError(f"prefix length must be 0-{ip.max_prefixlen}", flag=flag, value=text)
    return ipaddress.ip_network(f"{ip}/{prefix}", strict=False)


def _check_cidrs(opts: Options) -> None:
    for flag in (BY_NAME[name] for name in _CIDR_FLAGS):
        for text in opts.value(flag):
            family = _network(flag.name, text).version
            if not (opts.enable_ipv4 if family == 4 else opts.enable_ipv6):
                raise OptionError(
                    f"an IPv{family} range needs --enable-ipv{family}", flag=flag.name, value=text
                )
    for text in opts.excluded_cidrs:
        _network("excluded-cidrs", text)
    ranges = opts.service_cluster_ip_range
    if not 1 <= len(ranges) <= 2:
        raise OptionError(
            "give one range, or two (one per family) for dual-stack",
            flag="service-cluster-ip-range",
            value=",".join(ranges),
        )


def _check_bounds(flag: Flag, value: Any) -> None:
    """The table's low/high/choices; upstream's limits, holdtime capped at 16 bits (RFC 4271)."""
    if flag.choices and value not in flag.choices:
        raise OptionError(f"must be one of {', '.join(flag.choices)}", flag=flag.name, value=value)
    if flag.low is None and flag.high is None:
        return
    low = -_FOREVER if flag.low is None else flag.low
    high = _FOREVER if flag.high is None else flag.high
    if low <= value <= high:
        return
    if flag.low == POSITIVE:
        most = "" if flag.high is None else f" and at most {format_value(flag, high)}"
        why = f"must be greater than 0{most}"
    elif flag.high is None:
        why = f"must be at least {format_value(flag, low)}"
    else:
        why = f"must be in the range {format_value(flag, low)} to {format_value(flag, high)}"
    raise OptionError(why, flag=flag.name, value=format_value(flag, value))


def _check_node_port_range(text: str) -> None:
    match = _PORT_RANGE.fullmatch(text)
    flag = "service-node-port-range"
    if not match:
        raise OptionError("want two ports joined by - or :", flag=flag, value=text)
    low, high = int(match[1]), int(match[2])
    if high > 65535:
        raise OptionError("ports must be 0-65535", flag=flag, value=text)
    if low >= high:
        raise OptionError("the first port must be lower than the second", flag=flag, value=text)


def _check_asn(
    flag: str, asn: int, ranges: tuple[tuple[int, int], ...], want: str, *, zero: bool = False
) -> None:
    if not (zero and asn == 0) and not any(low <= asn <= high for low, high in ranges):
        spans = ", ".join(f"{low}-{high}" for low, high in ranges)
        raise OptionError(f"must be {want}: {spans}", flag=flag, value=str(asn))


def _check_peers(opts: Options) -> list[str]:
    count = len(opts.peer_router_ips)
    _check_count("peer-router-asns", opts.peer_router_asns, count, optional=False)
    _check_count("peer-router-ports", opts.peer_router_ports, count)
    for asn in opts.peer_router_asns:
        _check_asn("peer-router-asns", asn, _PEER_ASNS, "a public or private ASN")
    for port in opts.peer_router_ports:
        if port > 65535:
            raise OptionError("ports must be 0-65535", flag="peer-router-ports", value=str(port))
    if opts.peer_router_passwords:
        _check_passwords("peer-router-passwords", opts.peer_router_passwords, count)
        if opts.peer_router_passwords_file:
            return ["--peer-router-passwords-file is ignored: --peer-router-passwords is set"]
    elif opts.peer_router_passwords_file:
        path = opts.peer_router_passwords_file
        try:
            with open(path, encoding="utf-8") as file:
                passwords = tuple(file.read().split(","))
        except (OSError, UnicodeDecodeError) as err:
            raise OptionError(
                f"cannot read: {err}", flag="peer-router-passwords-file", value=path
            ) from None
        _check_passwords("peer-router-passwords-file", passwords, count)
    return []


def _check_count(flag: str, items: Sequence[object], peers: int, *, optional: bool = True) -> None:
    if len(items) != peers and not (optional and not items):
        needed = "none or one" if optional else "one"
        raise OptionError(
            f"{len(items)} given for {peers} --peer-router-ips; give {needed} per peer",
            flag=flag,
            value=",".join(str(item) for item in items),
        )


def _check_passwords(flag: str, passwords: Sequence[str], peers: int) -> None:
    """Base64 as Go's StdEncoding reads it (line breaks ignored); never echo a password."""
    if len(passwords) != peers:
        raise OptionError(
            f"{len(passwords)} passwords for {peers} --peer-router-ips; give one per peer "
            '(empty items for peers without one: "pass,,pass")',
            flag=flag,
        )
    for position, password in enumerate(passwords, 1):
        try:
            base64.b64decode(password.replace("\r", "").replace("\n", ""), validate=True)
        except (binascii.Error, ValueError):
            raise OptionError(f"password {position} is not valid base64", flag=flag) from None


# --- main ------------------------------------------------------------------------------------


class _CliHandler(logging.StreamHandler[TextIO]):
    """Our stderr handler, told apart so a second main() call replaces it."""


def _setup_logging() -> None:
    for old in [h for h in logger.handlers if isinstance(h, _CliHandler)]:
        logger.removeHandler(old)
    handler = _CliHandler(sys.stderr)
    # klog's header, as upstream's: level, date, time to the millisecond here, pid, source.
    fmt = "%(levelname).1s%(asctime)s.%(msecs)03d %(process)d %(name)s] %(message)s"
    handler.setFormatter(logging.Formatter(fmt, datefmt="%m%d %H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _not_implemented_in_use(opts: Options) -> list[str]:
    defaults = Options.defaults()
    return [
        f"--{flag.name} is set but not implemented yet; it has no effect"
        for flag in FLAGS
        if flag.name in NOT_IMPLEMENTED and opts.value(flag) != defaults.value(flag)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """The `kube-router` command; returns the exit code."""
    try:
        command = parse_command_line(sys.argv[1:] if argv is None else argv)
        if command.show_help:
            sys.stdout.write(render_help())
            return 0
        if command.show_version:
            print(version_line())
            return 0
        opts = command.options
        warnings = validate(opts)
    except OptionError as err:
        one_line = str(err).replace("\r", "\\r").replace("\n", "\\n")
        print(f"kube-router: {one_line}", file=sys.stderr)
        return EXIT_USAGE
    _setup_logging()
    for warning in warnings + _not_implemented_in_use(opts):
        logger.warning("%s", warning)
    if opts.log_level >= 3:
        for flag in (f for f in FLAGS if not f.action):
            logger.info("FLAG: --%s=%s", flag.name, go_quote(format_value(flag, opts.value(flag))))
    if opts.cleanup_config:
        return _run_cleanup(opts)
    if not (
        opts.run_router or opts.run_service_proxy or opts.run_firewall or opts.run_loadbalancer
    ):
        logger.info(
            "Router, Firewall, Service proxy or LoadBalancer functionality must be specified."
            " Exiting!"
        )
        return 0
    return _run_agent(opts)


def _run_cleanup(opts: Options) -> int:
    """--cleanup-config: remove what every controller creates, then exit (1 if any failed)."""
    from kuberouter.agent import cleanup  # noqa: PLC0415 (kept off the path of --help)

    return 0 if cleanup(opts) else 1


def _run_agent(opts: Options) -> int:
    import trio  # noqa: PLC0415 (kept off the path of --help and flag errors)

    from kuberouter.agent import run_agent  # noqa: PLC0415
    from kuberouter.k8s import CacheSyncTimeout, ConfigError  # noqa: PLC0415

    try:
        trio.run(run_agent, opts)
    except (CacheSyncTimeout, ConfigError) as exc:
        logger.error("%s", exc)
        return 1
    return 0
