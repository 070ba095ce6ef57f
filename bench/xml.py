"""XML documents per second through our path beside plain xmlschema validation, in one process.

    .venv/bin/python bench/xml.py [--documents 200] [--runs 5]

The document is the WCO DEC-DMS sample of ../shared/corpus/xml (md:MetaData wrapper included).
Printed, with each figure's ratio of cost to the reference:

- reference: plain ``xmlschema`` validation of the document: ``lxml.etree.fromstring`` (comments
  dropped) and ``XMLSchema.is_valid`` (the schema compiled once, before timing);
- our path: sniff, hardened parse (no DTD, limits), XSD validation with findings, mapping to the
  canonical CustomsDeclaration, and routing (``process_submission`` up to the answer);
- the same with the RES-DMS answer rendered: what the processor runs per document.

Target (issue 11): our path costs at most 1.5x plain validation, and no schema is compiled per
document: the run counts ``XMLSchema`` constructions while timing, and prints the count (0).
Figures, not assertions: these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path, and this file would shadow the
# standard library's xml package for everything imported after: the checkout takes its place.
# (ruff's E402 knows only sys.path.insert as a path edit before imports: pyproject lets this
# file off.)  With -m, sys.path[0] is the working folder: the checkout takes its place too.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import xmlschema
from lxml import etree  # type: ignore[import-untyped]

from bench.timing import best_seconds
from gateway.app.mapping_files import load_mappings
from gateway.app.memory import without_cyclic_gc
from gateway.config.partners import Partner
from gateway.model.outcome import Status
from gateway.pipeline.context import Context
from gateway.pipeline.process import process_submission
from gateway.pipeline.xml_kinds import XmlCatalog
from gateway.pipeline.xml_process import XmlVerdict, judge_xml
from tests.support.pipeline import demo_context, shipped_catalog
from tests.support.xml import SAMPLE_DECLARANT, SAMPLE_VALID_DEC, demo_xml_catalog


@contextmanager
def counting_compiles() -> Iterator[list[int]]:
    """How many XMLSchema objects are built while the block runs."""
    count = [0]
    original = xmlschema.XMLSchema10.__init__

    def counted(self: Any, *args: Any, **kwargs: Any) -> None:
        count[0] += 1
        original(self, *args, **kwargs)

    xmlschema.XMLSchema10.__init__ = counted  # type: ignore[method-assign]
    try:
        yield count
    finally:
        xmlschema.XMLSchema10.__init__ = original  # type: ignore[method-assign]


def context(catalog: XmlCatalog) -> Context:
    partner = Partner(id="demo-van", name="Demo VAN", xml_ids=(SAMPLE_DECLARANT,))
    return dataclasses.replace(demo_context(partner), xml=catalog, file_name="decl.xml",
                               mappings=load_mappings(shipped_catalog(), xml=catalog))


def rate(work: Callable[[], object], documents: int, runs: int) -> float:
    def batch() -> None:
        for _ in range(documents):
            work()

    return documents / best_seconds(without_cyclic_gc(batch), runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not SAMPLE_VALID_DEC.is_file():
        sys.exit(f"no DEC-DMS sample at {SAMPLE_VALID_DEC}: the shared corpus is needed")
    data = SAMPLE_VALID_DEC.read_bytes()
    catalog = demo_xml_catalog()
    kind = catalog.named("DEC-DMS")
    assert kind is not None
    ctx = context(catalog)
    outcome = process_submission(data, ctx)
    assert outcome.status is Status.ACCEPTED, outcome.summary
    schema = kind.schema
    # The sample has comments inside simple-content elements, which xmlschema counts as
    # children: the reference parser drops comments, as ours does.
    parser = etree.XMLParser(remove_comments=True)

    def plain() -> object:
        return schema.is_valid(etree.fromstring(data, parser))

    def ours() -> object:
        return judge_xml(data, ctx)

    def whole() -> object:
        return process_submission(data, ctx)

    verdict = judge_xml(data, ctx)
    assert plain() and isinstance(verdict, XmlVerdict) and verdict.messages[0].agencies
    with counting_compiles() as compiles:
        reference = rate(plain, args.documents, args.runs)
        path = rate(ours, args.documents, args.runs)
        answered = rate(whole, args.documents, args.runs)
    print(f"DEC-DMS sample, {len(data):,} bytes, {args.documents} documents, best of "
          f"{args.runs} runs")
    print(f"{'':46} {'docs/s':>8} {'cost vs plain':>14}")
    print(f"{'plain xmlschema validation (reference)':46} {reference:8.0f} {1.0:13.2f}x")
    print(f"{'sniff + hardened parse + validate + map + route':46} {path:8.0f} "
          f"{reference / path:13.2f}x   (target <= 1.50x)")
    print(f"{'... + the RES-DMS answer (the processor)':46} {answered:8.0f} "
          f"{reference / answered:13.2f}x")
    print(f"schemas compiled while timing: {compiles[0]}")


if __name__ == "__main__":
    main()
