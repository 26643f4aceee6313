"""kube-router-ctl policy simulate / explain, run as users run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kuberouter.ctl import main
from kuberouter.netpol.truthtable import parse_table

REPO = Path(__file__).parents[3]
FIXTURES = REPO / "fixtures" / "netpol"
CLUSTER = str(FIXTURES / "cluster.yaml")


def ctl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "kuberouter.ctl", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        input=stdin,
        timeout=60,
    )


def test_simulate_json_is_source_then_destination_with_self() -> None:
    scenario = FIXTURES / "allow-from-pod-in-same-namespace"
    done = ctl(
        "policy", "simulate", "-f", CLUSTER, "-f", str(scenario / "policies.yaml"), "-o", "json"
    )
    assert done.returncode == 0, done.stderr
    matrix = json.loads(done.stdout)
    assert matrix == parse_table((scenario / "expected-80-TCP.txt").read_text())
    assert matrix["x/b"]["x/a"] is True and matrix["x/c"]["x/a"] is False
    assert set(matrix["x/a"]) == set(matrix)  # every destination, the source itself included


def test_simulate_table_is_the_e2e_truth_table() -> None:
    scenario = FIXTURES / "ports"
    done = ctl(
        "policy",
        "simulate",
        "-f",
        CLUSTER,
        "-f",
        str(scenario / "policies.yaml"),
        "--port",
        "81",
        "--protocol",
        "tcp",
    )
    assert done.returncode == 0, done.stderr
    expected = (scenario / "expected-81-TCP.txt").read_text()
    assert done.stdout == "".join(
        line for line in expected.splitlines(keepends=True) if not line.startswith("#")
    )
    assert done.stdout.splitlines()[0].split()[:3] == ["-", "x/a", "x/b"]


def test_explain_names_the_policies_in_both_directions() -> None:
    scenario = FIXTURES / "egress-denied-even-if-server-allows"
    args = ["policy", "explain", "-f", CLUSTER, "-f", str(scenario / "policies.yaml")]
    blocked = ctl(*args, "--from", "x/a", "--to", "y/b", "--port", "80/TCP")
    assert blocked.returncode == 0, blocked.stderr
    text = blocked.stdout
    assert text.startswith("x/a -> y/b on 80/TCP: BLOCKED")
    assert "egress of x/a" in text and "ingress of y/b" in text
    assert "x/allow-to-ns-y-pod-a: no rule matches this packet" in text
    assert "allowed by y/allow-from-xa-on-yb-match-selector ingress[0] from[0]" in text
    assert "REJECT at KUBE-POD-FW-" in text
    allowed = ctl(*args, "--from", "x/a", "--to", "y/a", "--port", "80")
    assert allowed.stdout.startswith("x/a -> y/a on 80/TCP: ALLOWED")
    assert "allowed by x/allow-to-ns-y-pod-a egress[0] to[0]" in allowed.stdout


def test_explain_says_when_a_pod_is_not_isolated(capsys: pytest.CaptureFixture[str]) -> None:
    policies = str(FIXTURES / "deny-egress-from-pod" / "policies.yaml")
    status = main(
        [
            "policy",
            "explain",
            "-f",
            CLUSTER,
            "-f",
            policies,
            "--from",
            "y/b",
            "--to",
            "x/c",
            "-o",
            "json",
        ]
    )
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    assert report["allowed"] is True
    (flow,) = report["flows"]
    assert flow["egress"]["outcome"] == "not isolated"
    assert flow["ingress"]["outcome"] == "not isolated"


def test_missing_file_is_one_line_and_status_2() -> None:
    done = ctl("policy", "simulate", "-f", "no-such-file.yaml")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "kube-router-ctl: error: no-such-file.yaml: No such file or directory"
    ]


def test_bad_yaml_names_the_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Pod\nmetadata: [unclosed\n")
    assert main(["policy", "simulate", "-f", str(bad)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"kube-router-ctl: error: {bad}: invalid YAML at line")
    assert len(error.splitlines()) == 1


def test_invalid_object_is_reported_and_skipped(tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "kind: List\nitems:\n"
        "- kind: NetworkPolicy\n  metadata: {name: broken, namespace: x}\n"
        "  spec: {ingress: [{from: [{ipBlock: {cidr: nonsense}}]}]}\n"
        "- kind: NetworkPolicy\n  metadata: {name: deny, namespace: y}\n  spec: {podSelector: {}}\n"
        "- kind: Service\n  metadata: {name: web, namespace: x}\n"
    )
    done = ctl("policy", "simulate", "-f", CLUSTER, "-f", str(extra), "-o", "json")
    assert done.returncode == 0
    assert (
        "warning: skipping NetworkPolicy x/broken: spec.ingress[0].from[0].ipBlock.cidr"
        in done.stderr
    )
    assert "ignoring 1 object(s) of kind Service" in done.stderr
    matrix = json.loads(done.stdout)
    assert matrix["x/a"]["y/a"] is False  # the valid policy in the same file applies
    assert matrix["y/a"]["x/a"] is True  # the broken one does not


def test_unknown_pod_and_bad_port_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "explain", "-f", CLUSTER, "--from", "x/nope", "--to", "x/a"]) == 2
    assert "pod x/nope not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["policy", "simulate", "-f", CLUSTER, "--port", "99999"])
    assert exited.value.code == 2


def test_stdin_input(capsys: pytest.CaptureFixture[str]) -> None:
    done = ctl("policy", "simulate", "-f", "-", "-o", "json", stdin=Path(CLUSTER).read_text())
    assert done.returncode == 0
    assert all(all(row.values()) for row in json.loads(done.stdout).values())
