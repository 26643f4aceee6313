"""The agent's controllers: each turns store changes into data-plane state on this node.

firewall.py   network policy: compile for this node, apply incrementally, reconcile
"""

from __future__ import annotations
