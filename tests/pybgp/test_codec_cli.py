"""`pybgp decode` / `pybgp encode` as an operator runs them: exit codes, one-line errors,
RFC 7606 verdicts in the output, raw streams from a file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

UPDATE = (
    "ffffffffffffffffffffffffffffffff002f020000001440010100400206020100000001400304c0000201180a0001"
)
KEEPALIVE = "ffffffffffffffffffffffffffffffff001304"


def pybgp(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pybgp", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def test_decode_argument_and_stdin_with_whitespace() -> None:
    out = pybgp("decode", UPDATE)
    assert out.returncode == 0
    assert json.loads(out.stdout)["nlri"] == ["10.0.1.0/24"]
    spaced = " ".join(UPDATE[i : i + 8] for i in range(0, len(UPDATE), 8)) + "\n" + KEEPALIVE
    lines = pybgp("decode", stdin=spaced).stdout.splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["UPDATE", "KEEPALIVE"]


def test_encode_gives_back_the_bytes() -> None:
    decoded = pybgp("decode", UPDATE + KEEPALIVE).stdout
    assert pybgp("encode", stdin=decoded).stdout.split() == [UPDATE, KEEPALIVE]


def test_raw_stream_from_file(tmp_path: Path) -> None:
    path = tmp_path / "capture.bin"
    path.write_bytes(bytes.fromhex(KEEPALIVE + UPDATE + KEEPALIVE))
    lines = pybgp("decode", "--file", str(path)).stdout.splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["KEEPALIVE", "UPDATE", "KEEPALIVE"]


def test_malformed_update_shows_the_verdict_and_exits_0() -> None:
    bad_origin = UPDATE.replace("40010100", "40010107")
    out = pybgp("decode", bad_origin)
    assert out.returncode == 0
    obj = json.loads(out.stdout)
    assert obj["error"]["action"] == "treat-as-withdraw"
    assert (obj["error"]["code"], obj["error"]["subcode"], obj["error"]["attribute"]) == (
        3,
        6,
        "origin",
    )
    assert obj["withdrawn"] == ["10.0.1.0/24"]  # what was still decodable


def test_first_as_check_with_ebgp_context() -> None:
    obj = json.loads(pybgp("decode", "--ebgp", "--peer-as", "7", UPDATE).stdout)
    assert obj["error"]["subcode"] == 11


def test_bad_input_is_one_line_and_exit_2() -> None:
    for args, stdin in ((("decode", "zz"), ""), (("decode", UPDATE[:-2]), ""), (("encode",), "{")):
        out = pybgp(*args, stdin=stdin)
        assert out.returncode == 2, out
        assert out.stdout == "" and len(out.stderr.strip().splitlines()) == 1
        assert "Traceback" not in out.stderr


def test_encode_names_the_bad_field() -> None:
    out = pybgp("encode", stdin='{"type": "UPDATE", "nlri": ["10.0.0.1/24"]}')
    assert out.returncode == 2 and "nlri" in out.stderr
