"""Cluster in a box: a whole kube-router cluster on one machine, in network namespaces (root).

    kube-router-ctl cluster up [--name krbox] [--nodes 3] [--pods-per-node 2]
                               [-f services.yaml ...] [--agent-arg=--run-firewall ...]
                               [--no-static-routes] [--no-workloads] [--subnets N]
                               [--node-annotation NODE:KEY=VALUE ...] [--tor-asn ASN]
                               [--tor-password-file FILE] [--agent-image IMAGE]
                               [--state-dir DIR]
    kube-router-ctl cluster status [--name krbox]     # exit 1 when something is missing
    kube-router-ctl cluster load -f policy.yaml [--name krbox]
    kube-router-ctl cluster agent stop|start|restart NODE... [--name krbox]
    kube-router-ctl cluster down [--name krbox]       # idempotent; also after a crash

What `up` builds (names derived from --name, see topology.py for the addresses):
  - a fabric namespace "<name>-fabric" with a bridge, and in it the project's test API
    server (HTTPS + token) on 10.240.0.1:6443; the kubeconfig is in the state directory;
    with --subnets N, N bridges and subnets 10.240.<s>.0/24 that the ToR routes between;
  - N nodes "<name>-node<i>": namespaces on the fabric (10.240.0.1x; with --subnets, turn
    by turn on each subnet), each with a `kube-bridge` holding its pod gateway, registered
    as Node objects with a pod CIDR 10.244.<i-1>.0/24, an InternalIP and the annotations
    given with --node-annotation (e.g. node2:kube-router.io/rr.client=42);
  - pods "<name>-node<i>-pod<j>": namespaces on their node's kube-bridge, registered as
    Running Pod objects in namespace "default" with their IP; a Pod in an `up -f` file
    becomes a pod too (after the node's own ones: its spec.nodeName or nodes in turn), its
    object kept as given (namespace, labels, ports) but Running at the pod's IP;
  - a ToR "<name>-tor": FRR bgpd, AS 64512 (the cluster's: iBGP, it reflects the nodes'
    routes), every node a neighbor; with --tor-asn another AS (eBGP, next hops kept: see
    tor.py), with --tor-password-file TCP MD5 on every session, on both sides;
  - a controller manager in the fabric namespace keeping EndpointSlices for the Services
    (kube-controller-manager's EndpointSlice controller), and in every pod a workload
    answering TCP, UDP and SCTP with the pod's name (`--no-workloads`: bare namespaces);
  - one real `kube-router` agent per node (its service proxy in nftables mode) inside the
    node's namespace, logging to <state>/logs/ and serving its BGP control socket on
    <state>/bgp-<i>.sock (`pybgp --socket <state>/bgp-1.sock neighbor`); `up` returns once
    every agent is healthy and every BGP session is Established. `up` also adds static routes
    between the pod CIDRs of nodes on a subnet, a stand-in for the routing controller: leave them
    out with --no-static-routes to see the agents route over BGP.
    With --agent-image, each agent runs from that image as a privileged container in the
    node's namespace, as a hostNetwork pod is (image: scripts/agent-image.sh).
`cluster agent stop|start|restart` stops an agent as a kubelet would (SIGTERM: with
--bgp-graceful-restart a graceful stop) and starts it again with its command line.
Nothing is created in the host's own network namespace. The state file
(<state>/state.json, default state directory /run/kube-router-cluster/<name>) records
everything as it is made; `down` removes it all, falling back to the name prefix.

Reach the box from the host by entering its namespaces, e.g.:
    export KUBECONFIG=/run/kube-router-cluster/krbox/kubeconfig
    ip netns exec krbox-fabric kubectl get nodes,pods -o wide
    ip netns exec krbox-node1-pod1 ping 10.244.1.2
    ip netns exec krbox-node1 curl -s localhost:20244/healthz
    ip netns exec krbox-node1 ip route show proto 17      # the routes the agent learned
    pybgp --socket /run/kube-router-cluster/krbox/bgp-1.sock neighbor
"""

from __future__ import annotations

from kuberouter.cluster.agent_control import agent
from kuberouter.cluster.down import down
from kuberouter.cluster.load import load
from kuberouter.cluster.status import status
from kuberouter.cluster.topology import Topology, TopologyError
from kuberouter.cluster.up import UpError, UpOptions, up

__all__ = [
    "Topology", "TopologyError", "UpError", "UpOptions", "agent", "down", "load", "status", "up",
]  # fmt: skip
