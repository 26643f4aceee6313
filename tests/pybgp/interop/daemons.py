"""Small helpers for the interop tests: two network namespaces joined by a veth, and the BGP
daemons started in them, queried through their own command-line tools, and stopped.

pybgpd runs in namespace "ours" (10.0.0.1, fd00::1, AS 65000); the peer runs in namespace
"peer" (10.0.0.2, fd00::2): FRR bgpd as a podman container (`FrrContainer`, the way operators
deploy it) or as a plain process (`FrrDirect`), GoBGP, or BIRD 2. Every daemon is configured
through a file written here (MD5 keys too: never on a command line), queried with its own CLI
(JSON where it has some; BIRD's text is parsed), and `close()` never raises, so cleanup runs.

The standard setup has two sessions: one over IPv4 carrying IPv4 and IPv6 routes, one over
IPv6 carrying IPv6. Peers export only the routes they originate, and send their IPv6 routes
over the IPv4 session with one more AS on the path, so pybgpd prefers the IPv6 session's copy
and never re-advertises a peer's route back to it: every count is then known in advance.
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pybgp.control import ControlError, request
from tests.netns import netns, run, unique_name, veth_pair

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent  # the virtualenv's bin: pybgpd and pybgp live there
PYBGPD, PYBGP = BIN / "pybgpd", BIN / "pybgp"
FRR_IMAGE = "localhost/pybgp-frr:bookworm"
PODMAN = ("podman", "--runtime", "runc")  # runc and lower ulimits: docs/developing.md
LIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")

OUR_ASN = 65000
OUR_V4, PEER_V4 = "10.0.0.1", "10.0.0.2"
OUR_V6, PEER_V6 = "fd00::1", "fd00::2"
PEER_ASN = {"frr": 65001, "frr-direct": 65001, "gobgp": 65002, "bird": 65003}
ESTABLISHED = "Established"

T = TypeVar("T")

# ---------------------------------------------------------------- polling


POLL_ERRORS = (ControlError, OSError, ValueError, KeyError, IndexError, subprocess.SubprocessError)


def wait_for(probe: Callable[[], T], what: str, timeout: float = 15.0, interval: float = 0.2) -> T:
    """Poll until `probe` returns something true, and return it. An error from a daemon's CLI
    counts as "not yet"; the last value or error is in the failure message."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = probe()
            if value:
                return value
            last = value
        except POLL_ERRORS as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}; last seen: {last!r}")
        time.sleep(interval)


def stays(probe: Callable[[], object], what: str, seconds: float, interval: float = 0.2) -> None:
    """Poll `probe` for `seconds`: it must be true every time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = probe()
        assert value, f"{what}: no longer true ({value!r})"
        time.sleep(interval)


# ---------------------------------------------------------------- namespaces and files


@dataclass(frozen=True)
class Link:
    """Two namespaces joined by a veth: pybgpd's ("ours") and the peer's."""

    ours: str
    peer: str
    our_dev: str
    peer_dev: str

    def add_subnet(self, index: int) -> tuple[str, str]:
        """Another pair of addresses on the veth: (10.0.INDEX.1 ours, 10.0.INDEX.2 the peer's)."""
        ours, peer = f"10.0.{index}.1", f"10.0.{index}.2"
        run("ip", "-n", self.ours, "addr", "add", f"{ours}/24", "dev", self.our_dev)
        run("ip", "-n", self.peer, "addr", "add", f"{peer}/24", "dev", self.peer_dev)
        return ours, peer


@contextlib.contextmanager
def linked_namespaces() -> Iterator[Link]:
    with contextlib.ExitStack() as stack:
        ours, peer = stack.enter_context(netns("bgpo")), stack.enter_context(netns("bgpp"))
        a, b = stack.enter_context(veth_pair(ours, f"{OUR_V4}/24", peer, f"{PEER_V4}/24"))
        run("ip", "-n", ours, "addr", "add", f"{OUR_V6}/64", "dev", a, "nodad")
        run("ip", "-n", peer, "addr", "add", f"{PEER_V6}/64", "dev", b, "nodad")
        yield Link(ours, peer, a, b)


@contextlib.contextmanager
def short_workdir(prefix: str) -> Iterator[Path]:
    """A scratch directory with a short path: Unix socket paths must stay under 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix=f"pybgp-{prefix}-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def secret_file(directory: Path, name: str, secret: str) -> str:
    """A file only root can read, holding `secret` (an MD5 key for `password_file`)."""
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return str(path)


def spawn(ns: str, argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    """Run a daemon in the foreground in `ns`; `ip netns exec` execs, so the pid is the
    daemon's own (signals go straight to it)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def end(
    proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 10
) -> None:
    """Stop a spawned daemon with `sig` (SIGKILL after `timeout`); a frozen one is thawed first."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGCONT)
        proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class CommandFailed(subprocess.CalledProcessError):
    def __str__(self) -> str:
        said = (self.stderr or self.stdout or "").strip()[-2000:]
        return f"{' '.join(map(str, self.cmd))} exited with {self.returncode}: {said}"


def output(*args: str, netns: str | None = None) -> str:
    """A command's standard output; a failure raises with what it printed."""
    done = run(*args, netns=netns, check=False)
    if done.returncode != 0:
        raise CommandFailed(done.returncode, done.args, done.stdout, done.stderr)
    return done.stdout


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"({path}: {exc.strerror})"


def bgp_connections(ns: str) -> list[tuple[str, str]]:
    """Established TCP connections to or from port 179 in `ns`, as (local, remote) pairs."""
    out = output("ss", "-Htn", "state", "established", "( sport = :179 or dport = :179 )", netns=ns)
    return [(line.split()[-2], line.split()[-1]) for line in out.splitlines() if line.strip()]


# ---------------------------------------------------------------- what is configured


