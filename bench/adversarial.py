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
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import best_seconds
from bench.validation import build
from gateway.model.outcome import Outcome
from gateway.pipeline.process import process_submission
from tests.support.edifact import cusdec_message, interchange
from tests.support.pipeline import demo_context

#: A message around one hostile segment: a valid CUSDEC with the segment added to its heading.
Shape = Callable[[int], bytes]


HOSTILE = "@HOSTILE@"


def _around(segment: str, *, syntax: str = "UNOC:3") -> bytes:
    """One CUSDEC D96B whose heading carries ``segment``, in the charset of ``syntax``."""
    message = cusdec_message(extra_heading=[HOSTILE])
    text = interchange([message], sender="DEMOVAN", syntax=syntax).decode("latin-1")
    codec = "utf-8" if syntax.startswith(("UNOW", "UNOY")) else "latin-1"
    return text.replace(HOSTILE, segment).encode(codec)


def plain(size: int) -> bytes:
    return build(size / 1_000_000)[0]


def release_characters(size: int) -> bytes:
    """`?'` over and over inside one free-text element (the lexer's old quadratic case)."""
    return _around("FTX+AAA+++" + "?'" * (size // 2))


def released_separators(size: int) -> bytes:
    """Every separator released, `??` too, in one element."""
    return _around("FTX+AAA+++" + "?+?:??" * (size // 6))


def long_element(size: int) -> bytes:
    """One element far longer than its an..512."""
    return _around("FTX+AAA+++" + "A" * size)


def many_components(size: int) -> bytes:
    """One element split into a component per character."""
    return _around("FTX+AAA+++" + ":A" * (size // 2))


def many_elements(size: int) -> bytes:
    return _around("FTX+AAA" + "+A" * (size // 2))


def many_segments(size: int) -> bytes:
    """One segment repeated far beyond its maximum."""
    return _around("'".join(["FTX+AAA+++X"] * (size // 12)))


def unknown_segments(size: int) -> bytes:
    """Segments the structure has no place for."""
    return _around("'".join(["ZZZ+1"] * (size // 6)))


def many_messages(size: int) -> bytes:
    """Small messages, each rejected (its trailer count is wrong)."""
    message = cusdec_message(unt_count=99)
    count = max(1, size // sum(len(s) + 2 for s in message))
    return interchange([message] * count, sender="DEMOVAN")


def non_ascii_digits(size: int) -> bytes:
    """Arabic-Indic digits where numbers stand, under UNOY (UTF-8)."""
    digits = "٠١٢٣٤٥٦٧٨٩"
    return _around("FTX+AAA+++" + digits * (size // 20), syntax="UNOY:4")


def control_characters(size: int) -> bytes:
    """NUL and other control characters, which no repertoire holds."""
    return _around("FTX+AAA+++" + "\x00\x01\x7f" * (size // 3))


SHAPES: dict[str, Shape] = {
    "release characters ?'": release_characters,
    "released separators ?+?:??": released_separators,
    "one long element": long_element,
    "many components": many_components,
    "many data elements": many_elements,
    "one segment repeated": many_segments,
    "unknown segments": unknown_segments,
    "many rejected messages": many_messages,
    "non-ASCII digits (UNOY)": non_ascii_digits,
    "control characters": control_characters,
}


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
