"""`kube-router --cleanup-config` against the real kernel, in a network namespace: the
firewall programmed with all three back ends at once (iptables-legacy, iptables-nft and
nftables), another tool's chains, rules, ipset and nft table beside it; the real command
line run inside the namespace removes exactly ours."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kuberouter.dataplane import Runner
from kuberouter.dataplane.plan import is_our_set
from kuberouter.netpol.compiler import compile_node
from tests import netns
from tests.kuberouter.dataplane.helpers import (
    BACKENDS,
    cluster_of,
    documents,
    make_backend,
    require_backend,
)

pytestmark = pytest.mark.privileged

REPO = Path(__file__).parents[3]
VARIANTS = ("legacy", "nft")
THEIR_RULES = (
    "-A FORWARD -s 203.0.113.0/24 -j OTHER-TOOL",
    "-A OTHER-TOOL -m set --match-set other-tool-set src -j RETURN",
    "-A INPUT -s 198.51.100.0/24 -j ACCEPT",
)
THEIR_TABLE = "table inet other-tool {\n chain c {\n type filter hook input priority 10;\n ip saddr 192.0.2.0/24 counter accept\n }\n}\n"


def add_theirs(runner: Runner) -> None:
    runner.run("ipset", "create", "other-tool-set", "hash:ip")
    runner.run("ipset", "add", "other-tool-set", "192.0.2.9")
    for variant in VARIANTS:
        runner.run(f"iptables-{variant}", "-w", "-N", "OTHER-TOOL")
        for rule in THEIR_RULES:
            runner.run(f"iptables-{variant}", "-w", *rule.split())
    runner.run("nft", "-f", "-", input=THEIR_TABLE)


def saved(runner: Runner, variant: str, family: int) -> str:
    tool = f"{'ip6tables' if family == 6 else 'iptables'}-{variant}-save"
    return runner.run(tool, "-t", "filter").stdout


def ours(runner: Runner) -> list[str]:
    found = [
        f"{variant}/{family}: {line}"
        for variant in VARIANTS
        for family in (4, 6)
        for line in saved(runner, variant, family).splitlines()
        if "KUBE-" in line
    ]
    found += [name for name in runner.run("ipset", "list", "-n").stdout.split() if is_our_set(name)]
    tables = runner.run("nft", "list", "tables").stdout.splitlines()
    return found + [table for table in tables if "kube-router" in table]


def assert_theirs(runner: Runner) -> None:
    for variant in VARIANTS:
        rules = saved(runner, variant, 4)
        assert all(rule in rules for rule in THEIR_RULES), (variant, rules)
    assert "192.0.2.9" in runner.run("ipset", "list", "other-tool-set").stdout
    assert "192.0.2.0/24" in runner.run("nft", "list", "table", "inet", "other-tool").stdout


def test_cleanup_config_removes_everything_ours_in_every_back_end_and_nothing_else() -> None:
    for kind in BACKENDS:
        require_backend(kind)
    desired = compile_node(cluster_of(documents("allow-from-pod-in-same-namespace")), "node-1")
    assert any(ruleset.sets for ruleset in desired.rulesets.values())
    with netns.netns("cc") as ns:
        runner = Runner(ns)
        add_theirs(runner)
        for kind in BACKENDS:
            make_backend(kind, runner).apply(desired, None)
        left = ours(runner)
        assert any(line.startswith("legacy/4: -A FORWARD") for line in left)
        assert any(line.startswith("nft/6: -A INPUT") for line in left)
        assert any(name.startswith("KUBE-") for name in left)
        assert any("kube-router-filter-ipv4" in line for line in left)
        done = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "kuberouter", "--cleanup-config"],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "firewall cleanup done" in done.stderr
        assert ours(runner) == []
        assert_theirs(runner)
        again = subprocess.run(  # nothing left to remove is not an error
            ["ip", "netns", "exec", ns, sys.executable, "-m", "kuberouter", "--cleanup-config"],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
            check=False,
        )
        assert again.returncode == 0, again.stderr
        assert_theirs(runner)
