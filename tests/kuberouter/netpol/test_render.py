"""Rendering: iptables-restore --noflush text touches only our chains, ipset text swaps
sets in, nft text replaces only our tables; and the kernel accepts all three."""

from __future__ import annotations

import re
import subprocess

import pytest

from kuberouter.netpol.compiler import compile_node
from kuberouter.netpol.render import render_ipset, render_iptables, render_nft
from kuberouter.netpol.render_nft import hook_layout
from kuberouter.netpol.ruleset import Chain, DesiredState, Rule
from tests import netns
from tests.kuberouter.netpol.builders import cluster, pod, policy
from tests.support import require_root, require_tools

OUR_CHAIN = re.compile(
    r"^(KUBE-ROUTER-(INPUT|FORWARD|OUTPUT)|KUBE-NWPLCY-[A-Z0-9]+|KUBE-POD-FW-[A-Z2-7]{16})$"
)
PORTS = (("http", 80, "TCP"), ("dns", 53, "UDP"), ("sctp", 9000, "SCTP"))


def state() -> DesiredState:
    a = pod("x/a", "10.0.0.1", "fd00::1", labels={"app": "a"}, node="node-1", ports=PORTS)
    b = pod("x/b", "10.0.0.2", "fd00::2", labels={"app": "b"}, node="node-1", ports=PORTS)
    c = pod("y/c", "10.0.1.3", labels={"app": "c"}, node="node-2", ports=PORTS)
    policies = [
        policy(
            "x/web",
            {
                "podSelector": {"matchLabels": {"app": "a"}},
                "ingress": [
                    {
                        "from": [{"podSelector": {"matchLabels": {"app": "b"}}}],
                        "ports": [{"port": "http"}],
                    },
                    {
                        "from": [
                            {
                                "ipBlock": {
                                    "cidr": "0.0.0.0/0",
                                    "except": ["10.0.0.0/8", "10.0.1.0/24"],
                                }
                            }
                        ]
                    },
                    {
                        "from": [{"ipBlock": {"cidr": "::/0", "except": ["fd00::/64"]}}],
                        "ports": [{"port": 9000, "endPort": 9010, "protocol": "SCTP"}],
                    },
                ],
            },
        ),
        policy(
            "x/out",
            {
                "podSelector": {},
                "egress": [
                    {
                        "to": [{"namespaceSelector": {}}],
                        "ports": [{"port": "dns", "protocol": "UDP"}, {"protocol": "UDP"}],
                    },
                    {"to": [{"ipBlock": {"cidr": "192.168.0.0/16"}}]},
                ],
            },
        ),
    ]
    return compile_node(cluster([a, b, c], policies), "node-1")


def test_iptables_restore_text_holds_only_our_chains() -> None:
    for ruleset in state().rulesets.values():
        text = render_iptables(ruleset)
        lines = text.splitlines()
        assert lines[0] == "*filter" and lines[-1] == "COMMIT"
        declared = [line for line in lines if line.startswith(":")]
        assert declared, "no chains declared"
        for line in declared:
            name, policy_word, counters = line[1:].split(" ")
            assert OUR_CHAIN.match(name) or name == "KUBE-NWPLCY-COMMON", name
            assert (policy_word, counters) == ("-", "[0:0]")
        names = {line[1:].split(" ")[0] for line in declared}
        for line in lines[1:-1]:
            if line.startswith(":"):
                continue
            # --noflush compatible: only appends to our own chains, no flush/policy/delete
            verb, chain = line.split(" ")[:2]
            assert verb == "-A" and chain in names, line
            jump = re.search(r" -j (\S+)", line)
            assert jump is not None
            target = jump.group(1)
            assert (
                target in {"ACCEPT", "DROP", "REJECT", "RETURN", "MARK", "NFLOG"} or target in names
            )


def test_builtin_chains_are_never_in_the_restore_text() -> None:
    desired = state()
    text = render_iptables(desired.rulesets[4], stale_chains=["KUBE-POD-FW-STALESTALESTALE"])
    for builtin in ("INPUT", "FORWARD", "OUTPUT"):
        assert f":{builtin} " not in text and f"-A {builtin} " not in text
    assert "-X KUBE-POD-FW-STALESTALESTALE" in text
    assert desired.builtin_jumps == (
        ("INPUT", "KUBE-ROUTER-INPUT"),
        ("FORWARD", "KUBE-ROUTER-FORWARD"),
        ("OUTPUT", "KUBE-ROUTER-OUTPUT"),
    )


def test_names_fit_the_kernel_limits() -> None:
    for ruleset in state().rulesets.values():
        assert all(len(name) <= 28 for name in ruleset.chains)
        assert all(len(name) <= 31 for name in ruleset.sets)
        prefix = "inet6:" if ruleset.family == 6 else "KUBE-"
        assert all(name.startswith(prefix) for name in ruleset.sets)


