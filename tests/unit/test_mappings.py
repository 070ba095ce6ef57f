"""The mapping files: they compile, a wrong one fails at its line, messages map to canonical
messages, and answers render to EDIFACT that validates and maps back to the same answer."""

from __future__ import annotations

import datetime as dt
import functools
import shutil
from decimal import Decimal
from pathlib import Path
from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.app.catalog_files import load_catalog
from gateway.app.mapping_files import DEFAULT_MAPPINGS, load_mappings
from gateway.errors import ConfigError, RenderError
from gateway.model.canonical import (
    Amount,
    Answered,
    ApplicationError,
    Canonical,
    CustomsDeclaration,
    CustomsResponse,
    Reason,
    Source,
)
from gateway.model.canonical.responses import Decision
from gateway.model.edifact import Interchange
from gateway.pipeline.mapping.mapping import Mappings
from gateway.pipeline.render import render_interchange
from gateway.pipeline.validate import Rules, Strictness, validate
from gateway.wire.edifact.envelope import read_interchange
from tests.support.edifact import cusdec_message, interchange
from tests.support.pipeline import shipped_catalog, shipped_mappings

PREPARED = dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.UTC)
MAPPED = {
    "CUSDEC": "CustomsDeclaration", "CUSCAR": "CargoReport", "IFTMIN": "TransportInstruction",
    "COARRI": "ContainerEvent", "CODECO": "ContainerEvent", "IFTSTA": "ContainerEvent",
    "CUSRES": "CustomsResponse", "APERAK": "ApplicationError",
}


def errors_of(data: bytes) -> list[str]:
    """Our own validator's errors on every message of ``data``."""
    parsed = read_interchange(data)
    found = [f.describe() for f in parsed.findings]
    rules = Rules(parsed.header.syntax_identifier, Strictness("error"), parsed.delimiters)
    for message in parsed.messages:
        compiled = shipped_catalog().message(message.identifier.type,
                                             message.identifier.directory)
        assert compiled is not None
        found += [f.describe() for f in validate(message.segments, compiled, rules).errors]
    return found


def map_all(data: bytes) -> tuple[Interchange, list[Canonical]]:
    parsed = read_interchange(data)
    canonical = []
    for message in parsed.messages:
        mapping = shipped_mappings().get(message.identifier.type, message.identifier.directory)
        assert mapping is not None
        canonical.append(mapping.read(parsed, message))
    return parsed, canonical


def test_every_shipped_mapping_compiles() -> None:
    mappings = shipped_mappings()
    for release in ("D96B", "D01B"):
        for message, kind in MAPPED.items():
            mapping = mappings.get(message, release)
            assert mapping is not None, f"{message} {release}"
            assert mapping.model.__name__ == kind
    assert sorted(mappings.rendered_releases("CustomsResponse")) == ["D01B", "D96B"]
    assert sorted(mappings.rendered_releases("ApplicationError")) == ["D01B", "D96B"]


@pytest.mark.parametrize("release", ["96B", "01B"])
def test_a_cusdec_maps_to_its_canonical_declaration(release: str) -> None:
    _, (declaration,) = map_all(interchange([cusdec_message(release=release)]))
    assert isinstance(declaration, CustomsDeclaration)
    assert declaration.declaration_number == "DEC-1"
    assert declaration.function == "original" and declaration.customs_office == "TWKHH"
    assert declaration.dates[0].value == dt.date(2026, 11, 22)
    assert declaration.parties[0].role == "DT" and declaration.parties[0].id == "12345678"
    item = declaration.goods_items[0]
    assert item.commodity_code == "030355" and item.country_of_origin == "NO"  # digits only
    assert item.description == "Goods item 1: described, with release characters"
    assert item.gross_weight is not None and item.gross_weight.value == Decimal("1250.5")
    assert item.amounts[0].value == Decimal(1000) and item.amounts[0].currency == "USD"


def test_a_decimal_comma_from_the_una_is_read() -> None:
    message = [s.replace("KGM:1250.5", "KGM:1250,5") for s in cusdec_message()]
    data = interchange([message]).replace(b"UNA:+.? '", b"UNA:+,? '")
    _, (declaration,) = map_all(data)
    assert isinstance(declaration, CustomsDeclaration)
    weight = declaration.goods_items[0].gross_weight
    assert weight is not None and weight.value == Decimal("1250.5")


