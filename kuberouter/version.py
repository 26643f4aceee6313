"""The kube-router version: the installed distribution's, else the source tree's."""

from __future__ import annotations

from importlib import metadata

_SOURCE_VERSION = "0.1.0"


def _installed_version() -> str:
    try:
        return metadata.version("kube-router")
    except metadata.PackageNotFoundError:  # running from a source checkout
        return _SOURCE_VERSION


__version__ = _installed_version()
