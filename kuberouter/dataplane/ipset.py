"""ipset through `ipset restore` and `ipset save`, for the iptables back end.

Writes use render_ipset's text: each set is filled under a temporary name and swapped
in, so a packet sees the old or the new members, never a half-filled set. When the set's
programmed version is known and fewer members differ than it holds (pods joined or
left), just those `add`/`del` lines are sent: each member's change is atomic (a pod is in
or out, never half), and the write costs the change, not the size of the set (a swap of
a cluster-wide named-port set rewrites 50,000 entries for one new pod). Sets are
destroyed only when asked, after the rules that match on them are gone. Reads keep our
sets only (KUBE-SRC-/KUBE-DST-, their inet6: twins, and leftover TMP- sets), their
members in the compiler's notation: ipset prints a hash:net host entry without its /32
(/128), which is put back.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

from kuberouter.dataplane.commands import Runner
from kuberouter.dataplane.plan import SetListing, is_our_set, member_changes
from kuberouter.netpol.render import IPSET_MAXELEM, ipset_member, render_ipset
from kuberouter.netpol.ruleset import IPSet


def set_listing(ipset: IPSet) -> SetListing:
    """What `read` lists for `ipset` when the kernel holds exactly it."""
    family = "inet" if ipset.family == 4 else "inet6"
    holes = (f"{entry} nomatch" for entry in ipset.nomatch)
    return f"{ipset.type} {family} maxelem {IPSET_MAXELEM}", frozenset([*ipset.entries, *holes])


class Ipset:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def write(
        self,
        sets: Sequence[IPSet],
        replaced: Mapping[str, IPSet] | None = None,
        existing: Collection[str] = (),
    ) -> None:
        """Program `sets`; `replaced`: their programmed versions, where known;
        `existing`: the sets the kernel holds already."""
        lines: list[str] = []
        whole: list[IPSet] = []
        for ipset in sets:
            old = (replaced or {}).get(ipset.name)
            delta = member_changes(old, ipset) if old is not None else None
            if delta is None or len(delta[0]) + len(delta[1]) >= max(len(ipset.entries), 2):
                whole.append(ipset)
                continue
            lines += [f"add {ipset.name} {ipset_member(ipset, e)} -exist" for e in delta[0]]
            lines += [f"del {ipset.name} {ipset_member(ipset, e)} -exist" for e in delta[1]]
        text = "".join(line + "\n" for line in lines) + render_ipset(whole, existing)
        if text:
            self.runner.run("ipset", "restore", input=text)

    def destroy(self, names: Iterable[str]) -> None:
        text = "".join(f"destroy {name}\n" for name in names)
        if text:
            # -exist: a set that is already gone is not an error.
            self.runner.run("ipset", "-exist", "restore", input=text)

    def read(self) -> dict[tuple[int, str], SetListing]:
        """(family, name) -> ("<type> <family> maxelem <n>", members)."""
        return parse_save(self.runner.run("ipset", "save").stdout)


def parse_save(
    text: str, keep: Callable[[str], bool] = is_our_set
) -> dict[tuple[int, str], SetListing]:
    """The sets named by `keep` (default: the firewall's own) in an `ipset save` text."""
    headers: dict[str, tuple[int, str]] = {}
    members: dict[str, list[str]] = {}
    for line in text.splitlines():
        verb, _, rest = line.partition(" ")
        name, _, rest = rest.partition(" ")
        if not keep(name):
            continue
        if verb == "create":
            fields = rest.split()
            family = 6 if _option(fields, "family") == "inet6" else 4
            header = f"{fields[0]} {_option(fields, 'family')} maxelem {_option(fields, 'maxelem')}"
            headers[name] = (family, header)
            members.setdefault(name, [])
        elif verb == "add":
            members.setdefault(name, []).append(rest)
    found: dict[tuple[int, str], SetListing] = {}
    for name, (family, header) in headers.items():
        entries = members[name]
        if header.startswith("hash:net"):
            entries = [_with_length(entry, family) for entry in entries]
        found[(family, name)] = (header, frozenset(entries))
    return found


def _with_length(entry: str, family: int) -> str:
    """A hash:net member with its prefix length, as the compiler writes it."""
    network, space, flag = entry.partition(" ")
    if "/" not in network:
        network += "/32" if family == 4 else "/128"
    return network + space + flag


def _option(fields: list[str], key: str) -> str:
    try:
        return fields[fields.index(key) + 1]
    except (ValueError, IndexError):
        return ""