def test_a_time_with_a_zone_keeps_it_and_one_without_takes_the_mappings() -> None:
    message = cusdec_message(extra_heading=["DTM+132:202612031015?+08:303",
                                            "DTM+133:202612031015:203"])
    _, (declaration,) = map_all(interchange([message]))
    assert isinstance(declaration, CustomsDeclaration)
    by_qualifier = {d.qualifier: d.value for d in declaration.dates}
    assert by_qualifier["132"] == dt.datetime(2026, 12, 3, 2, 15, tzinfo=dt.UTC)
    assert by_qualifier["133"] == dt.datetime(2026, 12, 3, 10, 15, tzinfo=dt.UTC)


def test_a_zone_offset_out_of_range_is_the_partners_error_not_a_crash() -> None:
    from gateway.pipeline.mapping.compiled import BadValue

    message = cusdec_message(extra_heading=["DTM+132:202612031015?+46:303"])
    with pytest.raises(BadValue, match=r"'\+46' is not a time zone offset"):
        map_all(interchange([message]))


# --- the way back ------------------------------------------------------------------------


def response_to(declaration: CustomsDeclaration, **fields: object) -> CustomsResponse:
    """What an agency answers: addressed back to the declarant, in the declaration's release."""
    asked = declaration.source
    values: dict[str, object] = {
        "source": Source(syntax="EDIFACT", message_type="CUSRES", release=asked.release,
                         sender=asked.recipient, recipient=asked.sender,
                         interchange_reference="R" + asked.interchange_reference[:13],
                         message_reference="1"),
        "agency": "customs",
        "answers": Answered(document_reference=declaration.declaration_number,
                            interchange_reference=asked.interchange_reference,
                            message_reference=asked.message_reference),
        "decision": "released",
        "decided_at": dt.datetime(2026, 12, 3, 10, 15, 30, tzinfo=dt.UTC),
        "duties": (Amount(qualifier="55", value=Decimal("120.40"), currency="USD"),),
    }
    return CustomsResponse.model_validate({**values, **fields})


@pytest.mark.parametrize("release", ["96B", "01B"])
def test_a_response_renders_to_a_cusres_that_points_back_to_the_declaration(
        release: str) -> None:
    _, (declaration,) = map_all(interchange([cusdec_message("M7", release=release)],
                                            control_reference="IC42"))
    assert isinstance(declaration, CustomsDeclaration)
    answer = response_to(declaration, reasons=(Reason(code="A1", text="duties paid"),))
    data = render_interchange(answer, shipped_mappings(), PREPARED)
    assert errors_of(data) == []
    parsed, (back,) = map_all(data)
    assert parsed.messages[0].identifier.directory == f"D{release}"
    assert back == answer
    assert isinstance(back, CustomsResponse)
    assert (back.answers.document_reference, back.answers.interchange_reference,
            back.answers.message_reference) == ("DEC-1", "IC42", "M7")
    text = data.decode("latin-1")
    assert "RFF+ABT:DEC-1'" in text and "GIS+4'" in text and "UNB+UNOC:3+SWGATEWAY" in text


def test_a_response_with_no_mapping_for_its_release_is_refused() -> None:
    _, (declaration,) = map_all(interchange([cusdec_message()]))
    assert isinstance(declaration, CustomsDeclaration)
    answer = response_to(declaration)
    wrong = answer.model_copy(update={"source": answer.source.model_copy(
        update={"release": "D95B"})})
    with pytest.raises(RenderError, match=r"no mapping renders CustomsResponse as CUSRES D95B "
                       r"\(it renders in: D01B, D96B\)"):
        render_interchange(wrong, shipped_mappings(), PREPARED)


def test_a_value_too_long_for_its_element_is_refused_not_sent() -> None:
    _, (declaration,) = map_all(interchange([cusdec_message()]))
    assert isinstance(declaration, CustomsDeclaration)
    answer = response_to(declaration, reasons=(Reason(code="A1", text="x" * 71),))
    with pytest.raises(RenderError, match=r"text: FTX 4440: 'x+'\.\.\. \(71 characters\) is "
                       r"longer than an\.\.70"):
        render_interchange(answer, shipped_mappings(), PREPARED)


# --- Hypothesis: canonical answers built at random -----------------------------------------

texts = st.text(st.characters(codec="latin-1", categories=("L", "N", "P", "S", "Zs")),
                min_size=1, max_size=35)
codes = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=8)
references = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=14)
moments = st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2090, 1, 1),
                       timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=8)),
                                                  dt.timezone(-dt.timedelta(hours=5,
                                                                            minutes=30))])
                       ).map(lambda d: d.replace(microsecond=0))
