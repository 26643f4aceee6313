"""Running the kernel tools (ipset, iptables-*, nft), optionally inside a network namespace.

Every tool call of the data plane goes through `Runner.run`, so one object decides where
the tools act: `Runner()` is this process's namespace (the node agent), `Runner("ns1")`
runs them in the named network namespace `ns1` (tests, and the cluster-in-a-box). A
runner can keep a log of its calls, input text included, for tests that count restores or
read what was sent.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Sequence

import attrs

_FAILED_LINE = re.compile(r"line (\d+)")


@attrs.frozen(kw_only=True)
class Call:
    argv: tuple[str, ...]  # without the namespace prefix
    input: str | None
    returncode: int
    seconds: float

    @property
    def tool(self) -> str:
        return self.argv[0]


@attrs.frozen(kw_only=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


class CommandError(RuntimeError):
    """A tool exited non-zero; the message names the input line it complained about."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str, text: str | None):
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr = stderr.strip()
        self.failed_line = _failed_line(self.stderr, text)
        where = f" (input: {self.failed_line!r})" if self.failed_line else ""
        super().__init__(f"{' '.join(self.argv)} exited {returncode}: {self.stderr}{where}")


def _failed_line(stderr: str, text: str | None) -> str | None:
    found = _FAILED_LINE.search(stderr)
    if found is None or text is None:
        return None
    lines = text.splitlines()
    number = int(found.group(1))
    return lines[number - 1] if 0 < number <= len(lines) else None


class Runner:
    """Runs tools in one network namespace (None: the current one).

    `record=True` keeps every call (with its input text) in `calls`; otherwise only
    `count` grows. `timeout` bounds each call (a stuck lock must not hang the agent)."""

    def __init__(self, netns: str | None = None, *, record: bool = False, timeout: float = 120.0):
        self.netns = netns
        self.record = record
        self.timeout = timeout
        self.calls: list[Call] = []
        self.count = 0
        self.seconds_by_tool: dict[str, float] = {}

    def prefix(self) -> list[str]:
        # nsenter joins only the network namespace: `ip netns exec` also remounts /sys
        # for the tool, a few milliseconds per call that these tools do not need.
        return [] if self.netns is None else ["nsenter", f"--net=/run/netns/{self.netns}"]

    def run(self, *argv: str, input: str | None = None, check: bool = True) -> Completed:
        started = time.perf_counter()
        try:
            done = subprocess.run(
                [*self.prefix(), *argv],
                input=input,
                capture_output=True,
                text=True,
                check=False,
                timeout=self.timeout,
            )
        except subprocess.TimeoutExpired:
            self.count += 1
            raise CommandError(argv, -1, f"timed out after {self.timeout} s", None) from None
        seconds = time.perf_counter() - started
        self.count += 1
        self.seconds_by_tool[argv[0]] = self.seconds_by_tool.get(argv[0], 0.0) + seconds
        if self.record:
            self.calls.append(
                Call(argv=tuple(argv), input=input, returncode=done.returncode, seconds=seconds)
            )
        if check and done.returncode != 0:
            raise CommandError(argv, done.returncode, done.stderr, input)
        return Completed(
            argv=tuple(argv),
            returncode=done.returncode,
            stdout=done.stdout,
            stderr=done.stderr,
            seconds=seconds,
        )

    def calls_of(self, tool: str) -> list[Call]:
        """Recorded calls of one tool (e.g. "iptables-nft-restore")."""
        return [call for call in self.calls if call.tool == tool]

    def forget(self) -> None:
        self.calls.clear()
