"""One node's pod network as pure functions of node facts and options (no I/O here).

bridge.py   kube-bridge: the gateway addresses (first address of each pod CIDR), the MTU
cni.py      the CNI network configuration (bridge + host-local IPAM + portmap) as text
egress.py   pod egress masquerading: the pod-subnet and node-address sets, the NAT rule

The back ends that program these live in kuberouter/dataplane/ (bridge.py, cniconf.py,
egress.py); kuberouter/controllers/podnet.py feeds them from the store.
"""

from __future__ import annotations
