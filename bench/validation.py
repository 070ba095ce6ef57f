"""Tokenize and validate large CUSDEC D96B interchanges, beside pydifact, in one process.

    .venv/bin/python bench/validation.py [--sizes 1 10]

For each size (MB) it generates one interchange of many declarations with varied content
(200 traders, random HS codes, amounts and weights, free text with release characters), then
measures, best of a few runs:
- pydifact ``Interchange.from_str`` (tokenize only): the reference;
- our tokenizer (decode + lex);
- our tokenize + envelope checks + full directory validation of every message;
and prints MB/s, segments/s, the ratio to pydifact and the peak memory of each (tracemalloc,
in a separate run) as a multiple of the input size.  Issue 3's target: the last line at least
5x pydifact, memory at most 10x the input.  Figures only: no pass/fail.
"""

from __future__ import annotations

import argparse
import random
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydifact.segmentcollection import Interchange as PydifactInterchange

from bench.timing import best_seconds, peak_bytes
from gateway.app.catalog_files import load_catalog
from gateway.pipeline.validate import Rules, validate
from gateway.wire.edifact.decoding import decode
from gateway.wire.edifact.envelope import read_interchange
from gateway.wire.edifact.lexer import Lexer

WORDS = ("frozen", "fish", "fillets", "machine", "parts", "steel", "bolts", "cotton", "shirts",
         "fresh", "apples", "rice", "tea", "coffee", "beans", "valves", "pumps", "paper", "toys")


def declaration(rng: random.Random, number: int) -> list[str]:
    trader = rng.randrange(200)
    body = [
        f"BGM+929+DEC{number:09d}+9",
        f"LOC+22+TW{rng.choice(['KHH', 'TPE', 'TXG', 'KEL'])}:139:6",
        f"DTM+137:202611{rng.randint(1, 28):02d}:102",
        f"RFF+ABT:MRN{rng.randrange(10**9):09d}",
        f"TDT+20+V{rng.randrange(9999):04d}+1++CARRIER{trader % 17}:172",
        f"NAD+DT+{10_000_000 + trader}::ZZZ++Trader {trader} Co.?, Ltd.+{trader} Harbour Rd"
        "+Kaohsiung++80201+TW",
        f"NAD+CZ+++Exporter {rng.randrange(500)} AS+Bryggen {rng.randrange(99)}+Bergen++5003+NO",
        "UNS+D",
    ]
    for item in range(1, rng.randint(2, 7)):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6)))
        body += [
            f"CST+{item}+{rng.randint(1, 97):02d}{rng.randrange(10**6):06d}",
            f"FTX+AAA+++{words}?: grade {rng.choice('ABC')}?'s best?+more",
            f"LOC+27+{rng.choice(['NO', 'JP', 'US', 'DE', 'VN', 'CN'])}",
            f"MEA+WT+AAD+KGM:{rng.randint(1, 99999)}.{rng.randrange(10)}",
            f"MOA+40:{rng.randint(10, 999999)}.{rng.randrange(100):02d}:USD",
        ]
    body += ["UNS+S", f"CNT+5:{rng.randint(1, 6)}"]
    return [f"UNH+{number}+CUSDEC:D:96B:UN", *body, f"UNT+{len(body) + 2}+{number}"]


def build(megabytes: float) -> tuple[bytes, int]:
    rng = random.Random(20261122)
    segments = ["UNB+UNOC:3+DEMOVAN:ZZZ+SWGATEWAY:ZZZ+261122:0930+BENCH1"]
    size, messages = 0, 0
    while size < megabytes * 1_000_000:
        messages += 1
        message = declaration(rng, messages)
        segments += message
        size += sum(len(s) + 2 for s in message)
    segments.append(f"UNZ+{messages}+BENCH1")
    text = "UNA:+.? '\n" + "".join(s + "'\n" for s in segments)
    return text.encode("latin-1"), len(segments)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=float, nargs="+", default=[1.0, 10.0])
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # pydifact warns about every directory it lacks
    catalog = load_catalog()
    for megabytes in args.sizes:
        data, segment_count = build(megabytes)
        text = data.decode("latin-1")

        def tokenize(data: bytes = data) -> object:
            decoded = decode(data)
            return Lexer(decoded.delimiters).lex(decoded.text)

        def full(data: bytes = data) -> object:
            interchange = read_interchange(data)
            rules = Rules(interchange.header.syntax_identifier)  # as the pipeline: per interchange
            for message in interchange.messages:
                compiled = catalog.message(message.identifier.type, message.identifier.directory)
                assert compiled is not None
                report = validate(message.segments, compiled, rules)
                assert not report.errors, report.errors[0].describe()
            return interchange

        def pydifact_tokenize(text: str = text) -> object:
            return PydifactInterchange.from_str(text)

        runs = 3 if megabytes <= 2 else 1
        cases: list[tuple[str, Callable[[], object]]] = [
                 ("pydifact Interchange.from_str (tokenize only)", pydifact_tokenize),
                 ("gateway tokenize (segments; elements on demand)", tokenize),
                 ("gateway tokenize + envelope + full validation", full)]
        mb = len(data) / 1_000_000
        print(f"\n{mb:.1f} MB CUSDEC D96B interchange: {segment_count:,} segments")
        reference = 0.0
        for name, work in cases:
            seconds = best_seconds(work, runs)
            reference = reference or seconds
            memory = peak_bytes(work) / len(data)
            print(f"  {name:47s} {mb / seconds:6.2f} MB/s {segment_count / seconds:9,.0f} seg/s"
                  f"  x{reference / seconds:5.2f} pydifact  peak memory {memory:4.1f}x input")


if __name__ == "__main__":
    main()