amounts = st.builds(Amount, qualifier=st.sampled_from(["38", "55", "161", "176"]),
                    value=st.decimals(min_value=-10**9, max_value=10**9, places=2,
                                      allow_nan=False, allow_infinity=False),
                    currency=st.sampled_from(["USD", "EUR", "TWD", None]))
answered = st.builds(Answered, document_reference=texts,
                     interchange_reference=st.none() | references,
                     message_reference=st.none() | references)
reasons = st.builds(Reason, code=st.none() | codes, text=texts)


def sources(message_type: str) -> st.SearchStrategy[Source]:
    return st.builds(Source, syntax=st.just("EDIFACT"), message_type=st.just(message_type),
                     release=st.sampled_from(["D96B", "D01B"]), sender=references,
                     recipient=references, interchange_reference=references,
                     message_reference=references)


responses = st.builds(
    CustomsResponse, source=sources("CUSRES"), agency=texts, answers=answered,
    decision=st.sampled_from(get_args(Decision)), agency_reference=st.none() | references,
    decided_at=moments, reasons=st.lists(reasons, max_size=3).map(tuple),
    duties=st.lists(amounts, max_size=3).map(tuple))
application_errors = st.builds(
    ApplicationError, source=sources("APERAK"), answers=answered, reported_at=moments,
    errors=st.lists(st.builds(Reason, code=codes, text=texts), min_size=1,
                    max_size=3).map(tuple))


@settings(max_examples=150, deadline=None)
@given(answer=responses | application_errors, syntax_version=st.sampled_from(["3", "4"]))
def test_random_answers_render_to_valid_edifact_that_maps_back_equal(
        answer: Canonical, syntax_version: str) -> None:
    data = render_interchange(answer, shipped_mappings(), PREPARED, syntax_version)
    assert errors_of(data) == []
    parsed, (back,) = map_all(data)
    assert back == answer
    planned = interpreted_mappings().get(answer.source.message_type, answer.source.release)
    assert planned is not None and planned.read(parsed, parsed.messages[0]) == answer


# --- the corpus --------------------------------------------------------------------------

#: Corpus files of mapped types, with the directory we hold that is nearest to theirs (the
#: corpus has D95B and D00B; ../shared carries the D96B and D01B directories only).
CORPUS_TRIES = [
    ("cuscar_d95b_uk_simple.edi", b"D:95B", b"D:96B"),
    ("coarri_d95b_itgoa.edi", b"D:95B", b"D:96B"),
    ("iftsta_d00b.edi", b"D:00B", b"D:01B"),
]


@pytest.mark.parametrize(("name", "theirs", "ours"), CORPUS_TRIES)
def test_corpus_files_of_mapped_types_map_without_error(
        name: str, theirs: bytes, ours: bytes) -> None:
    from tests.support.edifact import EDIFACT_CORPUS

    path = EDIFACT_CORPUS / name
    if not path.exists():
        pytest.skip(f"{path}: the shared corpus is not beside this checkout")
    _, mapped = map_all(path.read_bytes().replace(theirs, ours))
    assert mapped and all(m.document_reference for m in mapped)


# --- a wrong mapping file fails at its line --------------------------------------------------

BROKEN = [
    ("declaration_number: BGM/C106/1004", "declaration_number: BGM/C106/9999",
     "BGM C106 has no component 9999 (it has 1004, 1056, 1060)"),
    ("parties: {each: SG6/NAD, part: party}", "parties: {each: SG7/NAD, part: party}",
     "segment NAD does not stand in SG7"),
    ("parties: {each: SG6/NAD, part: party}", "parties: {each: NAD, part: party}",
     "segment NAD does not stand in the message level; it opens SG6: write SG6/NAD"),
    ("customs_office: LOC[3227=22|41]/C517/3225", "customs_office: LOC[3227=22|41]",
     "names a segment or group; add the data element"),
    ("function_code: BGM/1225", "function_codes: BGM/1225",
     "CustomsDeclaration has no field 'function_codes'"),
    ("function: {path: BGM/1225, table: message_function, default: \"9\"}",
     "function: {path: BGM/1225, table: functions}", "no table 'functions'"),
    ("function: {path: BGM/1225, table: message_function, default: \"9\"}",
     "function: BGM/1225", "function takes one of original, replacement"),
    ("document_code: BGM/C002/1001", "document_code: {path: BGM/C002/1001, join: 1}",
     "Input should be a valid string"),
    ("item_number: CST/1496", "item_number: {path: CST/1496, format: C507/2379}",
     "item_number is not a date"),
    ("amounts: {each: SG33/MOA, part: amount}", "amounts: {each: SG33/MOA, part: money}",
     "no part 'money'"),
    ("declaration_number: BGM/C106/1004", "# no declaration number",
     "CustomsDeclaration needs declaration_number: map them"),
    ("release: D96B", "release: D95B", "no CUSDEC D95B in schemas/edifact"),
]
#: Where the error points when it is not the changed line: the fields it concerns, the file.
POINTS_AT = {"CustomsDeclaration needs declaration_number: map them": "  document_code:",
             "no CUSDEC D95B in schemas/edifact": None}


