"""The XML mapping files (mappings/xml): they compile against the registry's XSDs and the
canonical model, a wrong one fails at its line, a DEC-DMS declaration becomes the same
canonical message as a CUSDEC describing the same declaration (and is routed alike), a UBL
certificate of origin maps, and a value the canonical model cannot take is answered at its
element's line and XPath."""

from __future__ import annotations

import functools
import io
import shutil
from pathlib import Path
from typing import Any

import pytest

from gateway.app.mapping_files import DEFAULT_MAPPINGS, load_compiled, load_xml_mappings
from gateway.app.mappings import check_mappings
from gateway.config.load import parse_routing
from gateway.errors import ConfigError
from gateway.model.canonical import CertificateOfOrigin, CustomsDeclaration
from gateway.pipeline.mapping.mapping import Mappings
from gateway.pipeline.mapping.xml_read import BadXmlValue, MissingXmlValue
from gateway.pipeline.route import route
from gateway.pipeline.xml_kinds import XmlCatalog
from gateway.wire.edifact.envelope import read_interchange
from gateway.wire.xml.reader import read_xml
from tests.support.xml import DEMO_REGISTRY, SAMPLE_VALID_DEC, demo_xml_catalog

DATA = Path(__file__).resolve().parents[1] / "data" / "xml"
DEC_FISH = DATA / "dec-dms-frozen-fish.xml"
CUSDEC_FISH = DATA / "cusdec-frozen-fish.edi"
CERTIFICATE = DATA / "certificate-of-origin.xml"
XML_MAPPINGS = DEFAULT_MAPPINGS / "xml"
SOURCE = {"sender": "12345678", "recipient": "SWGATEWAY", "interchange_reference": "R1",
          "message_reference": "R1"}


@functools.cache
def mappings() -> Mappings:
    return load_compiled(xml=demo_xml_catalog())[1]


def read(path: Path, schema: str) -> Any:
    mapping = mappings().xml_mapping(schema)
    assert mapping is not None
    return mapping.read(read_xml(path.read_bytes()).root, SOURCE)


def only(name: str) -> XmlCatalog:
    kind = demo_xml_catalog().named(name)
    assert kind is not None
    return XmlCatalog((kind,), (), "test registry")


# --- the shipped files ------------------------------------------------------------------------


def test_test_documents_are_valid_against_their_xsds() -> None:
    for path, name in ((DEC_FISH, "DEC-DMS"), (CERTIFICATE, "UBL-CertificateOfOrigin")):
        kind = demo_xml_catalog().named(name)
        assert kind is not None
        assert list(kind.schema.iter_errors(read_xml(path.read_bytes()).tree)) == [], path


def test_the_wco_sample_declaration_maps() -> None:
    declaration = read(SAMPLE_VALID_DEC, "DEC-DMS")
    assert isinstance(declaration, CustomsDeclaration)
    assert declaration.declaration_number == "DemoUK20161207_010"
    assert (declaration.document_code, declaration.function,
            declaration.function_code) == ("929", "original", "9")
    assert declaration.customs_office == "0051"
    assert [(p.role, p.id) for p in declaration.parties][:2] == [
        ("AE", "ZZ123456789001"), ("DT", "ZZ123456789000")]
    assert ("CN", "ZZ123456789002") in [(p.role, p.id) for p in declaration.parties]
    [item] = declaration.goods_items
    # the sample classifies by SRZ and GN only: the combined nomenclature's code is taken
    assert (item.commodity_code, item.country_of_origin) == ("9002", "US")
    assert item.description == "Inertial navigation systems"
    assert [(d.code, d.number) for d in item.documents] == [
        ("003", "I003INVOERVERGEU"), ("861", "N861UnivCertOrigin"), ("ZZZ", "X355ID13")]
    source = declaration.source
    assert (source.syntax, source.message_type, source.release) == ("XML", "DEC-DMS", "2")


def test_a_cusdec_and_a_dec_dms_of_the_same_declaration_give_equal_canonical_messages() -> None:
    from_xml = read(DEC_FISH, "DEC-DMS")
    parsed = read_interchange(CUSDEC_FISH.read_bytes())
    cusdec = mappings().get("CUSDEC", "D96B")
    assert cusdec is not None
    from_edifact = cusdec.read(parsed, parsed.messages[0])
    assert from_xml.model_dump(exclude={"source"}) == from_edifact.model_dump(exclude={"source"})
    # and it is not equal by being empty
    assert from_xml.goods_items[0].commodity_code == "030355"
    assert from_xml.dates[0].value is not None and len(from_xml.parties) == 3


def test_dec_dms_food_goes_to_quarantine_as_a_cusdec_does() -> None:
    shipped = DEFAULT_MAPPINGS.parent / "routing.yaml"
    table = parse_routing(shipped.read_text(), str(shipped),
                          ("customs", "quarantine", "port", "trade", "bank", "tax"))
    decision = route(table, read(DEC_FISH, "DEC-DMS"), "demo-van")
    assert "quarantine" in decision.agencies and "customs" in decision.agencies


