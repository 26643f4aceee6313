"""The iptables and ipset side of the IPVS proxy (upstream's names where it has them).

Sets (ipset, `inet6:` prefixed for IPv6): kube-router-svip, -svip-prt, -local-ips (as
upstream), and -masq, -masq-outside, -pod-cidrs, -hairpin, -drop (see ipvs_plan.py).
Members change by `ipset restore` of add/del lines; a repair compares `ipset save`.

Chains, written whole by `iptables-restore --noflush` (only ours are named), with a jump
as the first rule of their built-in chain:
- filter INPUT -> KUBE-ROUTER-SERVICES: drop what `-drop` says, and what `-drop-external`
  says unless it comes from a pod or the node (they go to every endpoint); with
  --ipvs-permit-all, accept ICMP and the service ports of service IPs and reject the rest
  (upstream's chain);
- mangle PREROUTING, OUTPUT -> KUBE-ROUTER-SVC-MARK: drop sources outside a
  LoadBalancer's loadBalancerSourceRanges, the masquerade decision as a connection mark
  (0x4000), both on the original destination before IPVS rewrites it, and the fwmark of
  the node's own connections to a Local frontend;
- the fwmark of pods' connections to a Local frontend must be set after the filter table
  (the firewall's marks would change it) and before IPVS (local-in, priority 99); no
  iptables table sits there (iptables-nft's security table is at 150), so it is an
  nftables chain of our own, `fwmark` in table kube-router-ipvs-ipv4/-ipv6, priority 10;
- nat POSTROUTING -> KUBE-ROUTER-HAIRPIN (an endpoint reaching itself) and
  KUBE-ROUTER-MASQUERADE (connections marked 0x4000).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kuberouter.dataplane.commands import Runner
from kuberouter.proxy.ipvs_plan import (
    DROP,
    DROP_EXTERNAL,
    FIREWALL,
    FIREWALL_ALLOW,
    HAIRPIN,
    LOCAL_IPS,
    MASQUERADE,
    MASQUERADE_OUTSIDE,
    POD_CIDRS,
    SET_TYPES,
    SVIP,
    SVIP_PORTS,
    MarkRule,
    set_name,
)

MASQUERADE_MARK = "0x4000/0x4000"
NEW = "-m conntrack --ctstate NEW"
# table -> (built-in chain, our chain) jumps, each kept first in its built-in chain
JUMPS = {
    "filter": (("INPUT", "KUBE-ROUTER-SERVICES"),),
    "mangle": (("PREROUTING", "KUBE-ROUTER-SVC-MARK"), ("OUTPUT", "KUBE-ROUTER-SVC-MARK")),
    "nat": (("POSTROUTING", "KUBE-ROUTER-HAIRPIN"), ("POSTROUTING", "KUBE-ROUTER-MASQUERADE")),
}


def tool(family: int, variant: str, action: str) -> str:
    return f"{'ip6tables' if family == 6 else 'iptables'}-{variant}-{action}"


def chains(
    family: int, marks: Iterable[MarkRule], permit_all: bool
) -> dict[str, dict[str, list[str]]]:
    """table -> chain -> its rules (iptables-save syntax, without "-A CHAIN")."""

    def s(name: str) -> str:
        return set_name(name, family)

    icmp = "icmpv6" if family == 6 else "icmp"
    unreachable = "icmp6-port-unreachable" if family == 6 else "icmp-port-unreachable"
    services = [
        f"-m set --match-set {s(DROP)} dst,dst -j DROP",
        f"-m set --match-set {s(DROP_EXTERNAL)} dst,dst -m set ! --match-set {s(POD_CIDRS)}"
        " src -m addrtype ! --src-type LOCAL -j DROP",
        f"-m set ! --match-set {s(SVIP)} dst -j RETURN",
    ]
    if permit_all:
        kinds = ("echo-request", "destination-unreachable", "time-exceeded")
        services += [f"-p {icmp} --{icmp}-type {kind} -j ACCEPT" for kind in kinds]
        services += [
            f"-m set --match-set {s(SVIP_PORTS)} dst,dst -j ACCEPT",
            f"-m set ! --match-set {s(LOCAL_IPS)} dst -j REJECT --reject-with {unreachable}",
        ]
    connmark = f"-j CONNMARK --set-xmark {MASQUERADE_MARK}"
    mark_rules = [
        # loadBalancerSourceRanges, before IPVS rewrites the destination (also for the
        # node's own connections, which IPVS takes on the way out)
        f"{NEW} -m set --match-set {s(FIREWALL)} dst,dst"
        f" -m set ! --match-set {s(FIREWALL_ALLOW)} dst,dst,src -j DROP",
        f"{NEW} -m set --match-set {s(MASQUERADE)} dst,dst {connmark}",
        f"{NEW} -m set --match-set {s(MASQUERADE_OUTSIDE)} dst,dst"
        f" -m set ! --match-set {s(POD_CIDRS)} src {connmark}",
    ]
    fwmarks: list[str] = []
    for rule in marks:
        where = f"-d {rule.address}" if rule.address else "-m addrtype --dst-type LOCAL"
        match = f"{NEW} -p {rule.protocol} {where} --dport {rule.port}"
        if rule.from_pods:
            fwmarks.append(
                f"{match} -m set --match-set {s(POD_CIDRS)} src -j MARK --set-mark {rule.fwmark:#x}"
            )
        else:
            local = f"{match} -m addrtype --src-type LOCAL"
            mark_rules += [f"{local} {connmark}", f"{local} -j MARK --set-mark {rule.fwmark:#x}"]
    return {
        "filter": {"KUBE-ROUTER-SERVICES": services},
        "mangle": {"KUBE-ROUTER-SVC-MARK": mark_rules},
        "nat": {
            "KUBE-ROUTER-HAIRPIN": [
                f"-m set --match-set {s(HAIRPIN)} src,dst,dst -j MASQUERADE --random-fully"
            ],
            "KUBE-ROUTER-MASQUERADE": [
                f"-m connmark --mark {MASQUERADE_MARK} -j MASQUERADE --random-fully"
            ],
        },
    }


def nft_table(family: int) -> str:
    return f"{'ip6' if family == 6 else 'ip'} kube-router-ipvs-ipv{family}"


def nft_marks(family: int, marks: Iterable[MarkRule], pod_cidrs: Iterable[str]) -> str:
    """The pods' fwmarks (see the module's docstring), as one `nft -f` script."""
    ip, where = ("ip6" if family == 6 else "ip"), nft_table(family)
    cidrs = ", ".join(pod_cidrs)
    lines = [
        f"add table {where}",
        f"add chain {where} fwmark {{ type filter hook input priority 10; policy accept; }}",
        f"flush chain {where} fwmark",
    ]
    for rule in marks:
        if not rule.from_pods or not cidrs:
            continue
        dst = f"{ip} daddr {rule.address}" if rule.address else "fib daddr type local"
        lines.append(
            f"add rule {where} fwmark ct state new meta l4proto {rule.protocol} {dst}"
            f" th dport {rule.port} {ip} saddr {{ {cidrs} }} meta mark set {rule.fwmark:#x}"
        )
    return "\n".join(lines) + "\n"


def restore_text(
    tables: Mapping[str, Mapping[str, list[str]]],
    missing_jumps: Mapping[str, list[tuple[str, str]]],
) -> str:
    """iptables-restore --noflush input: each chain flushed and refilled, jumps inserted."""
    lines: list[str] = []
    for table, table_chains in tables.items():
        lines.append(f"*{table}")
        lines += [f":{chain} - [0:0]" for chain in table_chains]
        for chain, rules in table_chains.items():
            lines += [f"-A {chain} {rule}" for rule in rules]
        lines += [f"-I {builtin} 1 -j {chain}" for builtin, chain in missing_jumps.get(table, [])]
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def missing_jumps(runner: Runner, family: int, variant: str) -> dict[str, list[tuple[str, str]]]:
    """The jumps not first in their built-in chain (iptables-save of each table)."""
    missing: dict[str, list[tuple[str, str]]] = {}
    for table, jumps in JUMPS.items():
        saved = runner.run(tool(family, variant, "save"), "-t", table, check=False).stdout
        for builtin, chain in jumps:
            if f"-A {builtin} -j {chain}" not in saved:
                missing.setdefault(table, []).append((builtin, chain))
    return missing


def write_chains(runner: Runner, family: int, variant: str, text: str) -> None:
    runner.run(tool(family, variant, "restore"), "--noflush", input=text)


# -- ipset ----------------------------------------------------------------------------------


def our_sets(family: int) -> dict[str, str]:
    """Set name -> its `create` options, for one family."""
    inet = "inet6" if family == 6 else "inet"
    return {set_name(name, family): f"{kind} family {inet}" for name, kind in SET_TYPES.items()}


def read_sets(runner: Runner) -> dict[str, set[str]]:
    """Our sets as `ipset save` lists them: name -> members."""
    wanted = {*our_sets(4), *our_sets(6)}
    found: dict[str, set[str]] = {}
    for line in runner.run("ipset", "save").stdout.splitlines():
        verb, _, rest = line.partition(" ")
        name, _, member = rest.partition(" ")
        if name not in wanted:
            continue
        if verb == "create":
            found.setdefault(name, set())
        elif verb == "add":
            found.setdefault(name, set()).add(member.split(" ")[0])
    return found


def set_changes(
    creates: Iterable[tuple[str, str]],
    adds: Iterable[tuple[str, str]],
    deletes: Iterable[tuple[str, str]],
) -> str:
    """`ipset restore` input: sets made if missing, members added and deleted."""
    lines = [f"create {name} {options} -exist" for name, options in creates]
    lines += [f"add {name} {member} -exist" for name, member in adds]
    lines += [f"del {name} {member} -exist" for name, member in deletes]
    return "".join(f"{line}\n" for line in lines)