@dataclass(frozen=True)
class Route:
    """A route one side originates, with the attributes it carries."""

    prefix: str
    communities: tuple[str, ...] = ()
    large_communities: tuple[str, ...] = ()
    med: int | None = None
    prepend: tuple[int, ...] = ()  # peers only: ASNs put before the peer's own on the path

    @property
    def family(self) -> str:
        return "ipv6" if ":" in self.prefix else "ipv4"


@dataclass(frozen=True)
class Session:
    """One session as the peer daemon sees it."""

    neighbor: str  # pybgpd's address
    local: str  # the peer's own address
    families: tuple[str, ...] = ("ipv4", "ipv6")
    password: str | None = None
    passive: bool = False
    # FRR only: the AS it expects on the session (another speaker than pybgpd), more
    # `neighbor X ...` lines per address family (e.g. "addpath-tx-all-paths"), and every
    # route exported to it instead of the peer's own ones only.
    remote_asn: int = OUR_ASN
    frr_options: tuple[str, ...] = ()
    export_all: bool = False
    # BIRD only: more lines in the session's `protocol bgp` block, and in each of its
    # channels (e.g. "add paths rx;", "extended next hop on;").
    bird_options: tuple[str, ...] = ()
    bird_channel_options: tuple[str, ...] = ()
    # GoBGP only: more lines after each of the session's `[[neighbors.afi-safis]]` (e.g. an
    # `[neighbors.afi-safis.add-paths.config]` table).
    gobgp_afi_safi_options: tuple[str, ...] = ()

    @property
    def over_ipv6(self) -> bool:
        return ":" in self.neighbor


@dataclass(frozen=True)
class PeerRoute:
    """A route as a peer daemon's CLI shows it (the best path for its prefix)."""

    next_hop: str
    as_path: str
    med: int | None = None
    communities: frozenset[str] = frozenset()
    large_communities: frozenset[str] = frozenset()


def tagged(asn: int, prefix: str, med: int, prepend: tuple[int, ...] = ()) -> Route:
    return Route(
        prefix,
        communities=(f"{asn}:100", f"{asn}:200"),
        large_communities=(f"{asn}:1:2",),
        med=med,
        prepend=prepend,
    )


def peer_routes(asn: int) -> list[Route]:
    """What a peer originates in the standard setup: one route per family with every
    attribute (and two ASNs prepended), and one plain IPv4 route."""
    return [
        tagged(asn, "10.1.0.0/24", 50, (64512, 64513)),
        Route("10.1.1.0/24"),
        tagged(asn, "2001:db8:1::/48", 50, (64512, 64513)),
    ]


OUR_ROUTES = (
    tagged(OUR_ASN, "10.2.0.0/24", 70),
    Route("10.2.1.0/24"),
    tagged(OUR_ASN, "2001:db8:2::/48", 70),
)


def standard_sessions() -> list[Session]:
    return [Session(OUR_V4, PEER_V4, ("ipv4", "ipv6")), Session(OUR_V6, PEER_V6, ("ipv6",))]


def standard_neighbors(peer_asn: int) -> list[dict[str, Any]]:
    """pybgpd's side of the standard sessions: both families over IPv4, IPv6 over IPv6."""
    base = {"peer_asn": peer_asn, "connect_retry": 1}
    return [
        {"address": PEER_V4, **base},
        {"address": PEER_V6, "families": ["ipv6-unicast"], **base},
    ]


def seen_by_peer(route: Route) -> PeerRoute:
    """How a route pybgpd originates must look at the peer."""
    return PeerRoute(
        next_hop=OUR_V6 if route.family == "ipv6" else OUR_V4,
        as_path=str(OUR_ASN),
        med=route.med,
        communities=frozenset(route.communities),
        large_communities=frozenset(route.large_communities),
    )


def expected_families(
    session: Session, theirs: Sequence[Route], ours: Sequence[Route]
) -> dict[str, dict[str, int]]:
    """pybgpd's per-family counts for one session of the standard setup (`session` as the peer
    sees it): everything the peer originates in the session's families arrives and is accepted;
    what pybgpd originates goes out, IPv6 only over IPv6 (an eBGP IPv6 next hop needs an IPv6
    address on the session)."""
    counts = {}
    for family in session.families:
        received = sum(r.family == family for r in theirs)
        sendable = family == "ipv4" or session.over_ipv6
        advertised = sum(r.family == family for r in ours) if sendable else 0
        counts[f"{family}-unicast"] = {
            "received": received,
            "accepted": received,
            "advertised": advertised,
            "stale": 0,  # routes kept for a restarting peer (RFC 4724)
        }
    return counts


def peer_counts(families: Mapping[str, Mapping[str, int]]) -> dict[str, tuple[int, int]]:
    """pybgpd's per-family counts as the peer's `counts()` must show them: (received from
    pybgpd = pybgpd's advertised, sent to pybgpd = pybgpd's received)."""
    return {f.split("-")[0]: (c["advertised"], c["received"]) for f, c in families.items()}