def test_a_ubl_certificate_of_origin_maps() -> None:
    certificate = read(CERTIFICATE, "UBL-CertificateOfOrigin")
    assert isinstance(certificate, CertificateOfOrigin)
    assert certificate.certificate_number == "COO-2026-0042"
    assert str(certificate.issued_on) == "2026-11-20"  # xs:date, read by its XSD type
    assert certificate.exporter is not None and certificate.exporter.id == "12345678"
    assert (certificate.exporter.role, certificate.exporter.country) == ("EX", "TW")
    assert certificate.importer is not None and certificate.importer.role == "IM"
    assert certificate.issuer is not None and certificate.issuer.id == "KCC-01"
    assert (certificate.country_of_origin, certificate.destination_country) == ("TW", "NL")
    [item] = certificate.items
    assert (item.commodity_code, item.packages) == ("845961", 2)
    assert item.gross_weight is not None and str(item.gross_weight.value) == "820"
    assert certificate.source.message_type == "UBL-CertificateOfOrigin"


# --- values the canonical model cannot take: at their line and XPath --------------------------


def test_a_missing_mandatory_value_is_answered_at_its_parent_element() -> None:
    text = DEC_FISH.read_text().replace(
        "<FunctionalReferenceID>DEC-FISH-1</FunctionalReferenceID>", "")
    mapping = mappings().xml_mapping("DEC-DMS")
    assert mapping is not None
    with pytest.raises(MissingXmlValue) as caught:
        mapping.read(read_xml(text.encode()).root, SOURCE)
    assert "declaration_number" in str(caught.value)
    # libxml2 gives an element the line its start tag ends on
    assert caught.value.line == 1 + text.count("\n", 0, text.index(">", text.index("<md:Meta")))
    assert caught.value.xpath == "/md:MetaData"
    assert caught.value.syntax_error_code == 13


def test_a_value_the_model_refuses_is_answered_at_its_element() -> None:
    text = DEC_FISH.read_text().replace("<ID>0303.55</ID>", "<ID>03O3</ID>")
    mapping = mappings().xml_mapping("DEC-DMS")
    assert mapping is not None
    with pytest.raises(BadXmlValue) as caught:
        mapping.read(read_xml(text.encode()).root, SOURCE)
    assert caught.value.line == 1 + text.count("\n", 0, text.index("<ID>03O3"))
    assert caught.value.xpath == ("/md:MetaData/Declaration/GoodsShipment/"
                                  "GovernmentAgencyGoodsItem/Commodity/Classification/ID")
    assert "ID: '03O3' is not a commodity code" in str(caught.value)


def test_a_code_outside_its_table_and_a_bad_date_are_the_partners_errors() -> None:
    mapping = mappings().xml_mapping("DEC-DMS")
    assert mapping is not None
    text = DEC_FISH.read_text().replace("<TypeCode>IMZ</TypeCode>", "<TypeCode>QQQ</TypeCode>")
    with pytest.raises(BadXmlValue, match="TypeCode: code 'QQQ' is not in table "
                       "declaration_type"):
        mapping.read(read_xml(text.encode()).root, SOURCE)
    text = DEC_FISH.read_text().replace("20261122093000Z", "20261322093000Z")
    with pytest.raises(BadXmlValue) as caught:
        mapping.read(read_xml(text.encode()).root, SOURCE)
    assert caught.value.xpath.endswith("/IssueDateTime/udt:DateTimeString")
    assert "format 304" in str(caught.value)


# --- compile errors at file:line --------------------------------------------------------------


def compile_changed(tmp_path: Path, old: str, new: str) -> tuple[str, int]:
    """Compile dec-dms.yaml with ``old`` replaced by ``new``: the error and the line of
    ``new``."""
    text = (XML_MAPPINGS / "dec-dms.yaml").read_text()
    assert old in text, old
    changed = text.replace(old, new, 1)
    folder = tmp_path / "xml"
    folder.mkdir()
    shutil.copy(XML_MAPPINGS / "common.yaml", folder / "common.yaml")
    (folder / "dec-dms.yaml").write_text(changed)
    with pytest.raises(ConfigError) as caught:
        load_xml_mappings(folder, only("DEC-DMS"))
    line = changed.count("\n", 0, changed.index(new.strip() or "fields:")) + 1
    return str(caught.value), line


