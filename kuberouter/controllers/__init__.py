"""The agent's controllers: each turns store changes into data-plane state on this node.

firewall.py   network policy: compile for this node, apply incrementally, reconcile
podnet.py     pod network: kube-bridge, the CNI file, pod egress masquerading
"""

from __future__ import annotations
