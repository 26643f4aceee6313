"""The CNI configuration file: read, written only when its text changes, removed.

A container runtime may read the directory at any moment, so a write never leaves a
partial file: the text goes to a hidden temporary file in the same directory (a name
without a .conf/.conflist/.json suffix, which runtimes ignore), is flushed to disk, and is
renamed over the file in one step.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

MODE = 0o644  # runtimes read it as another user; it holds no secret


def read(path: Path) -> str | None:
    """The file's text; None if there is no such file."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def write_if_changed(path: Path, text: str) -> bool:
    """Make `path` hold `text`; True if it was written, False if it already did."""
    if read(path) == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, MODE)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return True


def remove(path: Path) -> bool:
    """Remove `path`; True if there was one."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