def test_ipset_text_swaps_each_set_in() -> None:
    ruleset = state().rulesets[4]
    text = render_ipset(ruleset.sets.values())
    for ipset in ruleset.sets.values():
        assert "swap TMP-" in text and f" {ipset.name}\n" in text
        assert f"create {ipset.name} {ipset.type} family inet maxelem " in text
    assert " 10.0.0.0/8 nomatch" in text
    assert " 0.0.0.0/1\n" in text and " 128.0.0.0/1\n" in text  # /0 split for hash:net
    assert ",6:80\n" in text and ",17:53\n" in text  # hash:ip,port protocols by number


def test_nft_script_replaces_only_our_table() -> None:
    for family, ruleset in state().rulesets.items():
        text = render_nft(ruleset)
        kind = "ip" if family == 4 else "ip6"
        table = f"{kind} kube-router-filter-ipv{family}"
        assert text.splitlines()[:3] == [
            f"add table {table}",
            f"delete table {table}",
            f"table {table} {{",
        ]
        tables = re.findall(r"^(?:add |delete )?table (\S+ \S+)", text, flags=re.MULTILINE)
        assert set(tables) == {table}
        assert "inet6:" not in text
        assert "type filter hook forward priority filter; policy accept;" in text


@pytest.mark.privileged
@pytest.mark.parametrize("variant", ["", "-legacy"], ids=["iptables-nft", "iptables-legacy"])
def test_the_kernel_accepts_the_rendered_text(variant: str) -> None:
    require_root()
    require_tools("ip", "ipset", f"iptables{variant}-restore", f"ip6tables{variant}-restore", "nft")
    desired = state()
    sets = [ipset for ruleset in desired.rulesets.values() for ipset in ruleset.sets.values()]
    with netns.netns("np") as name:

        def load(tool: list[str], text: str) -> None:
            done = subprocess.run(
                ["ip", "netns", "exec", name, *tool],
                check=False,
                input=text,
                text=True,
                capture_output=True,
            )
            assert done.returncode == 0, (tool, done.stderr)

        load(["ipset", "restore"], render_ipset(sets))
        load(["ipset", "restore"], render_ipset(sets))  # again: the swap path on existing sets
        for family, tool in ((4, f"iptables{variant}-restore"), (6, f"ip6tables{variant}-restore")):
            load([tool, "--noflush"], render_iptables(desired.rulesets[family]))
            load([tool, "--noflush"], render_iptables(desired.rulesets[family]))
            load(["nft", "-f", "-"], render_nft(desired.rulesets[family]))
            load(["nft", "-f", "-"], render_nft(desired.rulesets[family]))
        saved = netns.run(f"iptables{variant}-save", "-t", "filter", netns=name).stdout
        assert "-A KUBE-POD-FW-" in saved and "--match-set" in saved


def _jump(target: str, *, src: str | None = None, dst: str | None = None) -> Rule:
    return Rule(target=target, src_addr=src, dst_addr=dst, comment=f"jump to {target}")


def test_nft_keeps_each_run_of_pod_jumps_as_one_verdict_map_and_the_order_exact() -> None:
    other = Rule(target="KUBE-NWPLCY-DENY-NEW-DST", dst_addr="10.0.0.0/8")
    chain = Chain(
        name="KUBE-ROUTER-FORWARD",
        hook="FORWARD",
        rules=(
            other,
            _jump("KUBE-POD-FW-A-IN", dst="10.0.0.1"),
            _jump("KUBE-POD-FW-B-IN", dst="10.0.0.2"),
            _jump("KUBE-POD-FW-C-IN", dst="10.0.0.1"),  # same address: both chains run
            _jump("KUBE-POD-FW-A-OUT", src="10.0.0.1"),
            Rule(target="ACCEPT", mark=(0x20000, 0x20000)),
            _jump("KUBE-POD-FW-D-IN", dst="10.0.0.4"),  # a second run: kept in its place
        ),
    )
    layout = hook_layout(chain, 4)
    assert layout.rules[1:3] == (
        "ip daddr vmap @KUBE-ROUTER-FORWARD-DADDR",
        'ip daddr 10.0.0.1 jump KUBE-POD-FW-C-IN comment "jump to KUBE-POD-FW-C-IN"',
    )
    assert layout.rules[3] == "ip saddr vmap @KUBE-ROUTER-FORWARD-SADDR"
    assert layout.rules[-1].startswith("ip daddr 10.0.0.4 jump KUBE-POD-FW-D-IN")
    assert len(layout.rules) == 6
    daddr, saddr = (dict(vmap.jumps) for vmap in reversed(layout.maps))
    assert daddr == {"10.0.0.1": "KUBE-POD-FW-A-IN", "10.0.0.2": "KUBE-POD-FW-B-IN"}
    assert saddr == {"10.0.0.1": "KUBE-POD-FW-A-OUT"}
