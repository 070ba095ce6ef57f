"""XML submissions over SFTP, end to end: a WCO DEC-DMS declaration reaches the customs queue as
the same canonical declaration a CUSDEC becomes, a UBL certificate of origin reaches the trade
authority, and what is wrong is answered in the sender's standard, naming its line."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from gateway.config.load import load_config
from gateway.config.xml_schemas import AnswerStandard
from tests.integration.test_answers import Scene, adapters, wait_files
from tests.support.agencies import agency_settings, provisioned_agencies, unique_users
from tests.support.harness import (
    DEMO_AGENCIES,
    Gateway,
    create_database,
    delete_topology,
    drop_database,
    gateway_fixture,
    start_gateway,
    write_files,
)
from tests.support.xml import (
    DEMO_REGISTRY,
    SAMPLE_DECLARANT,
    SAMPLE_INVALID_DEC,
    SAMPLE_REFERENCE,
    SAMPLE_VALID_DEC,
    assert_valid_answer,
    demo_xml_catalog,
)

CERTIFICATE = Path(__file__).resolve().parents[1] / "data" / "xml" / "certificate-of-origin.xml"
#: The exporter the certificate of tests/data/xml names (cac:ExporterParty).
EXPORTER = "12345678"
RES = "urn:wco:datamodel:WCO:RES-DMS:2"
APPLICATION_RESPONSE = "urn:oasis:names:specification:ubl:schema:xsd:ApplicationResponse-2"


#: The XML registry of the demo, and van-a's XML identities.
XML_OPTIONS: dict[str, Any] = {
    "settings": {"xml": json.dumps({"schemas": str(DEMO_REGISTRY)})},
    "xml_ids": {"van-a": (SAMPLE_DECLARANT, EXPORTER)}}


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    demo_xml_catalog()  # skips without ../shared; compiles the XSDs once for the process
    async for running in gateway_fixture(tmp_path, **XML_OPTIONS):
        yield running


async def checked_answer(gateway: Gateway, partner: str, name: str,
                         standard: AnswerStandard) -> bytes:
    """The one answer to ``name``, checked against its standard's XSD."""
    (body,) = await gateway.answers(partner, name)
    assert_valid_answer(standard, body)
    return body


def function_code(body: bytes) -> str:
    tree = etree.fromstring(body)
    (code,) = tree.iterfind(f".//{{{RES}}}Response/{{{RES}}}FunctionCode")
    return str(code.text)


async def test_the_wco_sample_declaration_reaches_customs_as_a_canonical_declaration(
        gateway: Gateway) -> None:
    await gateway.upload("van-a", "declaration.xml", SAMPLE_VALID_DEC.read_bytes())
    body = await checked_answer(gateway, "van-a", "declaration.xml", "RES-DMS")
    assert body.startswith(b"<?xml") and RES.encode() in body
    assert function_code(body) == "02", body.decode()
    (delivered,) = await gateway.queue("customs", expect=1)
    canonical = json.loads(delivered.body)
    assert canonical["kind"] == "CustomsDeclaration"
    assert canonical["declaration_number"] == SAMPLE_REFERENCE
    assert canonical["source"]["syntax"] == "XML"
    assert canonical["source"]["message_type"] == "DEC-DMS"
    assert delivered.headers["partner"] == "van-a"


async def test_the_broken_sample_is_rejected_and_the_answer_names_its_line(
        gateway: Gateway) -> None:
    await gateway.upload("van-a", "broken.xml", SAMPLE_INVALID_DEC.read_bytes())
    body = await checked_answer(gateway, "van-a", "broken.xml", "RES-DMS")
    assert function_code(body) == "03"
    assert b"line 33" in body
    assert await gateway.queue("customs", expect=0) == []


async def test_the_same_declaration_in_utf16_with_a_bom_is_accepted(gateway: Gateway) -> None:
    text = SAMPLE_VALID_DEC.read_bytes().decode("utf-8")
    data = ('<?xml version="1.0" encoding="UTF-16"?>\n' + text).encode("utf-16")
    assert data[:2] in (b"\xff\xfe", b"\xfe\xff")
    await gateway.upload("van-a", "utf16.xml", data)
    body = await checked_answer(gateway, "van-a", "utf16.xml", "RES-DMS")
    assert function_code(body) != "03", body.decode()
    (delivered,) = await gateway.queue("customs", expect=1)
    assert json.loads(delivered.body)["declaration_number"] == SAMPLE_REFERENCE


async def test_a_certificate_of_origin_reaches_the_trade_authority(gateway: Gateway) -> None:
    await gateway.upload("van-a", "origin.xml", CERTIFICATE.read_bytes())
    body = await checked_answer(gateway, "van-a", "origin.xml", "UBL-ApplicationResponse")
    assert APPLICATION_RESPONSE.encode() in body and b">AP<" in body, body.decode()
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
    body = await checked_answer(gateway, "van-a", "short.xml", "UBL-ApplicationResponse")
    assert b">RE<" in body and b"CertificateOfOriginApplication" in body, body.decode()
    assert await gateway.queue("trade", expect=0) == []


async def test_a_declaration_another_partner_submits_is_refused(gateway: Gateway) -> None:
    await gateway.upload("van-b", "not-mine.xml", SAMPLE_VALID_DEC.read_bytes())
    body = await checked_answer(gateway, "van-b", "not-mine.xml", "RES-DMS")
    assert function_code(body) == "03"
    assert SAMPLE_DECLARANT.encode() in body
    assert await gateway.queue("customs", expect=0) == []


async def test_an_agencys_decision_on_a_dec_dms_declaration_reaches_the_trader_as_res_dms(
        tmp_path: Path) -> None:
    """The customs example adapter decides on the WCO sample uploaded over SFTP; its decision
    comes back signed, as RES-DMS (not CUSRES), valid against the notification schema."""
    demo_xml_catalog()
    database = await create_database()
    users = unique_users(DEMO_AGENCIES)
    files = write_files(tmp_path, database, agency_settings=agency_settings(users),
                        **XML_OPTIONS)
    config = load_config(files.config_path, environ={})
    async with provisioned_agencies(config, {"customs": users["customs"]}) as agencies:
        scene = Scene(await start_gateway(files), agencies, tmp_path)
        try:
            async with adapters(scene, "customs"):
                await scene.gateway.upload("van-a", "declaration.xml",
                                           SAMPLE_VALID_DEC.read_bytes())
                (decision,) = await wait_files(scene.outbox,
                                               f"{SAMPLE_REFERENCE}.*.1.customs.1.res-dms.xml", 1)
            body = decision.read_bytes()
            assert_valid_answer("RES-DMS", body)
            assert function_code(body) in {"01", "05", "06", "08", "17"}, body.decode()
            assert SAMPLE_REFERENCE.encode() in body
            assert decision.with_name(decision.name + ".p7s").exists()
            assert not list(scene.outbox.glob("*.cusres.edi"))
        finally:
            await scene.gateway.stop()
            await delete_topology(files, DEMO_AGENCIES)
            await drop_database(database)
