"""`pybgp decode` and `pybgp encode`: BGP messages as JSON, for captures and for checking
the codec from outside."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from pybgp.wire.constants import HEADER_LEN, Family, MessageType
from pybgp.wire.context import CodecContext
from pybgp.wire.errors import Action, BGPError, MalformedUpdate, Problem
from pybgp.wire.header import check_header
from pybgp.wire.message import decode_message, message_from_json


class UsageError(Exception):
    """Input that cannot be read at all: one line on stderr, exit status 2."""


def add_context_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("session context (what decoding depends on)")
    group.add_argument(
        "--asn4",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="AS numbers are 4 octets (both sides sent the capability; default)",
    )
    group.add_argument(
        "--addpath",
        action="append",
        default=[],
        metavar="FAMILY",
        help="ADD-PATH path identifiers in FAMILY (ipv4-unicast, ipv6-unicast)",
    )
    group.add_argument(
        "--ibgp",
        dest="ibgp",
        action="store_true",
        default=True,
        help="messages come from an internal peer (default)",
    )
    group.add_argument(
        "--ebgp",
        dest="ibgp",
        action="store_false",
        help="messages come from an external peer (RFC 7606 eBGP rules)",
    )
    group.add_argument(
        "--peer-as",
        type=int,
        metavar="ASN",
        help="with --ebgp: AS_PATH must start with this AS (RFC 4271 §6.3)",
    )
    group.add_argument(
        "--extended-message",
        action="store_true",
        help="RFC 8654 extended messages (up to 65535 octets) negotiated",
    )


def context_from(args: argparse.Namespace) -> CodecContext:
    try:
        families = frozenset(Family.from_name(name) for name in args.addpath)
    except ValueError as exc:
        raise UsageError(f"--addpath: {exc}") from None
    return CodecContext(
        asn4=args.asn4,
        addpath_rx=families,
        addpath_tx=families,
        ibgp=args.ibgp,
        extended_message=args.extended_message,
        peer_asn=args.peer_as,
    )


def read_input(args: argparse.Namespace, stdin: TextIO) -> bytes:
    if args.file:
        try:
            with open(args.file, "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise UsageError(f"--file: {exc.strerror}: {args.file}") from None
    text = args.hex if args.hex is not None else stdin.read()
    compact = "".join(text.split())
    if compact[:2].lower() == "0x":
        compact = compact[2:]
    try:
        return bytes.fromhex(compact)
    except ValueError:
        raise UsageError("input is not hexadecimal (whitespace is ignored)") from None


def _error_json(problem: Problem | BGPError) -> dict[str, Any]:
    if isinstance(problem, MalformedUpdate):
        problem = problem.problem
    if isinstance(problem, Problem):
        return {
            "action": str(problem.action),
            "code": problem.code,
            "subcode": problem.subcode,
            "attribute": problem.attribute,
            "reason": problem.reason,
            "data": problem.data.hex(),
        }
    return {
        "action": str(Action.SESSION_RESET),
        "code": problem.code,
        "subcode": problem.subcode,
        "attribute": None,
        "reason": problem.reason,
        "data": problem.data.hex(),
    }


def decode_to_json(data: bytes, ctx: CodecContext) -> list[dict[str, Any]]:
    """One JSON object per message. A broken header ends the stream (its framing is lost)."""
    out: list[dict[str, Any]] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < HEADER_LEN:
            raise UsageError(
                f"truncated input: {len(data) - pos} octets left, a header is {HEADER_LEN}"
            )
        try:
            msg_type, length = check_header(data[pos : pos + HEADER_LEN], ctx)
        except BGPError as exc:
            out.append({"error": _error_json(exc)})
            return out
        if len(data) - pos < length:
            left = len(data) - pos
            raise UsageError(f"truncated input: message at octet {pos} needs {length}, {left} left")
        out.append(_decode_one(msg_type, data[pos + HEADER_LEN : pos + length], ctx))
        pos += length
    return out


def _decode_one(msg_type: int, body: bytes, ctx: CodecContext) -> dict[str, Any]:
    try:
        message = decode_message(msg_type, body, ctx)
    except BGPError as exc:
        return {"error": _error_json(exc), "type": MessageType(msg_type).name}
    obj = message.to_json()
    problem = getattr(message, "problem", None)
    if problem is not None:
        return {"error": _error_json(problem), **obj}
    return obj


def encode_from_json(text: str, ctx: CodecContext) -> list[bytes]:
    """Messages from JSON: one object, an array of objects, or one object per line."""
    text = text.strip()
    try:
        loaded = json.loads(text)
        objects = loaded if isinstance(loaded, list) else [loaded]
    except json.JSONDecodeError:
        try:
            objects = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise UsageError(f"input is not JSON: {exc}") from None
    out = []
    for number, obj in enumerate(objects, 1):
        try:
            out.append(message_from_json(obj, ctx).encode(ctx))
        except ValueError as exc:
            raise UsageError(f"message {number}: {exc}") from None
    return out


def run_decode(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    ctx = context_from(args)
    for obj in decode_to_json(read_input(args, stdin), ctx):
        stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    return 0


def run_encode(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    ctx = context_from(args)
    text = args.json if args.json is not None else stdin.read()
    for message in encode_from_json(text, ctx):
        stdout.write(message.hex() + "\n")
    return 0


def add_commands(commands: Any) -> None:
    decode = commands.add_parser(
        "decode",
        help="decode BGP messages (hex or a raw stream) to JSON, one object per line",
        description="Decode BGP messages to JSON. Malformed messages are shown with the "
        'RFC 7606 verdict under "error" and whatever could still be decoded.',
    )
    decode.add_argument("hex", nargs="?", help="messages as hex (default: read stdin)")
    decode.add_argument("--file", help="read a raw byte stream of messages from FILE")
    decode.add_argument(
        "--mrt",
        metavar="FILE",
        help="read an MRT file (RFC 6396: TABLE_DUMP_V2, BGP4MP; plain, gzip or bzip2)",
    )
    add_context_options(decode)
    decode.set_defaults(run=run_decode)
    encode = commands.add_parser(
        "encode",
        help="encode JSON (as printed by decode) to hex, one message per line",
    )
    encode.add_argument("json", nargs="?", help="a JSON object or array (default: read stdin)")
    add_context_options(encode)
    encode.set_defaults(run=run_encode)


def main_stdio(args: argparse.Namespace) -> int:
    try:
        return int(args.run(args, sys.stdin, sys.stdout))
    except UsageError as exc:
        print(f"pybgp {args.command}: {exc}", file=sys.stderr)
        return 2
