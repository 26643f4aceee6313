"""`pybgp decode --mrt FILE`: an MRT file (plain, gzip or bzip2) as JSON, one record per
line, as RouteViews and RIPE RIS publish them or pybgpd, BIRD, FRR and GoBGP write them."""

from __future__ import annotations

import argparse
import json
from typing import TextIO

from pybgp.codec_cli import UsageError
from pybgp.mrt.decode import Decoder
from pybgp.mrt.format import MrtError, open_mrt, read_records


def run_mrt(args: argparse.Namespace, stdout: TextIO) -> int:
    decoder = Decoder()
    try:
        with open_mrt(args.mrt) as stream:
            for record in read_records(stream):
                stdout.write(json.dumps(decoder.decode(record), ensure_ascii=False) + "\n")
    except MrtError as exc:
        raise UsageError(f"--mrt {args.mrt}: {exc}") from None
    except BrokenPipeError:
        raise  # the reader went: pybgp.cli ends quietly
    except EOFError:
        raise UsageError(f"--mrt {args.mrt}: the compressed file ends early") from None
    except OSError as exc:  # not found, unreadable, or a corrupt gzip/bzip2 stream
        raise UsageError(f"--mrt {args.mrt}: {exc.strerror or exc}") from None
    return 0
