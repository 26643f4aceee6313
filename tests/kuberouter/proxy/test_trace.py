"""`service trace` against the hand-written packet-flow table, and its command line."""

from __future__ import annotations

import json

import pytest

from kuberouter.ctl import main as ctl_main
from kuberouter.proxy.trace import trace
from tests.kuberouter.proxy.flows import FIXTURES, FLAGS, Row, config, rows, source_ip, state_for

ROWS = rows()


@pytest.mark.parametrize("mode", ["nftables", "ipvs"])
@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_trace_agrees_with_the_packet_flow_table(row: Row, mode: str) -> None:
    state = state_for(row.node, config(f"--service-proxy-mode={mode}"))
    result = trace(state, source_ip(row.source), row.destination, row.port, row.protocol)
    assert result.verdict == row.verdict_in(mode), result.reason
    assert result.endpoints == tuple(sorted(row.endpoints))
    assert result.masquerade == row.masquerade, result.reason


def test_the_table_covers_every_verdict_and_protocol() -> None:
    assert {row.verdict for row in ROWS} == {"dnat", "reject", "drop", "none"}
    assert {row.protocol for row in ROWS} == {"TCP", "UDP", "SCTP"}
    assert {row.masquerade for row in ROWS if row.verdict == "dnat"} == {True, False}


def _ctl(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = ctl_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_trace_command_prints_the_json_the_issue_names(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _ctl(
        capsys, "service", "trace", "-f", str(FIXTURES / "cluster.yaml"), "--node", "node-1",
        "--from", "192.168.0.100", "--to", "192.168.0.1:30080", *FLAGS, "-o", "json",
    )  # fmt: skip
    assert code == 0
    answer = json.loads(out)
    assert answer["verdict"] == "dnat"
    assert answer["endpoints"] == ["10.1.1.10:8080", "10.1.2.10:8080"]
    assert answer["masquerade"] is True


def test_agent_flags_change_the_answer(capsys: pytest.CaptureFixture[str]) -> None:
    base = ("service", "trace", "-f", str(FIXTURES / "cluster.yaml"), "--node", "node-1",
            "--from", "10.1.1.11", "--to", "10.96.0.10:80")  # fmt: skip
    _, plain, _ = _ctl(capsys, *base)
    _, masked, _ = _ctl(capsys, *base, "--masquerade-all")
    assert json.loads(plain)["masquerade"] is False
    assert json.loads(masked)["masquerade"] is True
    _, strict, _ = _ctl(capsys, *base[:-2], "--to", "203.0.113.10:80")
    _, allowed, _ = _ctl(capsys, *base[:-2], "--to", "203.0.113.10:80", *FLAGS)
    assert json.loads(strict)["verdict"] == "none"  # strict validation, no range given
    assert json.loads(allowed)["verdict"] == "dnat"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--to", "10.96.0.10:80", "--masquerade-alll"], "unknown flag: --masquerade-alll"),
        (
            ["--to", "10.96.0.10:80", "--service-external-ip-range=nope"],
            "service-external-ip-range",
        ),
        (["--to", "[fd00::1]:80"], "same address family"),
    ],
)
def test_bad_input_is_one_line_naming_it(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    base = ["service", "trace", "-f", str(FIXTURES / "cluster.yaml"), "--node", "node-1",
            "--from", "10.1.1.11"]  # fmt: skip
    code, _, err = _ctl(capsys, *base, *argv)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_a_malformed_destination_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        ctl_main(["service", "trace", "-f", str(FIXTURES / "cluster.yaml"), "--node", "node-1",
                  "--from", "10.1.1.11", "--to", "10.96.0.10"])  # fmt: skip
    assert exited.value.code == 2
    assert "is not IP:PORT" in capsys.readouterr().err


def test_unknown_node_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _ctl(
        capsys, "service", "trace", "-f", str(FIXTURES / "cluster.yaml"), "--node", "node-9",
        "--from", "10.1.1.11", "--to", "10.96.0.10:80",
    )  # fmt: skip
    assert code == 2
    assert "node node-9 not found" in err
