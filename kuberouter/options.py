"""Typed kube-router options, parsed from the command line with Go (pflag) semantics.

The flag table in `kuberouter.flags` is the source of truth; `Options` is its typed mirror
(checked at import). Values follow pflag: bools take `--f`, `--f=true|false|1|0`, never a
separate word; other flags take `--f=v` or `--f v`; slices are repeatable and comma
separated, the first use replacing the default; durations use Go's syntax and are stored
as float seconds. Only parsing happens here; cross-flag checks live in `kuberouter.cli`.
"""

from __future__ import annotations

import argparse
import functools
import socket
from collections.abc import Sequence
from typing import Any, NoReturn

import attrs

from kuberouter.flags import BY_NAME, BY_SHORT, FLAGS, Flag, Kind, go_quote, parse_value

# Flags accepted for compatibility that no controller acts on yet. Work that implements a
# flag removes it here; --help marks these and a non-default value logs a warning.
NOT_IMPLEMENTED: frozenset[str] = frozenset({
    # general
    "enable-pprof",
    # router (BGP): GoBGP's admin server is replaced by --bgp-control-socket; the BFD port
    # is the standard one (RFC 5881); AWS is not supported
    "disable-source-dest-check", "gobgp-admin-address", "gobgp-admin-port", "bfd-port",
    # service proxy (DSR, which needs the container runtime to enter pods' namespaces)
    "runtime-endpoint",
})  # fmt: skip


@attrs.frozen(kw_only=True)
class Options:
    """Every kube-router flag as a typed value; durations in seconds. See `kuberouter.flags`."""

    log_level: int
    kubeconfig: str
    master: str
    hostname_override: str
    cache_sync_timeout: float
    cleanup_config: bool
    enable_ipv4: bool
    enable_ipv6: bool
    run_router: bool
    run_service_proxy: bool
    run_firewall: bool
    run_loadbalancer: bool
    service_cluster_ip_range: tuple[str, ...]
    service_external_ip_range: tuple[str, ...]
    loadbalancer_ip_range: tuple[str, ...]
    enable_pprof: bool
    advertise_cluster_ip: bool
    advertise_external_ip: bool
    advertise_loadbalancer_ip: bool
    advertise_pod_cidr: bool
    advertise_service_cluster_ip_range: tuple[str, ...]
    bgp_graceful_restart: bool
    bgp_graceful_restart_time: float
    bgp_graceful_restart_deferral_time: float
    bgp_graceful_restart_ipv6: bool
    bgp_holdtime: float
    bgp_port: int
    cluster_asn: int
    enable_ibgp: bool
    nodes_full_mesh: bool
    router_id: str
    peer_router_ips: tuple[str, ...]
    peer_router_asns: tuple[int, ...]
    peer_router_ports: tuple[int, ...]
    peer_router_passwords: tuple[str, ...] = attrs.field(repr=False)
    peer_router_passwords_file: str
    peer_router_multihop_ttl: int
    override_nexthop: bool
    routes_sync_period: float
    injected_routes_sync_period: float
    disable_source_dest_check: bool
    bgp_control_socket: str
    gobgp_admin_address: str
    gobgp_admin_port: int
    enable_bfd: bool
    bfd_port: int
    bfd_detection_multiplier: int
    bfd_desired_min_tx_interval: int
    bfd_required_min_rx_interval: int
    enable_cni: bool
    auto_mtu: bool
    enable_overlay: bool
    overlay_type: str
    overlay_encap: str
    overlay_encap_port: int
    enable_pod_egress: bool
    service_proxy_mode: str
    ipvs_sync_period: float
    ipvs_graceful_termination: bool
    ipvs_graceful_period: float
    ipvs_permit_all: bool
    masquerade_all: bool
    hairpin_mode: bool
    nodeport_bindon_all_ip: bool
    service_node_port_range: str
    excluded_cidrs: tuple[str, ...]
    service_tcp_timeout: float
    service_tcpfin_timeout: float
    service_udp_timeout: float
    strict_external_ip_validation: bool
    runtime_endpoint: str
    iptables_sync_period: float
    netpol_default_deny: bool
    use_nftables_for_netpol: bool
    loadbalancer_default_class: bool
    loadbalancer_sync_period: float
    health_addr: str
    health_port: int
    metrics_addr: str
    metrics_port: int
    metrics_path: str

    @classmethod
    def defaults(cls) -> Options:
        return _defaults()

    def value(self, flag: Flag) -> Any:
        return getattr(self, flag.field)


