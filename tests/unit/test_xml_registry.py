"""The XML schema registry: what an integrator gets wrong is an error at start-up naming the
file and the entry, XSDs load from local files only, and each is compiled once."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.app.xml_schema_files import load_xml_catalog
from gateway.config.partners import PartnersFile
from gateway.config.yamlfile import load_model_text
from gateway.errors import ConfigError
from tests.support.counting_http import counting_server

XS = 'xmlns:xs="http://www.w3.org/2001/XMLSchema"'
NOTE_XSD = f"""<xs:schema {XS} targetNamespace="urn:note" xmlns="urn:note"
  elementFormDefault="qualified">
  {{imports}}
  <xs:element name="Note"><xs:complexType><xs:sequence>
    <xs:element name="From" type="xs:string"/>
    <xs:element name="Ref" type="xs:string"/>
  </xs:sequence></xs:complexType></xs:element>
</xs:schema>"""
ENTRY = """schemas:
  - name: NOTE
    version: "1"
    root: {{namespace: "urn:note", name: {root}}}
    xsd: note.xsd
    kind: CustomsDeclaration
    answer: RES-DMS
    namespaces: {{n: "urn:note"}}
    senders: [{sender}]
    reference: n:Ref
{more}"""


def registry(tmp_path: Path, *, imports: str = "", root: str = "Note",
             sender: str = "n:From", more: str = "") -> Path:
    (tmp_path / "note.xsd").write_text(NOTE_XSD.format(imports=imports))
    path = tmp_path / "xml-schemas.yaml"
    path.write_text(ENTRY.format(root=root, sender=sender, more=more))
    return path


def test_a_local_schema_loads_and_is_compiled_once(tmp_path: Path) -> None:
    path = registry(tmp_path)
    first = load_xml_catalog(path)
    (kind,) = first.kinds
    assert kind.name == "NOTE" and first.missing == ()
    assert load_xml_catalog(path).kinds[0].schema is kind.schema


def test_an_import_that_would_go_to_the_network_is_an_error_at_start_up(
        tmp_path: Path) -> None:
    with counting_server(f"<xs:schema {XS} targetNamespace='urn:far'/>".encode()) as server:
        path = registry(tmp_path, imports=f'<xs:import namespace="urn:far" '
                        f'schemaLocation="{server.url}/far.xsd"/>')
        with pytest.raises(ConfigError) as caught:
            load_xml_catalog(path)
        assert server.hits == 0
    message = str(caught.value)
    assert "xml-schemas.yaml: schemas[0] (NOTE)" in message
    assert "far.xsd" in message and "local files only" in message


def test_a_missing_required_schema_stops_the_start(tmp_path: Path) -> None:
    path = registry(tmp_path)
    (tmp_path / "note.xsd").unlink()
    with pytest.raises(ConfigError, match=r"schemas\[0\] \(NOTE\): no XSD at .*note\.xsd"):
        load_xml_catalog(path)


def test_a_missing_optional_schema_is_left_out_saying_how_to_plug_it_in(
        tmp_path: Path) -> None:
    path = registry(tmp_path, more="    optional: true\n")
    (tmp_path / "note.xsd").unlink()
    catalog = load_xml_catalog(path)
    assert catalog.kinds == ()
    (note,) = catalog.missing
    assert "note.xsd is not there" in note and "docs/xml.md" in note


def test_a_root_the_xsd_does_not_declare_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"declares no global element \{urn:note\}Memo"):
        load_xml_catalog(registry(tmp_path, root="Memo"))


def test_an_xpath_with_an_undeclared_prefix_is_an_error_at_its_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_xml_catalog(registry(tmp_path, sender="x:From"))
    assert "xml-schemas.yaml:2:" in str(caught.value) and "'x:From'" in str(caught.value)


def test_two_entries_for_one_root_need_a_version_check(tmp_path: Path) -> None:
    path = registry(tmp_path)
    text = path.read_text()
    path.write_text(text + text.split("schemas:\n", 1)[1].replace("name: NOTE", "name: NOTE2"))
    with pytest.raises(ConfigError, match="two schemas take root"):
        load_xml_catalog(path)


def test_an_unknown_key_is_refused_at_its_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError,
                       match=r"xml-schemas.yaml:11:.*schemas\[0\]\.fetch: unknown field"):
        load_xml_catalog(registry(tmp_path, more="    fetch: true\n"))


PARTNERS = """partners:
  - id: van-a
    name: A
    xml_ids: ["ZZ1"]
  - id: van-b
    name: B
    xml_ids: [{second}]
"""


def test_an_xml_identity_belongs_to_one_partner() -> None:
    with pytest.raises(ConfigError, match=r"partners.yaml:5:.*'ZZ1' is already claimed by "
                       r"partner 'van-a'"):
        load_model_text(PARTNERS.format(second='"ZZ1"'), "partners.yaml", PartnersFile)


def test_an_unquoted_numeric_xml_identity_is_refused() -> None:
    with pytest.raises(ConfigError, match="quote the identity"):
        load_model_text(PARTNERS.format(second="0412"), "partners.yaml", PartnersFile)


def test_a_partner_needs_some_identity() -> None:
    with pytest.raises(ConfigError, match=r"edifact_ids .* xml_ids"):
        load_model_text("partners:\n  - id: van-a\n    name: A\n", "partners.yaml",
                        PartnersFile)
