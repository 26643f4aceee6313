"""The main demo, `bash scripts/demo.sh`, end to end, judged by what it prints.

Each step's claim is checked in the output a person reads, not taken from its "ok" line:
the nodes' BGP tables (pybgp) and the ToR's (vtysh), the route and the answer of a pod on
another node, which web pods answered the ClusterIP and the LoadBalancer IP, a connection
refused after the NetworkPolicy and `policy explain` naming it. A run with --keep leaves
the cluster up and prints the lines to explore and remove it (and a second run of that name
leaves it alone); a run interrupted with
Ctrl-C (SIGINT to the demo's process group, as a terminal sends it) removes everything.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kuberouter.cluster.topology import LOADBALANCER_RANGE
from tests.kuberouter.cluster.conftest import REPO, Box, leftovers, new_box
from tests.support import require_tools

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

DEMO = ["bash", str(REPO / "scripts" / "demo.sh"), "--no-setup"]
STATE_ROOT = Path("/run/kube-router-cluster")  # the demo keeps the box's default state dir
NODE_IPS = {1: "10.240.0.11", 2: "10.240.0.12", 3: "10.240.0.13"}
POD_CIDRS = {"10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"}


def demo_box(tmp_path: Path) -> Box:
    require_tools("kubectl", "timeout")
    made = new_box(tmp_path, prefix="dm")
    return Box(made.name, STATE_ROOT / made.name, tmp_path)


def steps(output: str) -> dict[str, str]:
    """The demo's output by step: {"1": text of step 1, ...}."""
    parts = re.split(r"^== \[(\d+)/\d+\] ", output, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def answers(text: str) -> list[tuple[str, str]]:
    """(pod, the source it saw) of every numbered probe line in `text`."""
    return re.findall(r"^\s+\d+: answered by (\S+) \(it saw (\S+)\)$", text, re.MULTILINE)


def table_rows(text: str, first: str) -> list[list[str]]:
    """The rows after the heading line starting with `first` (until a blank line)."""
    block = text.split(first, 1)[1].split("\n", 1)[1]
    rows = []
    for line in block.splitlines():
        if not line.strip() or line.lstrip().startswith(("->", "$")):
            break
        rows.append(line.split())
    return rows


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Box, str]]:
    """One whole run with --keep: (its box, its output); the box is removed afterwards."""
    box = demo_box(tmp_path_factory.mktemp("demo"))
    try:
        done = subprocess.run([*DEMO, "--keep", "--name", box.name], capture_output=True,
                              text=True, timeout=600, cwd=REPO, check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stderr == ""
        yield box, done.stdout
    finally:
        subprocess.run(box.argv("down"), capture_output=True, timeout=120, cwd=REPO, check=False)
    assert leftovers(box) == []


def test_the_cluster_comes_up_with_a_loadbalancer_ip(kept: tuple[Box, str]) -> None:
    box, output = kept
    text = steps(output)["1"]
    nodes = [row for row in table_rows(text, "NAME ") if row[0].startswith("node/")]
    assert [(row[0], row[1]) for row in nodes] == [
        (f"node/{box.name}-node{i}", "Ready") for i in (1, 2, 3)
    ]
    service = re.search(r"^ +service/web +(\S+) +(\S+) +(\S+)", text, re.MULTILINE)
    assert service is not None, text
    assert service.groups()[:2] == ("LoadBalancer", "10.96.0.10")
    assert ipaddress.ip_address(service[3]) in LOADBALANCER_RANGE


def test_each_node_has_its_sessions_and_the_tor_every_route(kept: tuple[Box, str]) -> None:
    box, output = kept
    text = steps(output)["2"]
    tables = text.split("$ .venv/bin/pybgp --socket ")[1:]
    assert len(tables) == 3
    for i, table in enumerate(tables, 1):
        assert table.startswith(f"{box.state_dir}/bgp-{i}.sock neighbor")
        peers = {row[0]: row[3] for row in table_rows(table, "Peer ")}
        expected = {ip for n, ip in NODE_IPS.items() if n != i} | {"10.240.0.254"}
        assert peers == dict.fromkeys(expected, "Established"), table
    lb_ip = steps(output)["5"].split("IP ", 1)[1].split(":", 1)[0]
    tor = table_rows(text, "   Network ")
    networks = {row[0][3:] for row in tor if row[0].startswith("*") and len(row[0]) > 3}
    assert networks == POD_CIDRS | {"10.96.0.10/32", f"{lb_ip}/32"}, text


def test_a_pod_reaches_another_nodes_pod_over_a_learned_route(kept: tuple[Box, str]) -> None:
    box, output = kept
    text = steps(output)["3"]
    assert "10.244.1.0/24 via 10.240.0.12 dev" in text  # `ip route show proto 17`
    assert re.search(r"^\s+10\.244\.1\.2 via 10\.240\.0\.12 dev", text, re.MULTILINE)
    recorded = text.split("RR:", 1)[1].split("\n\n", 1)[0].split()
    assert recorded[:4] == ["10.244.0.2", "10.240.0.11", "10.244.1.1", "10.244.1.2"]
    assert f"answered by {box.name}-node2-pod1 (it saw 10.244.0.2)" in text


def test_the_cluster_ip_is_answered_by_both_web_pods(kept: tuple[Box, str]) -> None:
    seen = answers(steps(kept[1])["4"])
    assert len(seen) == 6  # every try answered, each by a web pod, seeing the client
    assert {pod for pod, _ in seen} == {"web-1", "web-2"}
    assert {source for _, source in seen} == {"10.244.0.2"}


def test_the_loadbalancer_ip_is_answered_from_the_tor(kept: tuple[Box, str]) -> None:
    text = steps(kept[1])["5"]
    seen = answers(text)
    assert len(seen) == 6, text
    assert {pod for pod, _ in seen} == {"web-1", "web-2"}
    assert {source for _, source in seen} <= set(NODE_IPS.values())  # masqueraded by a node


def test_the_policy_refuses_what_worked_and_explain_says_why(kept: tuple[Box, str]) -> None:
    box, output = kept
    applied, why = steps(output)["6"], steps(output)["7"]
    assert re.search(r"before: \S+ -> web-1 \(\S+\): answered by web-1", applied)
    assert "networkpolicy.networking.k8s.io/web-from-frontends created" in applied
    assert re.search(r"after:  \S+ -> web-1 \(\S+\): refused$", applied, re.MULTILINE)
    headline = f"default/{box.name}-node1-pod1 -> default/web-1 on 8080/TCP: BLOCKED"
    assert headline in why
    assert "isolated by: default/web-from-frontends" in why
    assert "default/web-from-frontends: no rule matches this packet" in why


def test_keep_leaves_the_cluster_and_says_how_to_remove_it(kept: tuple[Box, str]) -> None:
    box, output = kept
    assert "every step did what it says" in steps(output)["8"]
    assert f".venv/bin/kube-router-ctl cluster down --name {box.name}" in output
    assert f"export KUBECONFIG={box.state_dir}/kubeconfig" in output
    again = subprocess.run([*DEMO, "--name", box.name], capture_output=True, text=True,
                           timeout=60, cwd=REPO, check=False)  # fmt: skip
    assert again.returncode == 2  # a second run of that name leaves the kept cluster alone
    assert f"a cluster named {box.name} exists already" in again.stderr
    status = subprocess.run(box.argv("status"), capture_output=True, text=True, timeout=60,
                            cwd=REPO, check=False)  # fmt: skip
    assert status.returncode == 0, status.stdout + status.stderr


def test_ctrl_c_removes_everything(tmp_path: Path) -> None:
    box = demo_box(tmp_path)
    # SIGINT as a terminal delivers it: a shell that starts with it ignored (as a script's
    # background commands do) cannot trap it, and the demo would not see Ctrl-C.
    previous = signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        demo = subprocess.Popen([*DEMO, "--pause", "--name", box.name], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, cwd=REPO,
                                start_new_session=True)  # fmt: skip
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        assert demo.stdin is not None and demo.stdout is not None
        demo.stdin.write("\n")  # Enter for step 1 only: step 2 waits, the cluster up
        demo.stdin.flush()
        seen = ""
        # Until the demo waits in `read` for step 2: a SIGINT while a child runs that handles
        # it and exits normally would be taken by bash as handled by the child.
        while not seen.endswith("(Enter for step 2) "):
            char = demo.stdout.read(1)
            assert char, seen
            seen += char
        assert "== [1/" in seen and "== [2/" not in seen, seen
        os.killpg(demo.pid, signal.SIGINT)
        rest, _ = demo.communicate(timeout=120)
        left = leftovers(box)  # before the safety net below
    finally:
        if demo.poll() is None:
            demo.kill()
        subprocess.run(box.argv("down"), capture_output=True, timeout=120, cwd=REPO, check=False)
    assert demo.returncode == 130, seen + rest
    assert "demo: interrupted" in rest
    assert f"cluster down --name {box.name}" in rest
    assert left == []


def test_a_failing_step_is_named_and_the_rest_still_runs(tmp_path: Path) -> None:
    """With the ToR's table unreadable (a `vtysh` first on PATH that answers only the
    session summary `cluster up` waits on), the steps that read it fail, say so and are
    named in the summary; the others pass; all is removed."""
    box = demo_box(tmp_path)
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "vtysh").write_text(
        "#!/bin/sh\n"
        f'case "$*" in *"unicast summary json"*) exec {shutil.which("vtysh")} "$@" ;; esac\n'
        "echo 'vtysh: cannot reach bgpd' >&2\nexit 1\n"
    )
    (shim / "vtysh").chmod(0o755)
    env = dict(os.environ, PATH=f"{shim}:{os.environ['PATH']}")
    done = subprocess.run([*DEMO, "--name", box.name], capture_output=True, text=True,
                          timeout=600, cwd=REPO, env=env, check=False)  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    failed = {number for number, text in steps(done.stdout).items() if "-> FAILED: " in text}
    assert failed == {"2", "5"}, done.stdout  # the ToR's table; the ToR's route to the LB IP
    summary = steps(done.stdout)["8"]
    assert "2 step(s) did not do what they say" in summary
    assert "[2] the ToR lacks some of" in summary and "[5] LoadBalancer IP" in summary
    assert "6 of 6 answered, by web-1 and web-2" in steps(done.stdout)["4"]
    assert leftovers(box) == []