@pytest.mark.parametrize(("line", "replacement", "reason"), BROKEN)
def test_a_wrong_mapping_file_fails_to_load_with_file_line_and_reason(
        tmp_path: Path, line: str, replacement: str, reason: str) -> None:
    folder = tmp_path / "mappings"
    shutil.copytree(DEFAULT_MAPPINGS, folder)
    target = folder / "edifact" / "cusdec-d96b.yaml"
    assert line in target.read_text()
    target.write_text(target.read_text().replace(line, replacement, 1))
    text = target.read_text()
    at = POINTS_AT.get(reason, replacement)
    number = 1 if at is None else text[:text.index(at)].count("\n") + 1
    with pytest.raises(ConfigError) as raised:
        load_mappings(load_catalog(), folder)
    message = str(raised.value)
    assert reason in message
    assert f"cusdec-d96b.yaml:{number}:" in message


def test_a_broken_part_in_common_yaml_is_reported_where_it_stands(tmp_path: Path) -> None:
    folder = tmp_path / "mappings"
    shutil.copytree(DEFAULT_MAPPINGS, folder)
    common = folder / "edifact" / "common.yaml"
    text = common.read_text()
    number = text[:text.index("    role: 3035")].count("\n") + 1
    common.write_text(text.replace("    role: 3035", "    role: 3037", 1))
    with pytest.raises(ConfigError, match=rf"common.yaml:{number}:\d+ parts.party.role.path: path "
                       r"'3037': segment NAD has no data element 3037"):
        load_mappings(load_catalog(), folder)


# --- the samples, the validator and the commands -----------------------------------------

SAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "samples"


@pytest.mark.parametrize(("name", "kind", "reference"), [
    ("iftmin-d96b.edi", "TransportInstruction", "BKG-0001"),
    ("codeco-d96b.edi", "ContainerEvent", "GATEIN-0001"),
])
def test_the_demo_samples_validate_and_map(name: str, kind: str, reference: str) -> None:
    data = (SAMPLES / name).read_bytes()
    assert errors_of(data) == []  # with code lists checked, ISO 6346 45G1 included
    _, (canonical,) = map_all(data)
    assert type(canonical).__name__ == kind and canonical.document_reference == reference