@pytest.mark.parametrize(("old", "new", "expected"), [
    # an element the XSD does not have there: named, with what the XSD allows
    ("declaration_number: dec:Declaration/dec:FunctionalReferenceID",
     "declaration_number: dec:Declaration/dec:FunctionalReferenceId",
     "dec:FunctionalReferenceId is not an element of dec:Declaration (the XSD allows "
     "dec:AcceptanceDateTime, dec:FunctionCode, dec:FunctionalReferenceID"),
    # the element exists, but not at that level
    ("      country_of_origin: dec:Origin/dec:CountryCode",
     "      country_of_origin: dec:Commodity/dec:CountryCode",
     "dec:CountryCode is not an element of dec:Commodity"),
    # an attribute its element does not declare
    ('      currency: "@currencyID"\n  goods_items',
     '      currency: "@currencyId"\n  goods_items',
     "@currencyId is not an attribute of dec:InvoiceAmount (it has @currencyID)"),
    # a value read from an element that holds only elements
    ("customs_office: dec:Declaration/dec:DeclarationOfficeID",
     "customs_office: dec:Declaration/dec:Declarant",
     "dec:Declarant has no text of its own"),
    # a canonical field the model does not have
    ("  declaration_number: dec:Declaration/dec:FunctionalReferenceID",
     "  declaration_numbr: dec:Declaration/dec:FunctionalReferenceID",
     "CustomsDeclaration has no field 'declaration_numbr'"),
    # a prefix the file does not declare
    ("customs_office: dec:Declaration/dec:DeclarationOfficeID",
     "customs_office: decl:Declaration/dec:DeclarationOfficeID",
     "prefix 'decl' is not declared in namespaces (declared: md, dec, udt)"),
    # a number read from text the XSD does not call a number
    ("    value: .\n    unit: \"@unitCode\"",
     "    value: \"@unitCode\"\n    unit: \"@unitCode\"",
     "type mismatch: the XSD gives xs:string there, value is a number"),
    # a date whose XSD type is text, without its format
    ("    value: {path: udt:DateTimeString, format: \"@formatCode\"}",
     "    value: {path: udt:DateTimeString}",
     "value is a date: the XSD gives no xs:date or xs:dateTime there"),
    # the names inside a predicate are checked too
    ("Classification[dec:IdentificationTypeCode='TSP']",
     "Classification[dec:IdentificationCode='TSP']",
     "dec:IdentificationCode is not an element of dec:Classification"),
    # descendant steps are refused: each element is named
    ("declaration_number: dec:Declaration/dec:FunctionalReferenceID",
     "declaration_number: dec:Declaration//dec:FunctionalReferenceID",
     "a path walks child by child"),
])
def test_a_wrong_file_fails_at_its_line(tmp_path: Path, old: str, new: str,
                                        expected: str) -> None:
    error, line = compile_changed(tmp_path, old, new)
    assert expected in error
    assert f"dec-dms.yaml:{line}:" in error


def test_a_missing_required_field_fails_at_the_fields(tmp_path: Path) -> None:
    error, _ = compile_changed(
        tmp_path, "  declaration_number: dec:Declaration/dec:FunctionalReferenceID\n", "")
    assert "CustomsDeclaration needs declaration_number: map them" in error
    text = (XML_MAPPINGS / "dec-dms.yaml").read_text()
    # at the first field under fields: (the line after it)
    fields_line = text[:text.index("\nfields:")].count("\n") + 2
    assert f"dec-dms.yaml:{fields_line + 1}:" in error


# --- loading and `gateway mappings check` -------------------------------------------------------


def test_a_file_whose_schema_is_not_in_the_registry_is_skipped_with_the_reason() -> None:
    compiled, skipped = load_xml_mappings(XML_MAPPINGS, only("DEC-DMS"))
    assert list(compiled) == ["DEC-DMS"]
    [(path, reason)] = skipped
    assert path.endswith("ubl-certificate-of-origin.yaml")
    assert "UBL-CertificateOfOrigin is not in the XML schema registry" in reason


def test_a_registry_kind_without_its_mapping_stops_the_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no mapping for DEC-DMS in "):
        load_xml_mappings(tmp_path, only("DEC-DMS"))


def test_mappings_check_lists_the_xml_mappings() -> None:
    demo_xml_catalog()  # skips without the corpus
    out = io.StringIO()
    assert check_mappings(None, out, DEMO_REGISTRY) == 0
    text = out.getvalue()
    assert "ok  DEC-DMS 2 (XML) -> CustomsDeclaration  (" in text
    assert "ok  UBL-CertificateOfOrigin 2.1 (XML) -> CertificateOfOrigin  (" in text
    assert "2 XML mappings compile against the XSDs of " in text and "; 0 skipped" in text


def test_mappings_check_says_what_it_skipped(tmp_path: Path) -> None:
    demo_xml_catalog()
    registry = DEMO_REGISTRY.read_text()
    dec_only = registry[:registry.index("  # A UBL 2.1 certificate")]
    shared = (DEMO_REGISTRY.parent / "../../../shared").resolve()
    path = tmp_path / "xml-schemas.yaml"
    path.write_text(dec_only.replace("../../../shared", str(shared)))
    out = io.StringIO()
    check_mappings(None, out, path)
    text = out.getvalue()
    assert "ok  DEC-DMS 2 (XML)" in text
    assert "skipped  " in text and "ubl-certificate-of-origin.yaml: schema " \
        "UBL-CertificateOfOrigin is not in the XML schema registry" in text
    assert "; 1 skipped" in text
