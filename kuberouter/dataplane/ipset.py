"""ipset through `ipset restore` and `ipset save`, for the iptables back end.

Writes use render_ipset's text: each set is filled under a temporary name and swapped
in, so a packet sees the old or the new members, never a half-filled set. When the set's
programmed version is known and just one member differs (a pod joined or left), that one
`add`/`del` is sent instead: as atomic, and it does not cost the size of the set. Sets are
destroyed only when asked, after the rules that match on them are gone. Reads keep our
sets only (KUBE-SRC-/KUBE-DST-, their inet6: twins, and leftover TMP- sets).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from kuberouter.dataplane.commands import Runner
from kuberouter.dataplane.plan import Listing, is_our_set, member_changes
from kuberouter.netpol.render import render_ipset
from kuberouter.netpol.ruleset import IPSet


class Ipset:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def write(self, sets: Sequence[IPSet], replaced: Mapping[str, IPSet] | None = None) -> None:
        """Program `sets`; `replaced`: their programmed versions, where known."""
        lines: list[str] = []
        whole: list[IPSet] = []
        for ipset in sets:
            old = (replaced or {}).get(ipset.name)
            delta = member_changes(old, ipset) if old is not None else None
            if delta is None or len(delta[0]) + len(delta[1]) != 1:
                whole.append(ipset)
                continue
            lines += [f"add {ipset.name} {entry} -exist" for entry in delta[0]]
            lines += [f"del {ipset.name} {entry} -exist" for entry in delta[1]]
        text = "".join(line + "\n" for line in lines) + render_ipset(whole)
        if text:
            self.runner.run("ipset", "restore", input=text)

    def destroy(self, names: Iterable[str]) -> None:
        text = "".join(f"destroy {name}\n" for name in names)
        if text:
            # -exist: a set that is already gone is not an error.
            self.runner.run("ipset", "-exist", "restore", input=text)

    def read(self) -> dict[tuple[int, str], Listing]:
        """(family, name) -> ("<type> <family>", sorted members as ipset prints them)."""
        return parse_save(self.runner.run("ipset", "save").stdout)


def parse_save(
    text: str, keep: Callable[[str], bool] = is_our_set
) -> dict[tuple[int, str], Listing]:
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
            headers[name] = (family, f"{fields[0]} {_option(fields, 'family')}")
            members.setdefault(name, [])
        elif verb == "add":
            members.setdefault(name, []).append(rest)
    return {
        (family, name): (header, *sorted(members[name]))
        for name, (family, header) in headers.items()
    }


def _option(fields: list[str], key: str) -> str:
    try:
        return fields[fields.index(key) + 1]
    except (ValueError, IndexError):
        return ""
