"""`cluster down`: remove everything a box made, from its state file and by its name prefix.

Works after a crash or a half-finished `up`, and a second run finds nothing to do:
  1. processes: every process inside one of the box's namespaces (`ip netns pids`), plus
     any recorded pid (state file, pid files) whose command line names the state
     directory, so a reused pid is never killed; SIGTERM, then SIGKILL;
  2. namespaces: those recorded and any named "<name>-*" (their links go with them);
  3. agent containers named "<name>-*" (`up --agent-image`) a killed client left behind;
  4. links named "<name>-*" in the host's namespace (never made by `up`; a safety net);
  5. the state directory (only when it holds a state file, or is empty).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path

from kuberouter.cluster import agents, containers, netns, procs, tor
from kuberouter.cluster.state import DEFAULT_ROOT, STATE_FILE, State
from kuberouter.cluster.topology import prefix_of

Say = Callable[[str], None]


def down(name: str, state_dir: Path, say: Say = print) -> None:
    done: list[str] = []

    def tell(message: str) -> None:
        done.append(message)
        say(message)

    remove(name, state_dir, tell)
    if not done:
        say(f"cluster {name}: nothing to remove")


def remove(name: str, state_dir: Path, say: Say) -> None:
    prefix = prefix_of(name)
    state = State.load(state_dir)
    namespaces = list(dict.fromkeys([*(state.netns if state else []), *netns.listed(prefix)]))
    stop_processes(state, state_dir, namespaces, say)
    for name_ in reversed(namespaces):  # pods before nodes before the fabric
        if netns.exists(name_):
            netns.delete(name_)
            say(f"deleted netns {name_}")
    containers.remove(prefix, say)
    for link in netns.root_links(prefix):
        netns.run(["ip", "link", "delete", link], check=False)
        say(f"deleted link {link} in the host namespace")
    remove_state_dir(state_dir, say)


def stop_processes(state: State | None, state_dir: Path, namespaces: list[str], say: Say) -> None:
    marker = str(state_dir)
    recorded = [p.pid for p in state.processes] if state else []
    candidates = {
        pid for pid in [*recorded, *procs.pid_files(state_dir)] if marker in procs.cmdline(pid)
    }
    for _ in range(3):  # again, for children a process started while it was stopping
        found = candidates | {pid for ns in namespaces for pid in netns.pids_in(ns)}
        stopped = procs.stop(found)
        for pid in stopped:
            say(f"stopped pid {pid}")
            tor.remove_crash_dir(pid)
        if not stopped:
            return
        candidates = set()


def _holds_box_state(state_dir: Path) -> bool:
    """The state file, the pid files, or only the agents' CNI files (which agents still
    running after the state was lost write again until stopped): a box's, safe to remove."""
    if (state_dir / STATE_FILE).exists() or (state_dir / "pids").is_dir():
        return True
    entries = {entry.name for entry in state_dir.iterdir()} if state_dir.is_dir() else set()
    return entries == {agents.CNI_DIR}


def remove_state_dir(state_dir: Path, say: Say) -> None:
    if _holds_box_state(state_dir):
        shutil.rmtree(state_dir, ignore_errors=True)
        say(f"removed {state_dir}")
    elif state_dir.is_dir() and not any(state_dir.iterdir()):
        state_dir.rmdir()
    elif state_dir.exists():
        say(f"left {state_dir} in place: it holds no box state")
    if state_dir.parent == DEFAULT_ROOT:
        with contextlib.suppress(OSError):
            DEFAULT_ROOT.rmdir()  # only when no other box uses it
