"""Map-only beside validation-only, on the same 1 MB CUSDEC D96B interchange, in one process.

    .venv/bin/python bench/mapping.py [--sizes 1]

The interchange is bench/validation.py's (many declarations with varied content).  Each run
reads it afresh (segments split their elements on first use, so a run must not inherit the
other's work) and times only:
- validation: every message against its directory structure (what the pipeline does first;
  it also hands on the message in its groups and the values its quick pass matched);
- mapping on its own: every message through its compiled mapping file into a
  CustomsDeclaration, arranging and reading the message itself;
- mapping as the pipeline runs it: the same, from what validation handed on (validation done
  before the clock starts);
and prints messages/s of each and the cost of mapping as a multiple of validation's.  Issue
4's target: mapping costs no more than validation (x1.00 or less).  Figures only.

Each timed work runs as the processor runs the pipeline: with Python's cyclic garbage
collector paused (``gateway/app/memory.py``); ``--collector running`` leaves it on, to see
what that pause is worth.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.validation import build
from gateway.app.catalog_files import load_catalog
from gateway.app.mapping_files import load_mappings
from gateway.app.memory import cyclic_gc_paused
from gateway.catalog.catalog import Catalog
from gateway.model.edifact import Interchange
from gateway.pipeline.mapping.mapping import Mappings
from gateway.pipeline.validate import Report, Rules, validate
from gateway.wire.edifact.envelope import read_interchange

Work = Callable[[Interchange], object]


def validation(catalog: Catalog) -> Work:
    def work(interchange: Interchange) -> object:
        rules = Rules(interchange.header.syntax_identifier)
        kept = []
        for message in interchange.messages:
            compiled = catalog.message(message.identifier.type, message.identifier.directory)
            assert compiled is not None
            report = validate(message.segments, compiled, rules)
            assert not report.errors
            kept.append(report)
        return kept
    return work


def mapping(mappings: Mappings) -> Work:
    def work(interchange: Interchange) -> object:
        kept = []  # as the pipeline keeps each message's outcome until the end
        for message in interchange.messages:
            compiled = mappings.get(message.identifier.type, message.identifier.directory)
            assert compiled is not None
            kept.append(compiled.read(interchange, message))
        return kept
    return work


def after_validation(catalog: Catalog, mappings: Mappings) -> tuple[Work, Work]:
    """(untimed preparation: validate; timed work: map from what validation handed on)"""
    reports: dict[int, Report] = {}

    def prepare(interchange: Interchange) -> object:
        rules = Rules(interchange.header.syntax_identifier)
        for message in interchange.messages:
            compiled = catalog.message(message.identifier.type, message.identifier.directory)
            assert compiled is not None
            reports[id(message)] = validate(message.segments, compiled, rules)
        return interchange

    def work(interchange: Interchange) -> object:
        kept = []
        for message in interchange.messages:
            compiled = mappings.get(message.identifier.type, message.identifier.directory)
            assert compiled is not None
            kept.append(compiled.read(interchange, message, reports[id(message)].arranged))
        return kept

    return prepare, work


def untimed(interchange: Interchange) -> object:
    return interchange


def best_seconds(data: bytes, works: list[tuple[Work, Work]], runs: int,
                 paused: bool) -> list[float]:
    """Best of ``runs`` for each (untimed preparation, timed work), the works taking turns (a
    shared machine's slow spells then fall on all alike)."""
    best = [float("inf")] * len(works)
    for _ in range(runs):
        for index, (prepare, work) in enumerate(works):
            gc.collect()
            interchange = read_interchange(data)
            prepare(interchange)
            with cyclic_gc_paused() if paused else contextlib.nullcontext():
                start = time.perf_counter()
                work(interchange)
                best[index] = min(best[index], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=float, nargs="+", default=[1.0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--collector", choices=("paused", "running"), default="paused",
                        help="Python's cyclic garbage collector while a work is timed")
    args = parser.parse_args()
    catalog = load_catalog()
    mappings = load_mappings(catalog)
    for megabytes in args.sizes:
        data, segment_count = build(megabytes)
        messages = len(read_interchange(data).messages)
        print(f"\n{len(data) / 1e6:.1f} MB CUSDEC D96B interchange: {messages:,} messages, "
              f"{segment_count:,} segments; cyclic garbage collector {args.collector}")
        validate_s, alone_s, staged_s = best_seconds(
            data, [(untimed, validation(catalog)), (untimed, mapping(mappings)),
                   after_validation(catalog, mappings)], args.runs,
            args.collector == "paused")
        for name, seconds in (("validation", validate_s), ("mapping on its own", alone_s),
                              ("mapping in the pipeline", staged_s)):
            print(f"  {name:24s} {messages / seconds:9,.0f} messages/s "
                  f"{len(data) / 1e6 / seconds:6.2f} MB/s  x{seconds / validate_s:.2f} the "
                  "cost of validation")
        print("  target: mapping costs no more than validation (x1.00 or less)")


if __name__ == "__main__":
    main()