def fields_of(shown: Mapping[str, Any], expected: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of `shown` (a `pybgp -j rib` route) that `expected` names, lists sorted."""
    return {k: sorted(v) if isinstance(v, list) else v for k, v in shown.items() if k in expected}


def seen_by_pybgpd(route: Route, peer_asn: int) -> dict[str, Any]:
    """The fields of `pybgp -j rib` a peer's route must show (MED only where the peer set it:
    FRR gives its `network` routes MED 0, the others none)."""
    via = PEER_V6 if route.family == "ipv6" else PEER_V4
    shown: dict[str, Any] = {
        "prefix": route.prefix,
        "next_hop": via,
        "peer": via,
        "as_path": " ".join(str(asn) for asn in (peer_asn, *route.prepend)),
        "communities": sorted(route.communities),
        "large_communities": sorted(route.large_communities),
    }
    if route.med is not None:
        shown["med"] = route.med
    return shown


# ---------------------------------------------------------------- pybgpd


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return (
            "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
        )
    raise TypeError(f"no TOML for {value!r}")


def toml_table(header: str, items: Mapping[str, Any]) -> list[str]:
    return [header, *(f"{key} = {toml_value(v)}" for key, v in items.items() if v is not None), ""]


# Export is strict by default; these tests are about other things, so pybgpd advertises
# every best path unless a test gives its own [policy].
EXPORT_EVERYTHING = '[policy.attach]\ndefault_export = "accept"\n'


class Pybgpd:
    """pybgpd in namespace `ns`; its config file, control socket and log are in `workdir`."""

    def __init__(
        self,
        ns: str,
        workdir: Path,
        *,
        neighbors: Sequence[Mapping[str, Any]],
        routes: Sequence[Route] = (),
        router_id: str = OUR_V4,
        listen: Sequence[str] = (OUR_V4, OUR_V6),
        policy: str = EXPORT_EVERYTHING,
    ) -> None:
        self.ns = ns
        self.policy = policy
        self.dir = workdir / "pybgpd"
        self.dir.mkdir()
        self.config_path = self.dir / "pybgpd.toml"
        self.socket = self.dir / "ctl.sock"
        self.log_path = self.dir / "pybgpd.log"
        self.global_: dict[str, Any] = {
            "asn": OUR_ASN,
            "router_id": router_id,
            "listen": list(listen),
        }
        self.neighbors = [dict(n) for n in neighbors]
        self.routes = list(routes)
        self.proc: subprocess.Popen[bytes] | None = None

    def config_text(self) -> str:
        lines = toml_table("[global]", self.global_)
        for neighbor in self.neighbors:
            lines += toml_table("[[neighbors]]", neighbor)
        for route in self.routes:
            assert not route.prepend, "pybgpd's routes carry no AS path of their own"
            lines += toml_table(
                "[[routes]]",
                {
                    "prefix": route.prefix,
                    "communities": list(route.communities) or None,
                    "large_communities": list(route.large_communities) or None,
                    "med": route.med,
                },
            )
        return "\n".join([*lines, self.policy])

    def write_config(self) -> None:
        self.config_path.write_text(self.config_text())

    def start(self, *options: str) -> None:
        """Start with -v (info logging) and `options` (another -v for debug, --fib, ...)."""
        self.write_config()
        argv = [str(PYBGPD), "-c", str(self.config_path), "--socket", str(self.socket), "-v"]
        self.proc = spawn(self.ns, [*argv, *options], self.log_path)
        wait_for(lambda: self.request("neighbors") is not None, "pybgpd's control socket", 10)

    def reload(self) -> None:
        """Write the (changed) configuration and send SIGHUP."""
        self.write_config()
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        end(self.proc, sig)
        return self.proc.returncode if self.proc else None

    def close(self) -> None:
        end(self.proc, timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def diagnostics(self) -> str:
        return f"--- pybgpd log ({self.log_path}):\n{tail(self.log_path)}"

    def leaks(self, secret: str) -> list[str]:
        """Where `secret` shows: the log, the process's command line."""
        places = ["log"] if secret in self.log() else []
        if self.proc is not None and self.proc.poll() is None:
            cmdline = Path(f"/proc/{self.proc.pid}/cmdline").read_bytes()
            places += ["command line"] if secret.encode() in cmdline else []
        return places

    # the real command line: what the assertions read
    def cli(self, *args: str) -> str:
        return output(str(PYBGP), "--socket", str(self.socket), *args)

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli("-j", *args))

    def rib_cli(self) -> dict[str, dict[str, Any]]:
        """`pybgp -j rib`, best paths by prefix."""
        return {r["prefix"]: r for r in self.cli_json("rib") if r["best"]}

    # the same requests in-process: cheap enough to poll every 0.2 s
    def request(self, command: str, **arguments: Any) -> Any:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"pybgpd exited with status {self.proc.returncode} (log below)")
        return request(str(self.socket), command, timeout=5, **arguments)

    def neighbor(self, address: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("neighbors", address=address)[0]
        return result

    def state(self, address: str) -> str:
        return str(self.neighbor(address)["state"])

    def rib(self) -> dict[str, dict[str, Any]]:
        return {r["prefix"]: r for r in self.request("rib") if r["best"]}

    def has_routes(self, prefixes: Sequence[str]) -> bool:
        rib = self.rib()
        return all(p in rib for p in prefixes)

    def has_none(self, prefixes: Sequence[str]) -> bool:
        rib = self.rib()
        return not any(p in rib for p in prefixes)

    def wait_routes(self, prefixes: Sequence[str], timeout: float = 15.0) -> dict[str, Any]:
        """Wait until every prefix is in the Loc-RIB; then `pybgp -j rib`, by prefix."""
        wait_for(lambda: self.has_routes(prefixes), f"{', '.join(prefixes)} in pybgpd", timeout)
        return self.rib_cli()


# ---------------------------------------------------------------- peers


class Peer(abc.ABC):
    """A peer BGP daemon in namespace `ns`, configured from `sessions` and `routes`."""

    kind = "peer"

    def __init__(
        self,
        ns: str,
        workdir: Path,
        *,
        asn: int,
        sessions: Sequence[Session],
        routes: Sequence[Route] = (),
        router_id: str = PEER_V4,
        next_hop6: str = PEER_V6,
    ) -> None:
        self.ns, self.asn, self.router_id, self.next_hop6 = ns, asn, router_id, next_hop6
        self.dir = workdir / self.kind
        self.dir.mkdir()
        self.sessions = list(sessions)
        self.routes = list(routes)

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def stop(self) -> None: ...

    @abc.abstractmethod
    def pid(self) -> int:
        """The daemon's process id on this host (for SIGSTOP/SIGCONT)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop and remove everything; never raises."""

    @abc.abstractmethod
    def state(self, neighbor: str) -> str:
        """The session's state ("Established" when up)."""

    @abc.abstractmethod
    def route(self, prefix: str) -> PeerRoute | None:
        """The best path for `prefix` learned over BGP, or None."""

    @abc.abstractmethod
    def counts(self, neighbor: str) -> dict[str, tuple[int, int]]:
        """Per family ("ipv4", "ipv6"): (prefixes received from pybgpd, prefixes sent to it)."""

    @abc.abstractmethod
    def diagnostics(self) -> str: ...

    def restart(self) -> None:
        self.stop()
        self.start()

    def wait_route(self, prefix: str, timeout: float = 15.0) -> PeerRoute:
        route = wait_for(lambda: self.route(prefix), f"{prefix} at {self.kind}", timeout)
        assert route is not None
        return route

    def wait_gone(self, prefix: str, timeout: float = 15.0) -> None:
        wait_for(lambda: self.route(prefix) is None, f"{prefix} gone from {self.kind}", timeout)

    def freeze(self) -> None:
        os.kill(self.pid(), signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid(), signal.SIGCONT)

    def local_routes(self, family: str) -> list[Route]:
        return [r for r in self.routes if r.family == family]

    def session(self, neighbor: str) -> Session:
        return next(s for s in self.sessions if s.neighbor == neighbor)

    def wait_ready(self, probe: Callable[[], object], alive: Callable[[], bool]) -> None:
        def ready() -> object:
            if not alive():
                raise RuntimeError(f"{self.kind} is not running\n{self.diagnostics()}")
            return probe()

        wait_for(ready, f"{self.kind} to answer its CLI", 20)


class ProcessPeer(Peer):
    """A peer daemon run as a process of its own in the foreground (`spawn`): its pid is the
    daemon's, so SIGSTOP, SIGTERM and SIGKILL go straight to it; its output goes to `log_name`
    in the work directory."""

    log_name = "daemon.log"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.proc: subprocess.Popen[bytes] | None = None

    def launch(self, argv: Sequence[str], ready: Callable[[], object]) -> None:
        """Run `argv` in the peer namespace and wait until `ready()` (its CLI answering)."""
        self.proc = spawn(self.ns, argv, self.dir / self.log_name)
        self.wait_ready(ready, self.running)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        end(self.proc)

    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def close(self) -> None:
        end(self.proc, signal.SIGKILL)

    def diagnostics(self) -> str:
        return f"--- {self.kind} log ({self.log_name}):\n{tail(self.dir / self.log_name)}"


# ---------------------------------------------------------------- FRR


class Frr(Peer):
    """FRR bgpd without zebra; queried with `vtysh --vty_socket DIR -d bgpd` from the host."""

    kind = "frr"

    def __init__(
        self,
        *args: Any,
        connect_timer: int = 1,
        listen_all: bool = False,
        graceful_restart: bool = False,
        extended_nexthop: bool = False,
        router_lines: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> None:
        """`listen_all`: no `-l ADDR`, bgpd listens on every address of its namespace.
        `graceful_restart`: FRR restarts gracefully itself (RFC 4724), keeping forwarding
        state (the F bit), instead of helping only. `router_lines`: more lines for
        `router bgp` (e.g. " bgp graceful-restart notification")."""
        super().__init__(*args, **kwargs)
        self.connect_timer, self.listen_all = connect_timer, listen_all
        self.graceful_restart = graceful_restart
        self.router_lines = router_lines
        self.extended_nexthop = extended_nexthop  # RFC 8950 on sessions over IPv6

    def config_text(self) -> str:
        asn, lines = self.asn, ["hostname frr-interop"]
        for family, keyword in (("ipv4", "ip"), ("ipv6", "ipv6")):
            name = f"LOCAL{family[-1]}"
            for index, route in enumerate(self.local_routes(family), 1):
                lines.append(f"{keyword} prefix-list {name} seq {index * 5} permit {route.prefix}")
            lines.append(f"{keyword} prefix-list {name} seq 1000 deny any")
        for index, route in enumerate(self.routes):  # attributes are set as FRR originates
            if self._sets(route):
                lines += [f"route-map ORIGIN{index} permit 10", *self._sets(route)]
        lines += [
            "route-map OUT4 permit 10",
            " match ip address prefix-list LOCAL4",
            "route-map OUT6 permit 10",
            " match ipv6 address prefix-list LOCAL6",
            "route-map OUT6V4 permit 10",  # IPv6 over the IPv4 session: one AS longer
            " match ipv6 address prefix-list LOCAL6",
            f" set ipv6 next-hop global {self.next_hop6}",
            f" set as-path prepend {asn}",
            "!",
            f"router bgp {asn}",
            f" bgp router-id {self.router_id}",
            " no bgp ebgp-requires-policy",
            " no bgp network import-check",  # no zebra: originate without a RIB route
            " no bgp default ipv4-unicast",
            " timers bgp 3 9",
        ]
        if self.graceful_restart:
            lines += [" bgp graceful-restart", " bgp graceful-restart preserve-fw-state"]
        lines += self.router_lines
        for s in self.sessions:
            n = f" neighbor {s.neighbor}"
            lines += [
                f"{n} remote-as {s.remote_asn}",
                f"{n} update-source {s.local}",
                f"{n} timers connect {self.connect_timer}",
                f"{n} disable-connected-check",  # no zebra: bgpd knows no interfaces
                f"{n} advertisement-interval 0",
                *([f"{n} password {s.password}"] if s.password else []),
                *([f"{n} passive"] if s.passive else []),
                *([f"{n} capability extended-nexthop"] if self.extended_nexthop else []),
            ]
        for family in ("ipv4", "ipv6"):
            lines.append(f" address-family {family} unicast")
            for index, route in enumerate(self.routes):
                if route.family == family:
                    origin = f" route-map ORIGIN{index}" if self._sets(route) else ""
                    lines.append(f"  network {route.prefix}{origin}")
            for s in self.sessions:
                if family in s.families:
                    out = "OUT4" if family == "ipv4" else "OUT6" if s.over_ipv6 else "OUT6V4"
                    lines += [
                        f"  neighbor {s.neighbor} activate",
                        f"  neighbor {s.neighbor} send-community all",
                        *([] if s.export_all else [f"  neighbor {s.neighbor} route-map {out} out"]),
                        *(f"  neighbor {s.neighbor} {option}" for option in s.frr_options),
                    ]
            lines.append(" exit-address-family")
        return "\n".join(lines) + "\n"

    @staticmethod
    def _sets(route: Route) -> list[str]:
        sets = []
        if route.communities:
            sets.append(f" set community {' '.join(route.communities)}")
        if route.large_communities:
            sets.append(f" set large-community {' '.join(route.large_communities)}")
        if route.med is not None:
            sets.append(f" set metric {route.med}")
        if route.prepend:
            sets.append(f" set as-path prepend {' '.join(map(str, route.prepend))}")
        return sets

    def bgpd_argv(self, config_dir: str) -> list[str]:
        argv = ["/usr/lib/frr/bgpd", "-f", f"{config_dir}/bgpd.conf", "-Z", "-S"]
        argv += ["-u", "root", "-g", "root", "--vty_socket", config_dir]
        for local in [] if self.listen_all else dict.fromkeys(s.local for s in self.sessions):
            argv += ["-l", local]
        return argv

    def write_config(self) -> None:
        (self.dir / "bgpd.conf").write_text(self.config_text())
        (self.dir / "bgpd.vty").unlink(missing_ok=True)  # a stale socket from a stopped bgpd

    def vtysh(self, *commands: str) -> str:
        argv = ["vtysh", "--vty_socket", str(self.dir), "-d", "bgpd"]
        for command in commands:
            argv += ["-c", command]
        return output(*argv)

    def show(self, command: str) -> Any:
        return json.loads(self.vtysh(f"{command} json"))

    def configure(self, *lines: str) -> None:
        self.vtysh("configure terminal", f"router bgp {self.asn}", *lines)

    def withdraw(self, prefix: str) -> None:
        """Stop originating `prefix`."""
        family = "ipv6" if ":" in prefix else "ipv4"
        self.configure(f"address-family {family} unicast", f"no network {prefix}")

    def neighbor(self, address: str) -> dict[str, Any]:
        result: dict[str, Any] = self.show(f"show bgp neighbors {address}").get(address, {})
        return result

    def state(self, neighbor: str) -> str:
        return str(self.neighbor(neighbor).get("bgpState", ""))

    def route(self, prefix: str) -> PeerRoute | None:
        family = "ipv6" if ":" in prefix else "ipv4"
        for path in self.show(f"show bgp {family} unicast {prefix}").get("paths", []):
            if path.get("bestpath", {}).get("overall"):
                return PeerRoute(
                    next_hop=path["nexthops"][0]["ip"],
                    as_path=path["aspath"]["string"],
                    med=path.get("metric"),
                    communities=frozenset(path.get("community", {}).get("list", [])),
                    large_communities=frozenset(path.get("largeCommunity", {}).get("list", [])),
                )
        return None

    def counts(self, neighbor: str) -> dict[str, tuple[int, int]]:
        info = self.neighbor(neighbor).get("addressFamilyInfo", {})
        return {
            family: (
                info[key].get("acceptedPrefixCounter", 0),
                info[key].get("sentPrefixCounter", 0),
            )
            for family, key in (("ipv4", "ipv4Unicast"), ("ipv6", "ipv6Unicast"))
            if key in info
        }

    def ready(self) -> bool:
        return self.show("show bgp summary") is not None


class FrrContainer(Frr):
    """bgpd in a podman container joined to the peer namespace, its config directory mounted
    at /cfg (the vty socket lands there, so vtysh runs on the host)."""

    def __init__(self, *args: Any, image: str = FRR_IMAGE, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.image = image
        self.name = f"pybgp-interop-{unique_name('frr')}"
        self.created = False

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = run(*PODMAN, *args, check=False)
        if check and done.returncode != 0:
            raise CommandFailed(done.returncode, done.args, done.stdout, done.stderr)
        return done

    def start(self) -> None:
        self.write_config()
        if self.created:
            self.podman("start", self.name)
        else:
            self.created = True
            self.podman(
                "run", "-d", "--name", self.name, "--network", f"ns:/run/netns/{self.ns}",
                *LIMITS, "-v", f"{self.dir}:/cfg", self.image, *self.bgpd_argv("/cfg"),
            )  # fmt: skip
        self.wait_ready(self.ready, self.running)

    def running(self) -> bool:
        out = self.podman("inspect", "-f", "{{.State.Running}}", self.name, check=False)
        return out.stdout.strip() == "true"

    def stop(self) -> None:
        self.podman("stop", "-t", "5", self.name)

    def pid(self) -> int:
        return int(self.podman("inspect", "-f", "{{.State.Pid}}", self.name).stdout)

    def close(self) -> None:
        if self.created:
            self.podman("rm", "-f", "-t", "0", self.name, check=False)

    def diagnostics(self) -> str:
        logs = self.podman("logs", "--tail", "60", self.name, check=False) if self.created else None
        return f"--- FRR container {self.name}:\n{logs.stdout + logs.stderr if logs else ''}"


class FrrDirect(ProcessPeer, Frr):
    """bgpd run directly in the peer namespace (its pid file kept in the work directory)."""

    log_name = "bgpd.log"

    def start(self) -> None:
        self.write_config()
        self.launch([*self.bgpd_argv(str(self.dir)), "-i", str(self.dir / "bgpd.pid")], self.ready)


# ---------------------------------------------------------------- GoBGP

GOBGP_STATES = {
    1: "Idle",
    2: "Connect",
    3: "Active",
    4: "OpenSent",
    5: "OpenConfirm",
    6: ESTABLISHED,
}


class Gobgp(ProcessPeer):
    """gobgpd with its gRPC API on 127.0.0.1:50051 inside the namespace; routes are added with
    `gobgp global rib add` once it runs (GoBGP's config file has no routes)."""

    kind = "gobgp"
    log_name = "gobgpd.log"

    def __init__(
        self, *args: Any, listen: Sequence[str] = (), extra_config: str = "", **kwargs: Any
    ) -> None:
        """`listen`: the addresses gobgpd listens on (`local-address-list`; default: all, so
        nothing else in the namespace can listen on port 179). `extra_config`: more TOML at
        the end of gobgpd.toml (e.g. `[[mrt-dump]]`)."""
        super().__init__(*args, **kwargs)
        self.listen = list(listen)
        self.extra_config = extra_config

    def config_text(self) -> str:
        v6_over_v4 = [s.neighbor for s in self.sessions if "ipv6" in s.families and not s.over_ipv6]
        lines = [
            "[global.config]",
            f"  as = {self.asn}",
            f'  router-id = "{self.router_id}"',
            *([f"  local-address-list = {json.dumps(self.listen)}"] if self.listen else []),
            "[global.apply-policy.config]",
            '  export-policy-list = ["to-pybgpd"]',
            '  default-export-policy = "reject-route"',
            "",
        ]
        for s in self.sessions:
            lines += [
                "[[neighbors]]",
                "  [neighbors.config]",
                f'    neighbor-address = "{s.neighbor}"',
                f"    peer-as = {OUR_ASN}",
                *([f'    auth-password = "{s.password}"'] if s.password else []),
                "  [neighbors.timers.config]",
                "    connect-retry = 1",
                "    hold-time = 9",
                "    keepalive-interval = 3",
                "    idle-hold-time-after-reset = 1",
                "  [neighbors.transport.config]",
                f'    local-address = "{s.local}"',
                *(["    passive-mode = true"] if s.passive else []),
            ]
            for family in s.families:
                lines += [
                    "  [[neighbors.afi-safis]]",
                    "    [neighbors.afi-safis.config]",
                    f'      afi-safi-name = "{family}-unicast"',
                    *s.gobgp_afi_safi_options,
                ]
            lines.append("")
        lines += [
            "[[defined-sets.prefix-sets]]",
            '  prefix-set-name = "ipv6"',
            "  [[defined-sets.prefix-sets.prefix-list]]",
            '    ip-prefix = "::/0"',
            '    masklength-range = "0..128"',
            "[[defined-sets.neighbor-sets]]",
            '  neighbor-set-name = "ipv6-over-ipv4"',
            # (never empty: an address no session uses stands in)
            f"  neighbor-info-list = {json.dumps([f'{a}/32' for a in v6_over_v4] or ['192.0.2.255/32'])}",
            "",
            "[[policy-definitions]]",
            '  name = "to-pybgpd"',
            "  [[policy-definitions.statements]]",  # IPv6 over the IPv4 session: one AS longer
            '    name = "ipv6-over-ipv4"',
            "    [policy-definitions.statements.conditions.match-neighbor-set]",
            '      neighbor-set = "ipv6-over-ipv4"',
            "    [policy-definitions.statements.conditions.match-prefix-set]",
            '      prefix-set = "ipv6"',
            "    [policy-definitions.statements.conditions.bgp-conditions]",
            '      route-type = "local"',
            "    [policy-definitions.statements.actions]",
            '      route-disposition = "accept-route"',
            "    [policy-definitions.statements.actions.bgp-actions.set-as-path-prepend]",
            f'      as = "{self.asn}"',
            "      repeat-n = 1",
            "  [[policy-definitions.statements]]",  # only what GoBGP originates
            '    name = "local"',
            "    [policy-definitions.statements.conditions.bgp-conditions]",
            '      route-type = "local"',
            "    [policy-definitions.statements.actions]",
            '      route-disposition = "accept-route"',
            self.extra_config,
        ]
        return "\n".join(lines) + "\n"

    def gobgp(self, *args: str) -> str:
        return output("gobgp", *args, netns=self.ns)

    def start(self) -> None:
        config = self.dir / "gobgpd.toml"
        config.write_text(self.config_text())
        argv = ["gobgpd", "-f", str(config), "--api-hosts", "127.0.0.1:50051", "-l", "info"]
        self.launch(argv, lambda: self.gobgp("global", "-j"))
        for route in self.routes:
            self.gobgp("global", "rib", "add", *self.route_args(route))

    def route_args(self, route: Route) -> list[str]:
        next_hop = self.next_hop6 if route.family == "ipv6" else self.router_id
        args = ["-a", route.family, route.prefix, "nexthop", next_hop, "origin", "igp"]
        if route.communities:
            args += ["community", ",".join(route.communities)]
        if route.large_communities:
            args += ["large-community", ",".join(route.large_communities)]
        if route.med is not None:
            args += ["med", str(route.med)]
        if route.prepend:
            args += ["aspath", ",".join(map(str, route.prepend))]
        return args

    def neighbor(self, address: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.gobgp("neighbor", address, "-j"))
        return result

    def state(self, neighbor: str) -> str:
        return GOBGP_STATES.get(self.neighbor(neighbor)["state"].get("session_state", 0), "?")

    def route(self, prefix: str) -> PeerRoute | None:
        family = "ipv6" if ":" in prefix else "ipv4"
        table = json.loads(self.gobgp("global", "rib", "-a", family, prefix, "-j") or "{}")
        for path in table.get(prefix, []):
            if path.get("best") and path.get("neighbor-ip"):
                return _gobgp_route(path["attrs"])
        return None

    def counts(self, neighbor: str) -> dict[str, tuple[int, int]]:
        out = {}
        for afi_safi in self.neighbor(neighbor).get("afi_safis", []):
            family = {1: "ipv4", 2: "ipv6"}[afi_safi["config"]["family"]["afi"]]
            state = afi_safi.get("state", {})
            out[family] = (state.get("received", 0), state.get("advertised", 0))
        return out


def _gobgp_route(attrs: list[dict[str, Any]]) -> PeerRoute:
    by_type = {a["type"]: a for a in attrs}
    segments = by_type.get(2, {}).get("as_paths", [])
    next_hop = by_type[3]["nexthop"] if 3 in by_type else by_type[14]["nexthop"]
    return PeerRoute(
        next_hop=next_hop,
        as_path=" ".join(str(asn) for seg in segments for asn in seg["asns"]),
        med=by_type[4]["metric"] if 4 in by_type else None,
        communities=frozenset(
            f"{c >> 16}:{c & 0xFFFF}" for c in by_type.get(8, {}).get("communities", [])
        ),
        large_communities=frozenset(
            f"{c['ASN']}:{c['LocalData1']}:{c['LocalData2']}"
            for c in by_type.get(32, {}).get("value", [])
        ),
    )


# ---------------------------------------------------------------- BIRD


class Bird(ProcessPeer):
    """BIRD 2 with one `protocol bgp` per session (named s0, s1, ...); queried with birdc,
    whose output is text (BIRD has no JSON)."""

    kind = "bird"
    log_name = "bird.log"

    def __init__(self, *args: Any, global_options: Sequence[str] = (), **kwargs: Any) -> None:
        """`global_options`: more top-level lines in bird.conf (e.g. "log stderr all;")."""
        super().__init__(*args, **kwargs)
        self.socket = self.dir / "bird.ctl"
        self.global_options = list(global_options)

    def protocol(self, neighbor: str) -> str:
        return f"s{[s.neighbor for s in self.sessions].index(neighbor)}"

    def config_text(self) -> str:
        lines = [f"router id {self.router_id};", *self.global_options, "protocol device { }"]
        for family in ("ipv4", "ipv6"):
            statics = " ".join(f"route {r.prefix} blackhole;" for r in self.local_routes(family))
            lines.append(f"protocol static static_{family} {{ {family}; {statics} }}")
        for name, family, extra in (
            ("out4", "ipv4", ""),
            ("out6", "ipv6", ""),
            ("out6v4", "ipv6", f"bgp_path.prepend({self.asn}); "),  # one AS longer
        ):
            body = "".join(self._tags(r) for r in self.local_routes(family))
            lines.append(
                f"filter {name} {{ if source != RTS_STATIC then reject; {body}{extra}accept; }}"
            )
        for s in self.sessions:
            channels = []
            more = "".join(f" {option}" for option in s.bird_channel_options)
            if "ipv4" in s.families:
                channels.append(f"ipv4 {{ import all; export filter out4;{more} }};")
            if "ipv6" in s.families:
                out = "out6" if s.over_ipv6 else f"out6v4; next hop address {self.next_hop6}"
                channels.append(f"ipv6 {{ import all; export filter {out};{more} }};")
            lines += [
                f"protocol bgp {self.protocol(s.neighbor)} {{",
                f"  local {s.local} as {self.asn};",
                f"  neighbor {s.neighbor} as {OUR_ASN};",
                "  hold time 9; keepalive time 3;",
                "  connect delay time 1; connect retry time 1; error wait time 1, 2;",
                *([f'  password "{s.password}";'] if s.password else []),
                *(["  passive on;"] if s.passive else []),
                *(f"  {option}" for option in s.bird_options),
                *(f"  {c}" for c in channels),
                "}",
            ]
        return "\n".join(lines) + "\n"

    @staticmethod
    def _tags(route: Route) -> str:
        sets = [f"bgp_community.add(({c.replace(':', ',')}));" for c in route.communities]
        sets += [
            f"bgp_large_community.add(({c.replace(':', ',')}));" for c in route.large_communities
        ]
        if route.med is not None:
            sets.append(f"bgp_med = {route.med};")
        sets += [f"bgp_path.prepend({asn});" for asn in reversed(route.prepend)]
        if not sets:
            return ""
        return f"if net ~ [{route.prefix}] then {{ {' '.join(sets)} }} "

    def birdc(self, *args: str) -> str:
        return output("birdc", "-s", str(self.socket), *args)

    def start(self) -> None:
        config = self.dir / "bird.conf"
        config.write_text(self.config_text())
        argv = ["bird", "-f", "-c", str(config), "-s", str(self.socket)]
        self.launch(argv, lambda: "Daemon is up" in self.birdc("show", "status"))

    def state(self, neighbor: str) -> str:
        out = self.birdc("show", "protocols", "all", self.protocol(neighbor))
        found = re.search(r"BGP state:\s+(\S+)", out)
        return found.group(1) if found else ""

    def route(self, prefix: str) -> PeerRoute | None:
        lines = self.birdc("show", "route", prefix, "all").splitlines()
        start = next((i for i, line in enumerate(lines) if line.startswith(prefix)), None)
        if start is None:
            return None
        attrs: dict[str, str] = {}
        for line in lines[start + 1 :]:
            if not line.startswith("\t"):
                break  # the next path for the same prefix: the first one is the best
            key, _, value = line.strip().partition(": ")
            attrs[key] = value
        if "BGP.as_path" not in attrs:
            return None
        return PeerRoute(
            next_hop=attrs["BGP.next_hop"].split()[0],
            as_path=attrs["BGP.as_path"],
            med=int(attrs["BGP.med"]) if "BGP.med" in attrs else None,
            communities=_bird_tuples(attrs.get("BGP.community", "")),
            large_communities=_bird_tuples(attrs.get("BGP.large_community", "")),
        )

    def counts(self, neighbor: str) -> dict[str, tuple[int, int]]:
        out = self.birdc("show", "protocols", "all", self.protocol(neighbor))
        found = re.findall(
            r"Channel (ipv[46]).*?Routes:\s+(\d+) imported, (\d+) exported", out, re.S
        )
        return {family: (int(imported), int(exported)) for family, imported, exported in found}


def _bird_tuples(text: str) -> frozenset[str]:
    """Parse "(65000,100) (65000,200)" or "(65000, 1, 2)" -> {"65000:100", ...}."""
    return frozenset(
        ":".join(part.strip() for part in group.split(","))
        for group in re.findall(r"\(([^)]*)\)", text)
    )


# ---------------------------------------------------------------- a running pair

PEERS: dict[str, type[Peer]] = {
    "frr": FrrContainer,
    "frr-direct": FrrDirect,
    "gobgp": Gobgp,
    "bird": Bird,
}


@dataclass
class Pair:
    link: Link
    peer: Peer
    ours: Pybgpd
    workdir: Path
    peer_asn: int

    @property
    def frr(self) -> Frr:
        """The peer, when it is FRR (for what only FRR's helpers do)."""
        assert isinstance(self.peer, Frr)
        return self.peer

    @property
    def neighbors(self) -> list[str]:
        """pybgpd's neighbour addresses."""
        return [str(n["address"]) for n in self.ours.neighbors]

    def start(self, *pybgpd_options: str, wait: bool = True) -> None:
        """The peer first, then pybgpd (which backs off exponentially while a peer is missing)."""
        try:
            self.peer.start()
            self.ours.start(*pybgpd_options)
            if wait:
                self.wait_established()
        except (AssertionError, RuntimeError, subprocess.SubprocessError) as exc:
            exc.add_note(self.diagnostics())
            raise

    def wait_established(self, timeout: float = 15.0) -> None:
        """Both sides of every session report Established."""

        def all_up() -> bool:
            ours = all(self.ours.state(a) == ESTABLISHED for a in self.neighbors)
            return ours and all(
                self.peer.state(s.neighbor) == ESTABLISHED for s in self.peer.sessions
            )

        wait_for(all_up, f"every session with {self.peer.kind} Established on both sides", timeout)

    def up(self, peer_address: str, our_address: str) -> bool:
        """The session between those addresses is Established on both sides."""
        ours = self.ours.state(peer_address) == ESTABLISHED
        return ours and self.peer.state(our_address) == ESTABLISHED

    def half_up(self, peer_address: str, our_address: str) -> bool:
        """Either side calls the session Established."""
        ours = self.ours.state(peer_address) == ESTABLISHED
        return ours or self.peer.state(our_address) == ESTABLISHED

    def diagnostics(self) -> str:
        return f"{self.ours.diagnostics()}\n{self.peer.diagnostics()}"


def feeder_pybgpd(
    pair: Pair, asn: int, index: int, neighbor: Mapping[str, Any], prefix: str
) -> Pybgpd:
    """Another pybgpd (AS `asn`) in the peer namespace at 10.0.INDEX.2, originating `prefix`
    to `neighbor` over IPv4: a second origin of one prefix (ADD-PATH tests). Not started;
    the caller starts and closes it."""
    own = f"10.0.{index}.2"
    workdir = pair.workdir / f"feeder{asn}"
    workdir.mkdir()
    session = {**neighbor, "local_address": own, "families": ["ipv4-unicast"], "connect_retry": 1}
    feeder = Pybgpd(
        pair.link.peer,
        workdir,
        neighbors=[session],
        routes=[Route(prefix)],
        router_id=own,
        listen=[own],
    )
    feeder.global_["asn"] = asn
    return feeder


MD5_KEY, MD5_OTHER_KEY = "md5-Right-key-7f3a", "md5-Wrong-key-c41e"
MD5_CASES = {  # session: (pybgpd's key, the peer's key)
    "right": (MD5_KEY, MD5_KEY),
    "wrong": (MD5_KEY, MD5_OTHER_KEY),
    "missing-ours": (None, MD5_KEY),
    "missing-peers": (MD5_KEY, None),
}


def add_md5_sessions(pair: Pair) -> dict[str, tuple[str, str]]:
    """Before the pair starts: one IPv4 session per MD5 case, each on its own addresses, with
    pybgpd's keys in files (`password_file`). Returns case -> (peer's address, pybgpd's)."""
    sessions = {}
    for index, (case, (ours, theirs)) in enumerate(MD5_CASES.items(), 1):
        our_address, peer_address = pair.link.add_subnet(index)
        sessions[case] = (peer_address, our_address)
        pair.peer.sessions.append(Session(our_address, peer_address, ("ipv4",), password=theirs))
        neighbor: dict[str, Any] = {
            "address": peer_address,
            "peer_asn": pair.peer_asn,
            "local_address": our_address,
            "families": ["ipv4-unicast"],
            "connect_retry": 1,
        }
        if ours is not None:
            neighbor["password_file"] = secret_file(pair.workdir, f"{case}.key", ours)
        pair.ours.neighbors.append(neighbor)
    pair.ours.global_["listen"] = [ours for _, ours in sessions.values()]
    return sessions


@contextlib.contextmanager
def bgp_pair(
    kind: str,
    *,
    sessions: Sequence[Session] | None = None,
    routes: Sequence[Route] | None = None,
    neighbors: Sequence[Mapping[str, Any]] | None = None,
    our_routes: Sequence[Route] = OUR_ROUTES,
    peer_options: Mapping[str, Any] | None = None,
    start: bool = True,
) -> Iterator[Pair]:
    """Namespaces, the peer (`kind`, with `sessions` and `routes`) and pybgpd (`neighbors`,
    `our_routes`): the standard setup unless told otherwise. Started and up unless `start` is
    false; everything is stopped and removed on the way out."""
    asn = PEER_ASN[kind]
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(short_workdir(kind))
        link = stack.enter_context(linked_namespaces())
        peer = PEERS[kind](
            link.peer,
            workdir,
            asn=asn,
            sessions=standard_sessions() if sessions is None else sessions,
            routes=peer_routes(asn) if routes is None else routes,
            **(peer_options or {}),
        )
        stack.callback(peer.close)
        wanted = standard_neighbors(asn) if neighbors is None else neighbors
        ours = Pybgpd(link.ours, workdir, neighbors=wanted, routes=our_routes)
        stack.callback(ours.close)
        pair = Pair(link, peer, ours, workdir, asn)
        if start:
            pair.start()
        yield pair


class MakePair(Protocol):
    """The `make_pair` fixture: `make_pair(kind, **bgp_pair_options)`."""

    def __call__(self, kind: str, **options: Any) -> Pair: ...
