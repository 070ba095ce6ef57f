"""An agency's decision on an XML declaration reaches the trader as RES-DMS (issue 11 item 6),
with a real gateway, RabbitMQ (the agency publishes as its own broker user) and PostgreSQL.
The XML-sourced declaration is seeded straight into the store, as the gateway records one it
delivered: this test is about the way back, not XML intake."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import pytest
import xmlschema
from lxml import etree  # type: ignore[import-untyped]

from gateway.pipeline.xml_answer import RES_NS
from gateway.store.answers import await_answers
from gateway.transports.mailbox import SIGNATURE_SUFFIX
from tests.integration.test_answers_hostile import answering_gateway
from tests.support.agencies import AgencyUsers
from tests.support.harness import (
    AMQP_URL,
    Gateway,
    database_url,
)
from tests.support.xml import answer_schemas

DECLARATION = "DemoUK20161207_010"
WAIT = 30.0
NS = {"md": "urn:wco:datamodel:WCO:DocumentMetaData-DMS:2", "res": RES_NS}


@dataclass
class Scene:
    gateway: Gateway
    agencies: AgencyUsers

    @property
    def outbox(self) -> Path:
        return self.gateway.files.mailbox("van-a") / "outbox"

    async def listening(self) -> None:
        """Once the gateway consumes its responses queue (it starts after the gateway says
        it is ready): an answer published before would find no queue bound."""
        queue_name = self.agencies.config.settings.amqp.responses_queue
        deadline = time.monotonic() + WAIT
        connection = await aio_pika.connect(AMQP_URL)
        try:
            while True:
                channel = await connection.channel()
                with contextlib.suppress(aio_pika.exceptions.ChannelClosed):
                    queue = await channel.declare_queue(queue_name, passive=True)
                    if queue.declaration_result.consumer_count:
                        return
                if time.monotonic() > deadline:
                    raise AssertionError(f"nobody consumes {queue_name} after {WAIT}s")
                await asyncio.sleep(0.05)
        finally:
            await connection.close()

    async def publish(self, agency: str, body: dict[str, Any], correlation_id: str) -> None:
        await self.listening()
        connection = await aio_pika.connect(self.agencies.url(agency))
        try:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(
                self.agencies.config.settings.amqp.responses_exchange, ensure=False)
            await exchange.publish(aio_pika.Message(
                json.dumps(body).encode(), message_id=f"{correlation_id}:answer",
                correlation_id=correlation_id, type=body["kind"],
                user_id=self.agencies.users[agency],
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key=agency)
        finally:
            await connection.close()

    async def written(self, suffix: str) -> dict[str, bytes]:
        """The partner's answers whose names end ``suffix``, once there is one."""
        deadline = time.monotonic() + WAIT
        while True:
            found = {p.name: p.read_bytes() for p in sorted(self.outbox.glob(f"*{suffix}"))}
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no *{suffix} in the outbox after {WAIT}s: "
                                     f"{sorted(p.name for p in self.outbox.iterdir())}")
            await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def res_dms() -> xmlschema.XMLSchema:
    return answer_schemas()["RES-DMS"]


@pytest.fixture
async def scene(tmp_path: Path) -> AsyncIterator[Scene]:
    async with answering_gateway(tmp_path) as answering:
        yield Scene(answering.gateway, answering.agencies)


SOURCE = {"syntax": "XML", "message_type": "DEC-DMS", "release": "2", "sender": "VANA",
          "recipient": "SWGATEWAY", "interchange_reference": DECLARATION,
          "message_reference": "1"}


async def seed_xml_declaration(database: str, agency: str, key: str) -> int:
    """A DEC-DMS declaration from van-a, routed and delivered to ``agency`` under the AMQP
    message id ``key``, as the gateway records one; its submission id."""
    connection = await asyncpg.connect(database_url(database))
    try:
        async with connection.transaction():
            submission: int = await connection.fetchval(
                "INSERT INTO interchanges (partner_id, transport, file_name, raw, sha256,"
                " status, sender_id, control_ref) VALUES ('van-a', 'sftp', 'dec.xml',"
                " '<md:MetaData/>', '', 'accepted', 'VANA', $1) RETURNING id", DECLARATION)
            canonical = {"kind": "CustomsDeclaration", "source": SOURCE,
                         "declaration_number": DECLARATION}
            message: int = await connection.fetchval(
                "INSERT INTO messages (interchange_id, position, message_ref, message_type,"
                " release, status, canonical, document_ref, agencies) VALUES ($1, 1, '1',"
                " 'DEC-DMS', '2', 'routed', $2::jsonb, $3, $4) RETURNING id",
                submission, json.dumps(canonical), DECLARATION, [agency])
            await await_answers(connection, [(message, agency)])
            await connection.execute(
                "INSERT INTO outbox (interchange_id, message_id, channel, destination,"
                " dispatch_key, body, properties, dispatched_at) VALUES ($1, $2, 'amqp', $3,"
                " $4, $5, $6::jsonb, now())", submission, message, agency, key,
                json.dumps(canonical).encode(), json.dumps({
                    "message_id": key, "correlation_id": key, "type": "CustomsDeclaration",
                    "headers": {"agency": agency, "role": "deliver",
                                "submission_id": submission}}))
        return submission
    finally:
        await connection.close()


def decision(key: str, value: str, **fields: Any) -> dict[str, Any]:
    """A CustomsResponse from customs, as the agency SDK writes one."""
    answer: dict[str, Any] = {
        "kind": "CustomsResponse", "source": SOURCE, "agency": "customs", "decision": value,
        "decided_at": dt.datetime.now(dt.UTC).isoformat(),
        "answers": {"document_reference": DECLARATION, "correlation_id": key}}
    answer.update(fields)
    return answer


async def test_a_decision_on_a_dec_dms_declaration_reaches_the_trader_as_res_dms(
        scene: Scene, res_dms: xmlschema.XMLSchema) -> None:
    key = "swg-xml-1-customs"
    submission = await seed_xml_declaration(scene.gateway.files.database, "customs", key)
    await scene.publish("customs", decision(
        key, "rejected", agency_reference="26GB0000000000001",
        reasons=[{"code": "CDS12056", "text": "Goods item 1: commodity code unknown <&>"}]),
        correlation_id=key)

    [(name, body)] = (await scene.written(".res-dms.xml")).items()
    assert name == f"{DECLARATION}.{submission}.1.customs.1.res-dms.xml"
    assert not list(scene.outbox.glob("*.cusres.edi"))
    assert [str(e) for e in res_dms.iter_errors(body.decode("utf-8"))] == []
    root = etree.fromstring(body)
    response = root.xpath("res:Response", namespaces=NS)[0]
    assert response.xpath("string(res:FunctionCode)", namespaces=NS) == "03"  # DMSREJ
    assert response.xpath("string(res:Declaration/res:FunctionalReferenceID)",
                          namespaces=NS) == DECLARATION
    assert response.xpath("string(res:Error/res:ValidationCode)", namespaces=NS) == "CDS12056"
    assert response.xpath("string(res:Error/res:Description)", namespaces=NS) \
        == "Goods item 1: commodity code unknown <&>"
    # signed like every answer the mailbox relay writes
    assert (scene.outbox / f"{name}{SIGNATURE_SUFFIX}").is_file()
    [state] = await scene.gateway.fetch(
        "SELECT state, final FROM agency_states WHERE agency = 'customs'")
    assert (state["state"], state["final"]) == ("rejected", True)
