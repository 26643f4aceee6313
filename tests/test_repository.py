"""The repository stands alone: it names no package host, reads nothing beside itself, and
builds its Debian base from the mirror the machine's own apt sources name."""

from __future__ import annotations

import ipaddress
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
URL_HOST = re.compile(r"\b[a-z][a-z0-9+.-]*://\[?([A-Za-z0-9.:_-]+)")
# Names reserved for documentation and tests (RFC 2606, RFC 6761).
RESERVED = re.compile(r"(^|\.)(localhost|example|invalid|test)$|(^|\.)example\.(com|net|org)$")
# Package hosts, written as patterns so that this file does not name them either.
PACKAGE_HOSTS = re.compile(
    r"\b(deb|security|ftp\.[a-z]{2})\.debian\.org|\bpypi\.org|files\.pythonhosted\.org"
    r"|\bdocker\.io|\bquay\.io|\bghcr\.io|\bgcr\.io|registry\.k8s\.io|\bgithub\.com"
)
SIBLING = re.compile(r"\.\./shared|/ *[\"']shared[\"']")


def tracked_text_files() -> Iterator[tuple[Path, str]]:
    names = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, names):
        path = ROOT / name
        try:
            yield path, path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # binary captures, or deleted in the working tree


def is_network_host(found: str) -> bool:
    """Is what follows `scheme://` a host name on the network (not an address, not a
    reserved or single-label name, not a version as in containerd://1.7.24)?"""
    host = found if found.count(":") > 1 else found.split(":", 1)[0]  # IPv6, or host:port
    try:
        ipaddress.ip_address(host)
        return False
    except ValueError:
        pass
    labels = host.rstrip(".").lower().split(".")
    if len(labels) < 2 or not re.search("[a-z]", labels[-1]):
        return False
    return not RESERVED.search(".".join(labels))


def test_no_file_names_a_package_host() -> None:
    found = []
    for path, text in tracked_text_files():
        for number, line in enumerate(text.splitlines(), 1):
            hosts = [m[1] for m in URL_HOST.finditer(line) if is_network_host(m[1])]
            hosts += [m[0] for m in PACKAGE_HOSTS.finditer(line)]
            found += [f"{path.relative_to(ROOT)}:{number}: {host}" for host in hosts]
    assert found == []


def test_nothing_reads_beside_the_repository() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path, text in tracked_text_files()
        if path.suffix in (".py", ".sh", ".toml", ".cfg", "")
        for number, line in enumerate(text.splitlines(), 1)
        if SIBLING.search(line)
    ]
    assert found == []


def test_the_url_check_can_fail() -> None:
    assert is_network_host("mirror.invalid.org")
    assert is_network_host("mirror.invalid.org:8080")
    assert not is_network_host("10.240.0.1:6443")
    assert not is_network_host("::1")
    assert not is_network_host("kube.example")
    assert not is_network_host("1.7.24")
    assert URL_HOST.search("f'https://{self.api_ip}:6443'") is None
    assert PACKAGE_HOSTS.search("FROM " + "docker" + ".io/library/debian")


MIRROR = ["bash", str(ROOT / "scripts" / "debian-base.sh"), "--mirror"]
DEB822 = """\
Types: deb
URIs: http://security.mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://src.mirror.example/debian
Suites: bookworm

Types: deb
# a comment
URIs: http://mirror.example/debian http://second.mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
"""


def mirror(apt_etc: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        MIRROR, env={"APT_ETC": str(apt_etc), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, check=False, timeout=20,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"sources.list.d/debian.sources": DEB822}, "http://mirror.example/debian"),
        ({"sources.list": "# none\ndeb [signed-by=/k.gpg arch=amd64] http://one.example/d "
                          "bookworm main\ndeb http://two.example/d bookworm main\n"},
         "http://one.example/d"),
        ({"sources.list": "deb http://sec.example/d bookworm-security main\n",
          "sources.list.d/x.sources": "Types: deb\nURIs: http://last.example/d\nSuites: bookworm"},
         "http://last.example/d"),  # the last stanza of a file has no blank line after it
    ],
)  # fmt: skip
def test_the_debian_mirror_comes_from_apt_sources(
    tmp_path: Path, files: dict[str, str], expected: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    done = mirror(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{expected}\n"


def test_no_mirror_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("deb http://old.example/d bullseye main\n")
    done = mirror(tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("debian-base: no 'bookworm' archive in ")
