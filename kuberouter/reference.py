"""The docs' reference sections, generated from the code so that they cannot drift: every flag
(kuberouter.flags, with the defaults and notes `kube-router --help` shows) and every
annotation (kuberouter.annotations), each marked as working today or accepted only, and
the cluster in a box's top-of-rack FRR configuration (kuberouter.cluster.tor).

    python -m kuberouter.reference docs/*.md           # rewrite their sections
    python -m kuberouter.reference --check docs/*.md   # exit 1 if one is out of date

A section is the text between a line `<!-- generated: NAME -->` and `<!-- end: NAME -->`.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from kuberouter import annotations, cli
from kuberouter.cluster import tor
from kuberouter.cluster.state import default_state_dir
from kuberouter.cluster.topology import Topology
from kuberouter.flags import FLAGS, Group
from kuberouter.options import NOT_IMPLEMENTED

WORKS, ACCEPTED = "yes", "not yet"
SECTION = re.compile(r"(<!-- generated: (\w+) -->\n)(.*?)(<!-- end: \2 -->)", re.DOTALL)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def flags_markdown() -> str:
    """One table per --help group: flag, type, default, works today, meaning."""
    lines: list[str] = []
    for group in Group:
        lines += [f"#### {group.value}", "", "| Flag | Type | Default | Works today | Meaning |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for flag in (f for f in FLAGS if f.group is group):
            name = f"`-{flag.short}`, `--{flag.name}`" if flag.short else f"`--{flag.name}`"
            default = f"`{cli.default_text(flag)}`" if cli.default_text(flag) else ""
            today = ACCEPTED if flag.name in NOT_IMPLEMENTED else WORKS
            kind = flag.kind.value or "bool"
            lines.append(f"| {name} | {kind} | {default} | {today} | {_cell(flag.help)} |")
        lines.append("")
    return "\n".join(lines)


def annotations_markdown() -> str:
    """One table per kind of object: name, controller, works today, meaning."""
    lines: list[str] = []
    for kind in (annotations.NODE, annotations.SERVICE):
        lines += [f"#### {kind}", "", "| Annotation | Read by | Works today | Meaning |",
                  "|---|---|---|---|"]  # fmt: skip
        for item in (a for a in annotations.ANNOTATIONS if a.on == kind):
            name = f"`{item.name}`" + (" (label)" if item.label else "")
            today = ACCEPTED if item.name in annotations.NOT_IMPLEMENTED else WORKS
            lines.append(f"| {name} | {item.controller} | {today} | {_cell(item.help)} |")
        lines.append("")
    return "\n".join(lines)


def tor_markdown() -> str:
    """The ToR's bgpd.conf in a default box of three nodes (`cluster up --nodes 3`)."""
    topology = Topology.build("krbox", 3, 2)
    log = default_state_dir(topology.name) / "tor" / "bgpd.log"
    return f"```\n{tor.config(topology, log)}```\n"


SECTIONS: dict[str, Callable[[], str]] = {
    "flags": flags_markdown,
    "annotations": annotations_markdown,
    "tor": tor_markdown,
}


def render(text: str) -> str:
    """`text` with every generated section made anew; an unknown section name is an error."""

    def fill(match: re.Match[str]) -> str:
        if match[2] not in SECTIONS:
            raise ValueError(f"unknown generated section {match[2]!r}")
        return f"{match[1]}{SECTIONS[match[2]]()}{match[4]}"

    return SECTION.sub(fill, text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kuberouter.reference", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only say whether it is current")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    stale = []
    for path in args.files:
        text = path.read_text(encoding="utf-8")
        fresh = render(text)
        if fresh != text:
            stale.append(str(path))
            if not args.check:
                path.write_text(fresh, encoding="utf-8")
    if args.check and stale:
        print(f"out of date (run python -m kuberouter.reference): {', '.join(stale)}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
