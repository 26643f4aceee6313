"""The user guide's reference sections: current with the code, in agreement with
`kube-router --help`, and the annotation table in agreement with upstream's list and with
what the model reads."""

from __future__ import annotations

import csv
import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import kuberouter
from kuberouter import annotations, reference
from tests.kuberouter.test_cli import help_sections

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "user-guide.md"
UPSTREAM = REPO / "fixtures" / "upstream" / "kube-router-annotations.csv"
OUR_PREFIXES = ("kube-router.io/", "service.kubernetes.io/")
ROW = re.compile(r"^\| (?P<name>[^|]+) \| (?P<type>\w+) \| (?P<default>[^|]*) \| "
                 r"(?P<today>[^|]+) \| (?P<meaning>.*) \|$")  # fmt: skip


def test_the_docs_are_current() -> None:
    pages = sorted(str(page) for page in (REPO / "docs").glob("*.md"))
    assert reference.main(["--check", *pages]) == 0, "run: python -m kuberouter.reference docs/*.md"


def test_rewriting_fills_each_section_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "intro\n<!-- generated: annotations -->\nstale text\n<!-- end: annotations -->\n"
    )
    assert reference.main(["--check", str(page)]) == 1
    assert reference.main([str(page)]) == 0
    text = page.read_text()
    assert (
        "stale text" not in text
        and "`kube-router.io/rr.server`" in text
        and text.startswith("intro")
    )
    assert reference.main(["--check", str(page)]) == 0
    with pytest.raises(ValueError, match="unknown generated section 'nope'"):
        reference.render("<!-- generated: nope -->\n<!-- end: nope -->")


def documented_flags() -> dict[str, tuple[str, dict[str, str]]]:
    """flag name -> (its group heading, its row) from the guide's flag tables."""
    text = GUIDE.read_text()
    section = text[text.index("<!-- generated: flags -->") : text.index("<!-- end: flags -->")]
    found, group = {}, ""
    for line in section.splitlines():
        if line.startswith("#### "):
            group = line[5:]
        elif (match := ROW.match(line)) and match["name"].startswith("`"):
            name = match["name"].split("`--")[-1].rstrip("`")
            found[name] = (group, match.groupdict())
    return found


def test_every_flag_is_documented_as_kube_router_help_describes_it() -> None:
    shown = subprocess.run([sys.executable, "-m", "kuberouter", "--help"], capture_output=True,
                           text=True, check=True, cwd=REPO).stdout  # fmt: skip
    heading, described = help_sections(shown)
    documented = documented_flags()
    assert set(documented) == set(described)
    for name, (group, row) in documented.items():
        assert group == heading[name], name
        text = row["meaning"].replace("\\|", "|")
        if row["default"].strip():
            text += f" (default {row['default'].strip().strip('`')})"
        if row["today"] == reference.ACCEPTED:
            text += " (accepted, not implemented yet)"
        # (--help wraps its lines, also at a hyphen: compare without whitespace)
        assert re.sub(r"\s", "", described[name]) == re.sub(r"\s", "", text), name
        usage = re.search(rf"^ +(?:-\w, )?--{name}(?: (\w+))?$", shown, re.MULTILINE)
        assert usage is not None and (usage[1] or "bool") == row["type"], name


def test_the_annotations_are_upstreams() -> None:
    with UPSTREAM.open(newline="") as stream:
        upstream = {row["name"]: row for row in csv.DictReader(stream)}
    assert set(annotations.BY_NAME) == set(upstream)
    for name, row in upstream.items():
        ours = annotations.BY_NAME[name]
        assert (ours.on, ours.label) == (row["object"], row["type"] == "label"), name
    assert set(annotations.BY_NAME) >= annotations.NOT_IMPLEMENTED


def test_every_name_the_code_reads_is_in_the_table() -> None:
    """Every annotation or label name written as a constant anywhere in kuberouter (a prefix
    such as "kube-router.io/service.advertise." stands for the names built on it)."""
    read = set()
    for module in pkgutil.walk_packages(kuberouter.__path__, "kuberouter."):
        if module.name.endswith("__main__") or ".testing" in module.name:
            continue
        for value in vars(importlib.import_module(module.name)).values():
            if isinstance(value, str) and value.startswith(OUR_PREFIXES):
                read.add(value)
    names, prefixes = set(annotations.BY_NAME), {n for n in read if n.endswith(("/", "."))}
    assert read - prefixes <= names
    assert all(any(name.startswith(p) for name in names) for p in prefixes)
    assert len(read - prefixes) >= 15  # the routing controller's, the model's
