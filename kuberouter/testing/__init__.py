"""Test doubles with real protocols: a Kubernetes API server speaking HTTP (see apiserver.py).

Names are loaded on first use, so `python -m kuberouter.testing.apiserver` runs the
module once (importing it here would make runpy warn about a double import).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kuberouter.testing.apiserver import ApiServer, load_manifests, serve
    from kuberouter.testing.store import Store

__all__ = ["ApiServer", "Store", "load_manifests", "serve"]
_HOMES = {
    "ApiServer": "apiserver",
    "load_manifests": "apiserver",
    "serve": "apiserver",
    "Store": "store",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
