"""The state file: a JSON record of everything `up` made, written as it goes.

A namespace is recorded *before* it is created and a process right after it is started,
so a crash at any point leaves a record at least as large as what exists; `down` reads it
(and, as a fallback, looks for the cluster's prefix and pid files). Every write replaces
the file atomically, so a crash never leaves half a JSON document.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kuberouter.cluster.topology import TOR_ASN

DEFAULT_ROOT = Path("/run/kube-router-cluster")  # tmpfs: gone after a reboot, like netns
STATE_FILE = "state.json"
PID_DIR = "pids"
LOG_DIR = "logs"


def default_state_dir(name: str) -> Path:
    return DEFAULT_ROOT / name


@dataclass
class Process:
    role: str  # "apiserver", "tor-bgpd", "agent <node>"
    pid: int
    netns: str
    log: str
    argv: list[str]


@dataclass
class State:
    path: Path  # the state directory; the JSON file is path / STATE_FILE
    name: str
    nodes: int
    pods_per_node: int
    static_routes: bool
    agent_args: list[str]
    placed: list[list[Any]] = field(default_factory=list)  # [node index, "ns/name"] (up -f)
    phase: str = "building"  # "building" until every part is up, then "up"
    created: float = field(default_factory=time.time)
    netns: list[str] = field(default_factory=list)
    processes: list[Process] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    api: dict[str, str] = field(default_factory=dict)  # url, kubeconfig (never the token)
    subnets: int = 1  # fabric subnets (up --subnets)
    tor_asn: int = TOR_ASN  # the ToR's AS (up --tor-asn)
    tor_md5: bool = False  # the ToR's sessions are signed (up --tor-password-file)
    agent_image: str = ""  # up --agent-image: agents run from it in containers

    @property
    def file(self) -> Path:
        return self.path / STATE_FILE

    @property
    def pid_dir(self) -> Path:
        return self.path / PID_DIR

    @property
    def log_dir(self) -> Path:
        return self.path / LOG_DIR

    def save(self) -> None:
        data = asdict(self)
        data["path"] = str(self.path)
        scratch = self.file.with_suffix(".tmp")
        scratch.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(scratch, self.file)

    def record_netns(self, name: str) -> None:
        if name not in self.netns:
            self.netns.append(name)
            self.save()

    def record_process(self, process: Process) -> None:
        """The process now playing its role (an agent started again replaces its record)."""
        self.processes = [p for p in self.processes if p.role != process.role] + [process]
        self.save()

    def record_file(self, path: Path) -> None:
        self.files.append(str(path))
        self.save()

    def process(self, role: str) -> Process | None:
        return next((p for p in self.processes if p.role == role), None)

    @classmethod
    def load(cls, path: Path) -> State | None:
        """The recorded state, or None when there is none or it cannot be read."""
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            data: dict[str, Any] = json.loads((path / STATE_FILE).read_text())
            data["path"] = path
            data["processes"] = [Process(**p) for p in data.get("processes", [])]
            return cls(**data)
        return None
