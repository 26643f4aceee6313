"""The Kubernetes layer: list + watch of six kinds into a typed in-memory store.

- client.py: the official `kubernetes` client (in-cluster, --kubeconfig, --master), lists
  and watch streams read as raw JSON and turned straight into model views.
- watch.py: one `Reflector` per kind in a worker thread: list, watch with bookmarks,
  relist on 410 Gone, reconnect with backoff from the last resourceVersion.
- sync.py: `Watcher`, the trio task that owns the store (single writer) and bounds the
  initial sync by --cache-sync-timeout.
- store.py: `Store` of frozen model views by kind and key, snapshots, `Change` events.
"""

from __future__ import annotations

from kuberouter.k8s.client import RESOURCES, ConfigError, load_api_client
from kuberouter.k8s.store import KIND_NAMES, Change, Model, Snapshot, Store
from kuberouter.k8s.sync import CacheSyncTimeout, Watcher
from kuberouter.k8s.watch import Backoff, KindStats

__all__ = [
    "KIND_NAMES",
    "RESOURCES",
    "Backoff",
    "CacheSyncTimeout",
    "Change",
    "ConfigError",
    "KindStats",
    "Model",
    "Snapshot",
    "Store",
    "Watcher",
    "load_api_client",
]