def test_mappings_check_lists_every_mapping(capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    assert main(["mappings", "check"]) == 0
    out = capsys.readouterr().out
    assert "ok  CUSRES D96B <-> CustomsResponse" in out
    assert "ok  CUSDEC D01B -> CustomsDeclaration" in out
    assert "16 mappings" in out


def test_mappings_check_names_the_file_and_line_of_a_wrong_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    folder = tmp_path / "mappings"
    shutil.copytree(DEFAULT_MAPPINGS, folder)
    target = folder / "edifact" / "iftmin-d96b.yaml"
    target.write_text(target.read_text().replace("each: SG37", "each: SG38"))
    assert main(["mappings", "check", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "iftmin-d96b.yaml:" in err and "SG38 is not a segment group of the message" in err


def test_render_prints_the_edifact_of_a_canonical_answer(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    _, (declaration,) = map_all(interchange([cusdec_message()]))
    assert isinstance(declaration, CustomsDeclaration)
    answer = tmp_path / "answer.json"
    answer.write_text(response_to(declaration).model_dump_json())
    assert main(["render", str(answer), "--syntax-version", "4"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("UNA:+.?*'") and "UNH+1+CUSRES:D:96B:UN'" in out
    assert errors_of(out.encode("latin-1")) == []
    answer.write_text('{"kind": "CustomsResponse"}')
    assert main(["render", str(answer)]) == 2
    assert "not a canonical message" in capsys.readouterr().err


def test_reading_what_the_validator_found_equals_reading_the_message_afresh() -> None:
    """The pipeline hands the mapper the validator's arrangement and matched values; the
    result must be the one the mapper gets on its own."""
    from tests.support.edifact import EDIFACT_CORPUS

    inputs = [
        interchange([cusdec_message("1"), cusdec_message("2", commodity_codes=("0101", "8471"))]),
        interchange([[s.replace("KGM:1250.5", "KGM:1250,5") for s in cusdec_message()]]
                    ).replace(b"UNA:+.? '", b"UNA:+,? '"),
        interchange([cusdec_message(release="01B")], syntax="UNOC:4"),
        (SAMPLES / "iftmin-d96b.edi").read_bytes(), (SAMPLES / "codeco-d96b.edi").read_bytes(),
    ]
    for name, theirs, ours in CORPUS_TRIES:
        if (EDIFACT_CORPUS / name).exists():
            inputs.append((EDIFACT_CORPUS / name).read_bytes().replace(theirs, ours))
    compared = 0
    for data in inputs:
        parsed = read_interchange(data)
        rules = Rules(parsed.header.syntax_identifier, Strictness("warning"), parsed.delimiters)
        for message in parsed.messages:
            identifier = message.identifier
            compiled = shipped_catalog().message(identifier.type, identifier.directory)
            mapping = shipped_mappings().get(identifier.type, identifier.directory)
            assert compiled is not None and mapping is not None
            report = validate(message.segments, compiled, rules)
            assert report.arranged.flat  # the quick pass matched segments
            fresh = mapping.read(parsed, message)
            assert mapping.read(parsed, message, report.arranged) == fresh
            planned = interpreted_mappings().get(identifier.type, identifier.directory)
            assert planned is not None and planned.read(parsed, message) == fresh
            compared += 1
    assert compared >= 6


@functools.cache
def interpreted_mappings() -> Mappings:
    """The shipped mappings reading field by field, without generated readers."""
    return load_mappings(load_catalog(), generated=False)


# --- hostile values in a well-formed message -----------------------------------------------

TRICKY = st.sampled_from(["", "0", "-1.5", "1,5", "1.2.3", ".", "-", "9" * 18, "20261340",
                          "202612031015?+08", "2026120310", "A?:B", "??", "ZZZ", "46", "XX"])


def sample_message(name: str) -> list[str]:
    """UNH..UNT of a demo sample, as segment texts."""
    segments = (SAMPLES / name).read_text(encoding="latin-1").split("'\n")
    return [s for s in segments if s and s[:3] not in ("UNA", "UNB", "UNZ")]


@st.composite
def retouched_messages(draw: st.DrawFn) -> bytes:
    """A CUSDEC (D96B, D01B), IFTMIN or CODECO whose values (dates, formats, amounts,
    weights, codes) are replaced by awkward ones: the structure stays, the content is
    hostile."""
    message = draw(st.sampled_from([
        cusdec_message(commodity_codes=("0303", "8471"),
                       extra_heading=["DTM+132:202612031015?+08:303"]),
        cusdec_message(release="01B"),
        sample_message("iftmin-d96b.edi"),
        sample_message("codeco-d96b.edi"),
    ]))
    message = list(message)
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(1, len(message) - 2))
        elements = message[at].split("+")
        if len(elements) < 2:
            continue
        element = draw(st.integers(1, len(elements) - 1))
        components = elements[element].split(":")
        component = draw(st.integers(0, len(components) - 1))
        components[component] = draw(TRICKY)
        elements[element] = ":".join(components)
        message[at] = "+".join(elements)
    return interchange([message], sender="DEMOVAN")


@settings(max_examples=200, deadline=None)
@given(retouched_messages())
def test_hostile_values_are_answered_and_read_alike_both_ways(data: bytes) -> None:
    """Every retouched message is accepted with its canonical form or rejected with a finding
    (never an exception), and the generated readers agree with the plans on what they read."""
    from pydantic import ValidationError

    from gateway.errors import MappingError
    from gateway.pipeline.process import process_submission
    from tests.support.pipeline import demo_context

    outcome = process_submission(data, demo_context())
    assert outcome.acknowledgement is not None
    (result,) = outcome.messages
    assert result.canonical is not None or result.findings
    parsed = read_interchange(data)
    message = parsed.messages[0]
    kind = (message.identifier.type, message.identifier.directory)
    generated, planned = shipped_mappings().get(*kind), interpreted_mappings().get(*kind)
    assert generated is not None and planned is not None
    answers = []
    for mapping in (generated, planned):
        try:
            answers.append(mapping.read(parsed, message).model_dump())
        except (MappingError, ValidationError) as exc:
            answers.append(type(exc).__name__ + ": " + str(exc).splitlines()[0])
    assert answers[0] == answers[1]