def node_name(options: Options) -> str:
    """This node's name: --hostname-override, else the host's name."""
    return options.hostname_override or socket.gethostname()


@attrs.frozen(kw_only=True)
class CommandLine:
    options: Options
    show_help: bool
    show_version: bool


class OptionError(ValueError):
    """A command-line mistake, worded as one line that names the flag."""

    def __init__(self, message: str, *, flag: str = "", value: str | None = None) -> None:
        if flag:
            shown = "" if value is None else f" {go_quote(value)}"
            message = f"invalid --{flag}{shown}: {message}"
        super().__init__(message)
        self.flag = flag


# --- argv -> Options -------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, never usage + exit
        raise OptionError(message)


def _argparser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kube-router", add_help=False, allow_abbrev=False)
    for flag in FLAGS:
        parser.add_argument(f"--{flag.name}", dest=flag.name, action="append")
    return parser


def _with_value(flag: Flag, value: str | None, rest: list[str], shown: str) -> str:
    """`--flag=value` for argparse; a non-bool without `=` takes the next word, as pflag."""
    if value is not None:
        return f"--{flag.name}={value}"
    if flag.kind is Kind.BOOL:
        return f"--{flag.name}=true"
    if not rest:
        raise OptionError(f"flag needs an argument: {shown}")
    return f"--{flag.name}={rest.pop(0)}"


def _shorthands(word: str, rest: list[str]) -> list[str]:
    """`-V`, `-hV`, `-v3`, `-v=3`, `-v 3` as pflag reads them."""
    out, letters = [], word[1:]
    while letters:
        letter, letters = letters[0], letters[1:]
        flag = BY_SHORT.get(letter)
        if flag is None:
            raise OptionError(f"unknown shorthand flag: {letter!r} in {word}")
        value = None
        if letters.startswith("="):
            value, letters = letters[1:], ""
        elif letters and flag.kind is not Kind.BOOL:
            value, letters = letters, ""
        out.append(_with_value(flag, value, rest, f"-{letter}"))
    return out


def normalise(argv: Sequence[str]) -> list[str]:
    """Rewrite argv into `--name=value` words only, so argparse cannot guess."""
    out: list[str] = []
    rest = list(argv)
    while rest:
        word = rest.pop(0)
        if word == "--" or not word.startswith("-") or word == "-":
            extra = rest if word == "--" else [word, *rest]
            if extra:
                raise OptionError(
                    f"unexpected argument {go_quote(extra[0])} (kube-router takes none)"
                )
            break
        if not word.startswith("--"):
            out.extend(_shorthands(word, rest))
            continue
        name, eq, value = word[2:].partition("=")
        flag = BY_NAME.get(name)
        if flag is None:
            raise OptionError(f"unknown flag: --{name}")
        out.append(_with_value(flag, value if eq else None, rest, f"--{name}"))
    return out


def _collect(flag: Flag, given: list[str] | None) -> Any:
    """The flag's value: default, last use for scalars, all uses joined for slices."""
    values = []
    for text in given or [flag.default]:
        try:
            values.append(parse_value(flag, text))
        except ValueError as err:
            shown = None if flag.secret else text
            raise OptionError(str(err), flag=flag.name, value=shown) from None
    if flag.kind in (Kind.STRINGS, Kind.UINTS, Kind.IPS):
        return tuple(item for value in values for item in value)
    return values[-1]


def parse_command_line(argv: Sequence[str]) -> CommandLine:
    """Parse without cross-flag validation; raises OptionError naming the flag."""
    namespace = vars(_argparser().parse_args(normalise(argv)))
    values = {flag.name: _collect(flag, namespace[flag.name]) for flag in FLAGS}
    fields = {flag.field: values[flag.name] for flag in FLAGS if not flag.action}
    return CommandLine(
        options=Options(**fields),
        show_help=values["help"],
        show_version=values["version"],
    )


@functools.cache
def _defaults() -> Options:  # frozen, so one shared instance is safe
    return parse_command_line([]).options


def _check_table_matches_options() -> None:
    """Fail at import if a flag row and an Options field drift apart."""
    table = {flag.field for flag in FLAGS if not flag.action}
    fields = {field.name for field in attrs.fields(Options)}
    if table != fields or not NOT_IMPLEMENTED.issubset(BY_NAME):
        raise RuntimeError(f"flags/Options mismatch: {sorted(table ^ fields)}")


_check_table_matches_options()
