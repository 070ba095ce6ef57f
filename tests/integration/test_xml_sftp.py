"""XML submissions over SFTP, end to end: a WCO DEC-DMS declaration reaches the customs queue as
the same canonical declaration a CUSDEC becomes, a UBL certificate of origin reaches the trade
authority, and what is wrong is answered in the sender's standard, naming its line."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lxml import etree

from tests.support.harness import Gateway, gateway_fixture
from tests.support.xml import (
    DEMO_REGISTRY,
    SAMPLE_DECLARANT,
    SAMPLE_INVALID_DEC,
    SAMPLE_REFERENCE,
    SAMPLE_VALID_DEC,
    demo_xml_catalog,
)

CERTIFICATE = Path(__file__).resolve().parents[1] / "data" / "xml" / "certificate-of-origin.xml"
#: The exporter the certificate of tests/data/xml names (cac:ExporterParty).
EXPORTER = "12345678"
RES = "urn:wco:datamodel:WCO:RES-DMS:2"
APPLICATION_RESPONSE = "urn:oasis:names:specification:ubl:schema:xsd:ApplicationResponse-2"


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    demo_xml_catalog()  # skips without ../shared; compiles the XSDs once for the process
    async for running in gateway_fixture(
            tmp_path, settings={"xml": json.dumps({"schemas": str(DEMO_REGISTRY)})},
            xml_ids={"van-a": (SAMPLE_DECLARANT, EXPORTER)}):
        yield running


def function_code(answer: bytes) -> str:
    tree = etree.fromstring(answer)
    (code,) = tree.iterfind(f".//{{{RES}}}Response/{{{RES}}}FunctionCode")
    return str(code.text)


async def test_the_wco_sample_declaration_reaches_customs_as_a_canonical_declaration(
        gateway: Gateway) -> None:
    await gateway.upload("van-a", "declaration.xml", SAMPLE_VALID_DEC.read_bytes())
    (answer,) = await gateway.answers("van-a", "declaration.xml")
    assert answer.startswith(b"<?xml") and RES.encode() in answer
    assert function_code(answer) != "03", answer.decode()
    (delivered,) = await gateway.queue("customs", expect=1)
    body = json.loads(delivered.body)
    assert body["kind"] == "CustomsDeclaration"
    assert body["declaration_number"] == SAMPLE_REFERENCE
    assert body["source"]["syntax"] == "XML" and body["source"]["message_type"] == "DEC-DMS"
    assert delivered.headers["partner"] == "van-a"


async def test_the_broken_sample_is_rejected_and_the_answer_names_its_line(
        gateway: Gateway) -> None:
    await gateway.upload("van-a", "broken.xml", SAMPLE_INVALID_DEC.read_bytes())
    (answer,) = await gateway.answers("van-a", "broken.xml")
    assert function_code(answer) == "03"
    assert b"line 33" in answer
    assert await gateway.queue("customs", expect=0) == []


async def test_the_same_declaration_in_utf16_with_a_bom_is_accepted(gateway: Gateway) -> None:
    text = SAMPLE_VALID_DEC.read_bytes().decode("utf-8")
    data = ('<?xml version="1.0" encoding="UTF-16"?>\n' + text).encode("utf-16")
    assert data[:2] in (b"\xff\xfe", b"\xfe\xff")
    await gateway.upload("van-a", "utf16.xml", data)
    (answer,) = await gateway.answers("van-a", "utf16.xml")
    assert function_code(answer) != "03", answer.decode()
    (delivered,) = await gateway.queue("customs", expect=1)
    assert json.loads(delivered.body)["declaration_number"] == SAMPLE_REFERENCE


async def test_a_certificate_of_origin_reaches_the_trade_authority(gateway: Gateway) -> None:
    await gateway.upload("van-a", "origin.xml", CERTIFICATE.read_bytes())
    (answer,) = await gateway.answers("van-a", "origin.xml")
    assert APPLICATION_RESPONSE.encode() in answer and b">AP<" in answer, answer.decode()
    (delivered,) = await gateway.queue("trade", expect=1)
    assert json.loads(delivered.body)["kind"] == "CertificateOfOrigin"


async def test_a_certificate_without_a_required_element_is_rejected_naming_it(
        gateway: Gateway) -> None:
    tree = etree.parse(str(CERTIFICATE))
    cac = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
    (application,) = tree.getroot().iterfind(f"{{{cac}}}CertificateOfOriginApplication")
    tree.getroot().remove(application)
    await gateway.upload("van-a", "short.xml", etree.tostring(tree, xml_declaration=True,
                                                              encoding="UTF-8"))
    (answer,) = await gateway.answers("van-a", "short.xml")
    assert b">RE<" in answer and b"CertificateOfOriginApplication" in answer, answer.decode()
    assert await gateway.queue("trade", expect=0) == []


async def test_a_declaration_another_partner_submits_is_refused(gateway: Gateway) -> None:
    await gateway.upload("van-b", "not-mine.xml", SAMPLE_VALID_DEC.read_bytes())
    (answer,) = await gateway.answers("van-b", "not-mine.xml")
    assert function_code(answer) == "03"
    assert SAMPLE_DECLARANT.encode() in answer
    assert await gateway.queue("customs", expect=0) == []
