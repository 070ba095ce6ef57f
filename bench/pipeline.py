"""Inbound throughput of the pure pipeline beside pydifact's tokenizer, in one process.

    .venv/bin/python bench/pipeline.py [--megabytes 1]

Prints MB/s and segments/s for: pydifact Interchange.from_str (tokenize only, the reference
DESIGN.md names), our envelope reader (decode + lex + envelope checks) and our whole pipeline
(envelope, validation, CUSDEC mapping, routing, CONTRL; run as the processor runs it, with
the cyclic garbage collector paused), with the ratio of each to pydifact.  Figures, not
assertions: these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydifact.segmentcollection import Interchange as PydifactInterchange

from bench.timing import best_seconds
from gateway.app.memory import without_cyclic_gc
from gateway.pipeline.process import process_submission
from gateway.wire.edifact.envelope import read_interchange
from tests.support.edifact import cusdec_message, interchange
from tests.support.pipeline import demo_context


def build(megabytes: float) -> tuple[bytes, int]:
    one = cusdec_message("1", commodity_codes=("0303.55", "8438.50", "8471.30"))
    size = len("".join(s + "'\n" for s in one))
    count = max(1, int(megabytes * 1_000_000 / size))
    messages = [cusdec_message(str(n), commodity_codes=("0303.55", "8438.50", "8471.30"))
                for n in range(1, count + 1)]
    data = interchange(messages, sender="DEMOVAN")
    return data, sum(len(m) for m in messages) + 2


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # pydifact warns about every unknown directory
    data, segments = build(args.megabytes)
    text = data.decode("latin-1")
    context = demo_context()
    outcome = process_submission(data, context)
    assert outcome.status.value == "accepted", outcome.summary
    cases = [
        ("pydifact Interchange.from_str (tokenize)", lambda: PydifactInterchange.from_str(text)),
        ("gateway read_interchange (envelope)", lambda: read_interchange(data)),
        ("gateway process_submission (all stages)",
         lambda: without_cyclic_gc(process_submission)(data, context)),
    ]
    mb = len(data) / 1_000_000
    print(f"input: {len(data):,} bytes, {segments:,} segments, "
          f"{len(outcome.messages):,} CUSDEC messages")
    reference = None
    for name, work in cases:
        seconds = best_seconds(work, args.runs)
        reference = reference or seconds
        print(f"{name:45s} {mb / seconds:7.2f} MB/s {segments / seconds:10,.0f} seg/s "
              f"x{reference / seconds:5.2f} vs pydifact")


if __name__ == "__main__":
    main()
