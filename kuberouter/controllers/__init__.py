"""The agent's controllers: each turns store changes into data-plane state on this node.

firewall.py       network policy: compile for this node, apply incrementally, reconcile
podnet.py         pod network: kube-bridge, the CNI file, pod egress masquerading
loadbalancer.py   LoadBalancer addresses (one agent at a time, by a Lease): status writes
batch.py          a burst of changes gathered into one sync
"""

from __future__ import annotations
