"""Cluster in a box: a whole kube-router cluster on one machine, in network namespaces (root).

    kube-router-ctl cluster up [--name krbox] [--nodes 3] [--pods-per-node 2]
                               [-f services.yaml ...] [--agent-arg=--run-firewall ...]
                               [--no-static-routes] [--no-workloads] [--state-dir DIR]
    kube-router-ctl cluster status [--name krbox]     # exit 1 when something is missing
    kube-router-ctl cluster load -f policy.yaml [--name krbox]
    kube-router-ctl cluster down [--name krbox]       # idempotent; also after a crash

What `up` builds (names derived from --name, see topology.py for the addresses):
  - a fabric namespace "<name>-fabric" with a bridge, and in it the project's test API
    server (HTTPS + token) on 10.240.0.1:6443; the kubeconfig is in the state directory;
  - N nodes "<name>-node<i>": namespaces on the fabric (10.240.0.1x), each with a
    `kube-bridge` holding its pod gateway, registered as Node objects with a pod CIDR
    10.244.<i-1>.0/24 and an InternalIP;
  - pods "<name>-node<i>-pod<j>": namespaces on their node's kube-bridge, registered as
    Running Pod objects in namespace "default" with their IP; a Pod in an `up -f` file
    becomes a pod too (after the node's own ones: its spec.nodeName or nodes in turn), its
    object kept as given (namespace, labels, ports) but Running at the pod's IP;
  - a ToR "<name>-tor": FRR bgpd, AS 64512, every node configured as an iBGP neighbor;
  - a controller manager in the fabric namespace keeping EndpointSlices for the Services
    (kube-controller-manager's EndpointSlice controller), and in every pod a workload
    answering TCP, UDP and SCTP with the pod's name (`--no-workloads`: bare namespaces);
  - one real `kube-router` agent per node inside the node's namespace, logging to
    <state>/logs/ (the service proxy in nftables mode); until the routing controller
    exists, `up` adds static routes between nodes' pod CIDRs (leave them out with
    --no-static-routes).
Nothing is created in the host's own network namespace. The state file
(<state>/state.json, default state directory /run/kube-router-cluster/<name>) records
everything as it is made; `down` removes it all, falling back to the name prefix.

Reach the box from the host by entering its namespaces, e.g.:
    export KUBECONFIG=/run/kube-router-cluster/krbox/kubeconfig
    ip netns exec krbox-fabric kubectl get nodes,pods -o wide
    ip netns exec krbox-node1-pod1 ping 10.244.1.2
    ip netns exec krbox-node1 curl -s localhost:20244/healthz
"""

from __future__ import annotations

from kuberouter.cluster.down import down
from kuberouter.cluster.load import load
from kuberouter.cluster.status import status
from kuberouter.cluster.topology import Topology, TopologyError
from kuberouter.cluster.up import UpError, UpOptions, up

__all__ = ["Topology", "TopologyError", "UpError", "UpOptions", "down", "load", "status", "up"]
