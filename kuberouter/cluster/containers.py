"""Agents from an image (`up --agent-image IMAGE`): each node's agent runs as a hostNetwork
pod would, a privileged podman container in the node's network namespace, with the mounts
the DaemonSet gives it (/lib/modules, /run/xtables.lock) and the box's state directory.

The container runs in the foreground (`podman run --rm`), so it is a process of the box like
any other: its output is the agent's log, stopping it stops the agent. `remove` deletes any
container left behind (a podman client killed before it could clean up).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from kuberouter.cluster import netns
from kuberouter.cluster.topology import Node

# runc, and ulimits below the sandbox's: crun and the defaults fail at setrlimit here.
PODMAN = ("podman", "--runtime", "runc")
LIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")


class ImageError(RuntimeError):
    """The agent image is not there to run."""


def name(node: Node) -> str:
    return f"{node.name}-agent"


def require_image(image: str) -> None:
    if shutil.which(PODMAN[0]) is None:
        raise ImageError(f"--agent-image {image}: podman is not installed")
    try:
        netns.run([*PODMAN, "image", "exists", image])
    except netns.CommandError:
        raise ImageError(
            f"--agent-image {image}: no such local image (build it: bash scripts/agent-image.sh)"
        ) from None


def run_argv(image: str, node: Node, state_dir: Path, env: Mapping[str, str]) -> list[str]:
    """`podman run` of the image's entry point (kube-router); the agent's flags follow.
    Started from the host's namespaces (podman needs the host's cgroup mounts, which
    `ip netns exec` hides), it joins the node's network namespace itself. The box's state
    directory is shared at its own path (the kubeconfig, the BGP control socket, the CNI
    file are there), and `env` reaches the agent."""
    return [
        *PODMAN, "run", "--rm", "--replace", "--pull=never", "--name", name(node),
        "--privileged", "--network", f"ns:{netns.NETNS_DIR / node.netns}", *LIMITS,
        *(f"--env={key}={value}" for key, value in env.items()),
        "--volume", f"{state_dir}:{state_dir}",
        "--volume", "/lib/modules:/lib/modules:ro",
        "--volume", "/run/xtables.lock:/run/xtables.lock",
        image,
    ]  # fmt: skip


def remove(prefix: str, say: Callable[[str], None]) -> None:
    """Remove every container named "<prefix>*" (the box's agents), running or not."""
    if shutil.which(PODMAN[0]) is None:
        return
    listed = netns.run([*PODMAN, "ps", "--all", "--format", "{{.Names}}"], check=False)
    for container in listed.split():
        if container.startswith(prefix):
            netns.run([*PODMAN, "rm", "--force", "--time", "2", container], check=False)
            say(f"removed container {container}")
