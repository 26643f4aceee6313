"""What runs in the box beside the agents, as a cluster would have it: the controller
manager keeping EndpointSlices (controller_manager.py), and in every pod a workload that
answers TCP, UDP and SCTP with the pod's name (echo.py).

A pod given as a manifest serves its declared container ports (TCP and UDP); a generated
pod serves 80 on both. Every pod answers an SCTP INIT on any port.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from kuberouter.cluster import procs, server
from kuberouter.cluster.api import Object
from kuberouter.cluster.state import State
from kuberouter.cluster.topology import Topology

CONTROLLER_MANAGER = "controller-manager"
DEFAULT_PORTS = (80,)


def start_controller_manager(topology: Topology, state: State) -> None:
    kubeconfig = str(server.kubeconfig_path(state))
    argv = [sys.executable, "-m", "kuberouter.cluster.controller_manager",
            "--kubeconfig", kubeconfig, "--netns", topology.fabric_netns]  # fmt: skip
    procs.start(state, CONTROLLER_MANAGER, topology.fabric_netns, argv)


def ports_of(manifest: Object | None, protocol: str) -> list[int]:
    if manifest is None:
        return list(DEFAULT_PORTS)
    return sorted({
        int(port["containerPort"])
        for container in (manifest.get("spec") or {}).get("containers") or []
        for port in container.get("ports") or []
        if port.get("protocol", "TCP") == protocol
    })  # fmt: skip


def start_pods(topology: Topology, state: State, manifests: Iterable[Object]) -> None:
    """One echo process per pod, in the pod's namespace."""
    given = {f"{m['metadata'].get('namespace', 'default')}/{m['metadata'].get('name')}": m
             for m in manifests if m.get("kind") == "Pod"}  # fmt: skip
    for _, pod in topology.pods():
        manifest = given.get(pod.manifest) if pod.manifest else None
        name = manifest["metadata"]["name"] if manifest else pod.name
        argv = [sys.executable, "-m", "kuberouter.cluster.echo", "--name", name, "--sctp",
                "--tcp", ",".join(map(str, ports_of(manifest, "TCP"))),
                "--udp", ",".join(map(str, ports_of(manifest, "UDP")))]  # fmt: skip
        procs.start(state, f"echo {pod.name}", pod.netns, argv)
