"""The pure pipeline on hostile shapes, beside a plain CUSDEC of the same size, in one process.

    .venv/bin/python bench/adversarial.py [--megabytes 1] [--runs 3]

A hostile partner chooses the shape of what it sends.  For each shape below, one interchange of
about the given size is run through the whole pure pipeline as the processor runs it
(``process_submission``: envelope, validation, mapping, routing, the CONTRL), best of a few
runs, and its speed is printed in MB/s beside the plain CUSDEC's, with the ratio.  Issue 9's
target: no shape below 0.5x the plain speed (no input makes the work grow faster than its
size: DESIGN rule 6).  Figures only: no pass/fail.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import best_seconds
from bench.validation import build
from gateway.model.outcome import Outcome
from gateway.pipeline.process import process_submission
from tests.support.hostile import SHAPES
from tests.support.pipeline import demo_context


def plain(size: int) -> bytes:
    return build(size / 1_000_000)[0]



def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = int(args.megabytes * 1_000_000)
    context = demo_context()

    def speed(data: bytes) -> tuple[float, Outcome]:
        outcome: list[Outcome] = []
        seconds = best_seconds(lambda: outcome.append(process_submission(data, context)),
                               args.runs)
        return len(data) / 1_000_000 / seconds, outcome[-1]

    reference, _ = speed(plain(size))
    print(f"process_submission, about {args.megabytes:g} MB each, best of {args.runs}")
    print(f"  {'plain CUSDEC D96B':30s} {reference:7.2f} MB/s  x1.00  (the reference)")
    worst = float("inf")
    for name, shape in SHAPES.items():
        data = shape(size)
        mbs, outcome = speed(data)
        worst = min(worst, mbs / reference)
        print(f"  {name:30s} {mbs:7.2f} MB/s  x{mbs / reference:4.2f}  "
              f"({len(data) / 1_000_000:.2f} MB, {outcome.status.value})")
    print(f"worst shape: x{worst:.2f} the plain speed (target: at least x0.50)")


if __name__ == "__main__":
    main()
