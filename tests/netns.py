"""Network namespaces for tests: unique names, always removed, never touching the host's network."""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
from collections.abc import Iterator

_counter = itertools.count()


def unique_name(prefix: str) -> str:
    """A short name unique to this process and call (interface names allow 15 characters)."""
    return f"{prefix}{os.getpid() % 100000}{next(_counter)}"[:15]


def run(
    *args: str, netns: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    cmd = list(args)
    if netns is not None:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


@contextlib.contextmanager
def netns(prefix: str = "t") -> Iterator[str]:
    """Create a namespace with lo up; delete it (and so its links) on exit."""
    name = unique_name(prefix)
    run("ip", "netns", "add", name)
    try:
        run("ip", "link", "set", "lo", "up", netns=name)
        yield name
    finally:
        run("ip", "netns", "del", name, check=False)


@contextlib.contextmanager
def veth_pair(
    ns_a: str, addr_a: str, ns_b: str, addr_b: str, mtu: int | None = None
) -> Iterator[tuple[str, str]]:
    """Join two namespaces with a veth pair; addresses in CIDR form (v4 or v6)."""
    a, b = unique_name("va"), unique_name("vb")
    run("ip", "-n", ns_a, "link", "add", a, "type", "veth", "peer", "name", b, "netns", ns_b)
    try:
        for ns, dev, addr in ((ns_a, a, addr_a), (ns_b, b, addr_b)):
            extra = ["nodad"] if ":" in addr else []
            run("ip", "-n", ns, "addr", "add", addr, "dev", dev, *extra)
            if mtu:
                run("ip", "-n", ns, "link", "set", dev, "mtu", str(mtu))
            run("ip", "-n", ns, "link", "set", dev, "up")
        yield a, b
    finally:
        run("ip", "-n", ns_a, "link", "del", a, check=False)
