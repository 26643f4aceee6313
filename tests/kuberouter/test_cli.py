"""The kube-router command line: upstream flag parity, Go value syntax, validation, --help, -V."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import attrs
import pytest

from kuberouter import agent, cli
from kuberouter.controllers import firewall
from kuberouter.flags import (
    BY_NAME,
    BY_SHORT,
    FLAGS,
    Group,
    Kind,
    format_value,
    parse_duration,
    parse_value,
)
from kuberouter.options import NOT_IMPLEMENTED, OptionError, Options, parse_command_line
from kuberouter.version import __version__

REPO = Path(__file__).parents[2]
# Upstream kube-router v2.11's flags and the fork's two, with shorthands, types and defaults.
UPSTREAM = REPO / "fixtures" / "upstream" / "kube-router-flags.csv"
# Where we differ on purpose: -v takes a log level, so a number (upstream: any string).
TYPE_DIFFERENCES = {"v": "int"}
# Ours: the embedded speaker's control socket (upstream's GoBGP gRPC has no such) and the
# service proxy's kernel load balancer (ipvs, as upstream, or nftables).
OWN_FLAGS = {"bgp-control-socket", "service-proxy-mode"}
SAMPLE = {  # a valid value per kind, for flags whose default is empty
    Kind.STRING: "x", Kind.STRINGS: "10.0.0.0/8", Kind.UINTS: "65000", Kind.IPS: "192.0.2.1",
    Kind.DURATION: "1s", Kind.UINT8: "1", Kind.UINT16: "1", Kind.UINT32: "1", Kind.UINT: "1",
    Kind.INT32: "1",
}  # fmt: skip


def parse(*argv: str) -> Options:
    return parse_command_line(argv).options


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "kuberouter", *argv]
    return subprocess.run(
        command, check=False, capture_output=True, text=True, cwd=REPO, timeout=60
    )


# --- parity with upstream ----------------------------------------------------------------------


def upstream_flags() -> dict[str, dict[str, str]]:
    """fixtures/upstream/kube-router-flags.csv: flag -> shorthand, type, default, origin."""
    with UPSTREAM.open(newline="", encoding="utf-8") as stream:
        return {row["flag"]: row for row in csv.DictReader(stream)}


def lookup(name: str) -> tuple[str, ...]:
    """argv that sets a flag to a valid value."""
    flag = BY_NAME[name]
    if flag.kind is Kind.BOOL:
        return (f"--{name}",)
    return (f"--{name}", flag.default or SAMPLE[flag.kind])


def test_the_upstream_list_is_read() -> None:
    rows = upstream_flags()
    origins = Counter(row["origin"] for row in rows.values())
    assert origins == {"upstream": 79, "fork": 2}
    assert rows["cache-sync-timeout"]["default"] == "1m"
    assert rows["peer-router-ips"]["type"] == "ipSlice"
    assert rows["version"]["shorthand"] == "V"


def test_flag_set_is_upstream_plus_fork_plus_ours() -> None:
    assert {flag.name for flag in FLAGS} == set(upstream_flags()) | OWN_FLAGS


@pytest.mark.parametrize("name", sorted(upstream_flags()))
def test_upstream_flag(name: str) -> None:
    row, flag = upstream_flags()[name], BY_NAME[name]
    assert flag.short == row["shorthand"]
    if row["shorthand"]:
        assert BY_SHORT[row["shorthand"]] is flag
    assert (flag.kind.value or "bool") == TYPE_DIFFERENCES.get(name, row["type"])
    if name in ("help", "version"):
        return
    if row["default"]:
        assert Options.defaults().value(flag) == parse_value(flag, row["default"])
    else:
        assert not Options.defaults().value(flag)
    parse_command_line(lookup(name))  # a valid value is accepted


def test_options_mirror_the_table() -> None:
    fields = {field.name: field.type for field in attrs.fields(Options)}
    kinds = {"bool": {Kind.BOOL}, "float": {Kind.DURATION}, "str": {Kind.STRING},
             "tuple[int, ...]": {Kind.UINTS}, "tuple[str, ...]": {Kind.STRINGS, Kind.IPS},
             "int": {Kind.INT32, Kind.UINT8, Kind.UINT16, Kind.UINT32, Kind.UINT}}  # fmt: skip
    for flag in FLAGS:
        if not flag.action:
            assert flag.kind in kinds[str(fields.pop(flag.field))], flag.name
    assert not fields
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Options.defaults().bgp_port = 1  # type: ignore[misc]


def test_defaults_are_valid() -> None:
    assert cli.validate(Options.defaults()) == []


# --- Go value syntax ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5m", 300), ("90s", 90), ("1m30s", 90), ("300ms", 0.3), ("1h2m3.5s", 3723.5), ("0", 0),
     ("-1.5h", -5400), (".5s", 0.5), ("1.s", 1), ("2us", 2e-6), ("2µs", 2e-6), ("3ns", 3e-9),
     ("+6m", 360), ("18h12m15s", 65535)],
)  # fmt: skip
def test_go_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
    assert parse(f"--routes-sync-period={text}").routes_sync_period == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "1m30", "x", ".s", "5x", "1e3s", "1.5.5s", "-", "s"])
def test_bad_go_duration(text: str) -> None:
    with pytest.raises(ValueError, match=r"^time: "):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (300, "5m0s"), (90, "1m30s"), (0.3, "300ms"), (3723.5, "1h2m3.5s"), (-1, "-1s"),
     (2e-6, "2µs"), (65535, "18h12m15s")],
)  # fmt: skip
def test_go_duration_string(seconds: float, text: str) -> None:
    assert format_value(BY_NAME["bgp-holdtime"], seconds) == text


@pytest.mark.parametrize(
    ("argv", "expected"),
    [((), True), (("--enable-cni",), True), (("--enable-cni=false",), False),
     (("--enable-cni=0",), False), (("--enable-cni=1",), True), (("--enable-cni=F",), False),
     (("--enable-cni=TRUE",), True), (("--enable-cni=false", "--enable-cni"), True)],
)  # fmt: skip
def test_go_bool_forms(argv: tuple[str, ...], expected: bool) -> None:
    assert parse(*argv).enable_cni is expected


@pytest.mark.parametrize("argv", [("--enable-cni=yes",), ("--enable-cni=",)])
def test_bad_go_bool(argv: tuple[str, ...]) -> None:
    with pytest.raises(OptionError, match=r'^invalid --enable-cni "(yes)?": not a boolean'):
        parse(*argv)


def test_bool_never_takes_the_next_word() -> None:
    # pflag reads `--enable-cni false` as --enable-cni=true plus a stray argument: refused.
    with pytest.raises(OptionError, match='unexpected argument "false"'):
        parse("--enable-cni", "false")


@pytest.mark.parametrize(
    "argv", [("-v", "3"), ("-v3",), ("-v=3",), ("--v", "3"), ("--v=3",), ("-V", "-v", "3")]
)
def test_log_level_forms(argv: tuple[str, ...]) -> None:
    assert parse(*argv).log_level == 3


def test_string_slices_like_pflag() -> None:
    assert parse().service_cluster_ip_range == ("10.96.0.0/12",)
    opts = parse("--service-cluster-ip-range=10.0.0.0/16,fd00::/108")
    assert opts.service_cluster_ip_range == ("10.0.0.0/16", "fd00::/108")  # first use replaces
    repeated = parse("--excluded-cidrs", "10.0.0.0/8", "--excluded-cidrs=10.1.0.0/16,10.2.0.0/16")
    assert repeated.excluded_cidrs == ("10.0.0.0/8", "10.1.0.0/16", "10.2.0.0/16")
    assert parse('--peer-router-passwords="a,b",,c').peer_router_passwords == ("a,b", "", "c")
    assert parse("--peer-router-ips=192.0.2.1,2001:db8::1").peer_router_ips[1] == "2001:db8::1"
    assert parse("--peer-router-asns=65000,65001").peer_router_asns == (65000, 65001)


def test_value_flags_take_the_next_word_even_with_a_dash() -> None:
    assert parse("--iptables-sync-period", "-1s").iptables_sync_period == -1  # refused later
    assert parse("--bgp-port=0x10").bgp_port == 16  # Go's ParseUint base 0


# --- validation: one line, names the flag, exit 2 ----------------------------------------------

PEER = ("--peer-router-ips=192.0.2.1", "--peer-router-asns=65000")
BAD = [
    ("service-cluster-ip-range", ["--service-cluster-ip-range=10.96.0.0/33"]),
    ("service-cluster-ip-range", ["--service-cluster-ip-range=10.96.0.0"]),
    ("service-cluster-ip-range", ["--service-cluster-ip-range="]),
    ("service-cluster-ip-range", ["--enable-ipv6", "--service-cluster-ip-range",
                                  "10.96.0.0/12,fd00::/108,10.0.0.0/16"]),
    ("service-cluster-ip-range", ["--service-cluster-ip-range=fd00::/108"]),  # IPv6 is off
    ("service-external-ip-range", ["--service-external-ip-range=nonsense"]),
    ("loadbalancer-ip-range", ["--loadbalancer-ip-range=fd00::/64"]),
    ("excluded-cidrs", ["--excluded-cidrs=10.0.0.0/8,300.0.0.0/8"]),
    ("advertise-service-cluster-ip-range", ["--advertise-service-cluster-ip-range=10.96/12"]),
    ("enable-ipv4", ["--enable-ipv4=false"]),
    ("enable-ipv4", ["--enable-ipv4=maybe"]),
    ("cluster-asn", ["--cluster-asn=1"]),
    ("cluster-asn", ["--cluster-asn=23456"]),
    ("cluster-asn", ["--cluster-asn=4294967295"]),
    ("cluster-asn", ["--cluster-asn=-1"]),
    ("peer-router-asns", ["--peer-router-ips=192.0.2.1", "--peer-router-asns=0"]),
    ("peer-router-asns", ["--peer-router-ips=192.0.2.1", "--peer-router-asns=23456"]),
    ("peer-router-asns", ["--peer-router-ips=192.0.2.1", "--peer-router-asns=4294967295"]),
    ("peer-router-asns", ["--peer-router-ips=192.0.2.1,192.0.2.2", "--peer-router-asns=65000"]),
    ("peer-router-asns", ["--peer-router-asns=65000"]),
    ("peer-router-ips", ["--peer-router-ips=192.0.2.300"]),
    ("peer-router-ports", [*PEER, "--peer-router-ports=179,180"]),
    ("peer-router-ports", [*PEER, "--peer-router-ports=70000"]),
    ("peer-router-passwords", [*PEER, "--peer-router-passwords=a,b"]),
    ("peer-router-passwords", [*PEER, "--peer-router-passwords=not base64!"]),
    ("peer-router-passwords-file", [*PEER, "--peer-router-passwords-file=/nonexistent/pw"]),
    ("service-node-port-range", ["--service-node-port-range=32767-30000"]),
    ("service-node-port-range", ["--service-node-port-range=30000"]),
    ("service-node-port-range", ["--service-node-port-range=30000-70000"]),
    ("bgp-holdtime", ["--bgp-holdtime=1m30"]),
    ("bgp-holdtime", ["--bgp-holdtime=2s"]),
    ("bgp-holdtime", ["--bgp-holdtime=18h12m16s"]),
    ("routes-sync-period", ["--routes-sync-period=0s"]),
    ("iptables-sync-period", ["--iptables-sync-period", "-5m"]),
    ("cache-sync-timeout", ["--cache-sync-timeout=0"]),
    ("service-udp-timeout", ["--service-udp-timeout=-1s"]),
    ("bgp-graceful-restart-time", ["--bgp-graceful-restart-time=4096s"]),
    ("bgp-graceful-restart-deferral-time", ["--bgp-graceful-restart-deferral-time=18h1s"]),
    ("overlay-type", ["--overlay-type=mesh"]),
    ("overlay-encap", ["--overlay-encap=gre"]),
    ("overlay-encap-port", ["--overlay-encap-port=80"]),
    ("router-id", ["--router-id=2001:db8::1"]),
    ("bfd-detection-multiplier", ["--bfd-detection-multiplier=0"]),
    ("bfd-port", ["--bfd-port=70000"]),
    ("health-port", ["--health-port=70000"]),
    ("peer-router-multihop-ttl", ["--peer-router-multihop-ttl=256"]),
    ("metrics-path", ["--metrics-path=metrics"]),
    ("v", ["-v", "x"]),
    ("nope", ["--nope"]),
    ("no\npe", ["--no\npe"]),  # still one line
    ("cluster-asn", ["--cluster-asn=1\n2"]),
    ("kubeconfig", ["--kubeconfig"]),
]  # fmt: skip


@pytest.mark.parametrize(("flag", "argv"), BAD, ids=[" ".join(argv) for _, argv in BAD])
def test_bad_command_line_is_refused(flag: str, argv: list[str]) -> None:
    result = run(*argv)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("kube-router: ")
    assert f"--{flag}".replace("\n", "\\n") in result.stderr


def test_error_format_and_no_secret_echo() -> None:
    result = run("--service-cluster-ip-range", "10.96.0.0/33")
    assert result.stderr.startswith(
        'kube-router: invalid --service-cluster-ip-range "10.96.0.0/33": '
    )
    with pytest.raises(OptionError) as caught:
        cli.validate(parse(*PEER, "--peer-router-passwords=s3cr3t!"))
    assert "s3cr3t" not in str(caught.value)


def test_passwords_file(tmp_path: Path) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text("c2VjcmV0,\n")  # Go's base64 skips line breaks; one empty password
    bad.write_text("c2VjcmV0,!!")
    two_peers = ("--peer-router-ips=192.0.2.1,192.0.2.2", "--peer-router-asns=65000,65001")
    assert cli.validate(parse(*two_peers, f"--peer-router-passwords-file={good}")) == []
    with pytest.raises(OptionError, match="--peer-router-passwords-file"):
        cli.validate(parse(*two_peers, f"--peer-router-passwords-file={bad}"))
    both = parse(*PEER, "--peer-router-passwords=c2VjcmV0", f"--peer-router-passwords-file={bad}")
    assert cli.validate(both) == [  # upstream: the flag wins over the file
        "--peer-router-passwords-file is ignored: --peer-router-passwords is set"
    ]


@pytest.mark.parametrize(
    "argv",
    [("--cluster-asn=0",), ("--cluster-asn=65535",), ("--cluster-asn=4200000000",),
     (*PEER, "--peer-router-ports=1790", "--peer-router-passwords=c2VjcmV0"),
     ("--peer-router-ips=192.0.2.1,192.0.2.2", "--peer-router-asns=1,4199999999"),
     ("--enable-ipv6", "--service-cluster-ip-range=10.96.0.0/12,fd00::/108"),
     ("--enable-ipv6", "--enable-ipv4=false", "--service-cluster-ip-range=fd00::/108"),
     ("--service-node-port-range=30000:32767",), ("--router-id=generate",),
     ("--router-id=10.0.0.1",), ("--bgp-holdtime=3s",),
     ("--service-cluster-ip-range=10.96.0.1/12",),
     ("--run-router=false", "--advertise-cluster-ip"), ("--bgp-graceful-restart-time=4095s",)],
)  # fmt: skip
def test_good_command_line_is_accepted(argv: tuple[str, ...]) -> None:
    assert cli.validate(parse(*argv)) == []


# --- what the command does ---------------------------------------------------------------------


def test_without_a_cluster_the_agent_says_so_and_exits_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert cli.main([]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip()


NO_CONTROLLERS = ["--run-router=false", "--run-service-proxy=false", "--run-firewall=false"]


def test_not_implemented_flags_warn_when_set(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--gobgp-admin-port=50052", "--bfd-port=3785", "--bgp-port=1179", "--v=2"]
    assert cli.main([*argv, *NO_CONTROLLERS]) == 0
    err = capsys.readouterr().err
    assert "--gobgp-admin-port is set but not implemented yet" in err
    assert "--bfd-port is set but not implemented yet" in err
    assert "--bgp-port is set" not in err  # the router acts on it
    assert "--v is set" not in err  # the log level is acted on


def test_effective_options_at_v3(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*PEER, "--peer-router-passwords=c2VjcmV0", "-v", "3", *NO_CONTROLLERS]) == 0
    err = capsys.readouterr().err
    assert 'FLAG: --routes-sync-period="5m0s"' in err
    assert 'FLAG: --peer-router-passwords="<redacted>"' in err
    assert "c2VjcmV0" not in err
    assert cli.main(["-v", "2", *NO_CONTROLLERS]) == 0
    assert "FLAG:" not in capsys.readouterr().err


def test_nothing_to_run_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--run-router=false", "--run-service-proxy=false", "--run-firewall=false"]
    assert cli.main(argv) == 0
    assert "functionality must be specified" in capsys.readouterr().err


def help_sections(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """From --help: each flag's group heading, and each flag's description."""
    group, heading, described = "", {}, {}
    for line in text.splitlines():
        if line.endswith(":") and not line.startswith(" "):
            group = line[:-1]
        elif flag := re.match(r"  (?:-\w, |    )--([\w-]+)", line):
            name = flag[1]
            heading[name], described[name] = group, ""
        elif line.startswith(" " * 8):
            described[name] += line.strip() + " "
    return heading, described


def test_help_is_grouped_by_controller() -> None:
    result = run("--help")
    assert result.returncode == 0
    headings = [line[:-1] for line in result.stdout.splitlines() if line.endswith(":")]
    assert headings == [group.value for group in Group]
    heading, described = help_sections(result.stdout)
    assert heading == {flag.name: flag.group.value for flag in FLAGS}
    for flag in FLAGS:
        marked = cli.NOT_IMPLEMENTED_NOTE in described[flag.name]
        assert marked == (flag.name in NOT_IMPLEMENTED), flag.name
    assert "(default 5m0s)" in described["routes-sync-period"]
    assert "(default 10.96.0.0/12)" in described["service-cluster-ip-range"]
    assert run("-h").stdout == result.stdout


@pytest.mark.parametrize("argv", [("-V",), ("--version",), ("--version=true", "--cluster-asn=1")])
def test_version(argv: tuple[str, ...]) -> None:
    result = run(*argv)
    assert result.returncode == 0
    assert result.stdout == f"{cli.version_line()}\n"
    assert __version__ in result.stdout


def test_version_falls_back_to_the_source_tree() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", __version__)


def test_cleanup_config_runs_every_controllers_step_and_exits(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []

    def step(name: str, fails: bool = False) -> agent.CleanupStep:
        def clean(options: Options) -> None:
            assert options.cleanup_config
            ran.append(name)
            if fails:
                raise RuntimeError(f"{name} is stuck")

        return clean

    monkeypatch.setattr(agent, "CLEANUP_STEPS", (("one", step("one")), ("two", step("two"))))
    assert cli.main(["--cleanup-config"]) == 0  # no cluster needed, nothing else started
    assert ran == ["one", "two"]
    failing = (("one", step("one", fails=True)), ("two", step("two")))
    monkeypatch.setattr(agent, "CLEANUP_STEPS", failing)
    assert cli.main(["--cleanup-config"]) == 1
    assert ran == ["one", "two", "one", "two"]  # a failed step does not stop the next
    err = capsys.readouterr().err
    assert "one cleanup failed: one is stuck" in err and "two cleanup done" in err
    assert "not implemented" not in err


def test_the_firewall_cleanup_needs_root() -> None:
    with pytest.raises(RuntimeError, match="root"):
        firewall.cleanup(Options.defaults(), euid=lambda: 1000)
