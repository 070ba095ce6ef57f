"""Issue 10, shown end to end with real RabbitMQ (one broker user per agency), PostgreSQL, SFTP
and OpenSSL: a declaration goes in, the example adapters decide, and the partner finds the
CONTRL and each agency's CUSRES in its outbox, every one signed; the refusals; an adapter
killed before its acknowledgement decides once."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from gateway.agency import answers, consume
from gateway.agency.answers import Answer
from gateway.agency.delivery import Delivery
from gateway.cli import main
from gateway.config.load import load_config
from tests.support.agencies import (
    AgencyUsers,
    agency_settings,
    provisioned_agencies,
    running_adapters,
    unique_users,
)
from tests.support.harness import (
    AMQP_URL,
    ANSWER_TIMEOUT,
    DEMO_AGENCIES,
    Gateway,
    create_database,
    delete_topology,
    drop_database,
    start_gateway,
    take_messages,
    write_files,
)

ROOT = Path(__file__).resolve().parents[2]
FISH = (ROOT / "deploy/demo/samples/cusdec-frozen-fish.edi").read_bytes().replace(
    b"DEMOVAN:ZZZ", b"VANA:ZZZ")
DECLARATION = "DEC-2026-000123"
OPENSSL = shutil.which("openssl")


@dataclass
class Scene:
    gateway: Gateway
    agencies: AgencyUsers
    tmp: Path

    @property
    def outbox(self) -> Path:
        return self.gateway.files.mailbox("van-a") / "outbox"

    def responses(self) -> str:
        return self.gateway.files.exchange.removesuffix(".deliveries") + ".responses"


@pytest.fixture
async def scene(tmp_path: Path) -> AsyncIterator[Scene]:
    database = await create_database()
    users = unique_users(DEMO_AGENCIES)
    files = write_files(tmp_path, database, agency_settings=agency_settings(users))
    config = load_config(files.config_path, environ={})
    deciding = {code: users[code] for code in ("customs", "quarantine")}  # port: no answers
    async with provisioned_agencies(config, deciding) as agencies:
        scene = Scene(await start_gateway(files), agencies, tmp_path)
        try:
            yield scene
        finally:
            gateway = scene.gateway  # a test may have started another
            if gateway.task is not None and not gateway.task.done():
                await gateway.stop()
            await delete_topology(files, DEMO_AGENCIES)
            await drop_database(database)


@contextlib.asynccontextmanager
async def adapters(scene: Scene, *codes: str,
                   rules: dict[str, Path] | None = None) -> AsyncIterator[None]:
    """The example adapters (``gateway agency run CODE``) with the shipped rules (or those
    ``rules`` names for a code)."""
    assert scene.gateway.config is not None
    async with running_adapters(scene.gateway.config, scene.tmp, *codes, rules=rules):
        yield


async def wait_files(folder: Path, pattern: str, count: int) -> list[Path]:
    deadline = time.monotonic() + ANSWER_TIMEOUT
    while True:
        found = sorted(await asyncio.to_thread(lambda: list(folder.glob(pattern))))
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(found)} of {count} {pattern} in {folder}")
        await asyncio.sleep(0.05)


def openssl_verifies(content: Path, signature: Path, ca: Path) -> bool:
    assert OPENSSL is not None
    done = subprocess.run(
        [OPENSSL, "cms", "-verify", "-binary", "-inform", "DER", "-in", str(signature),
         "-content", str(content), "-CAfile", str(ca), "-out", "/dev/null"],
        capture_output=True, check=False)
    return done.returncode == 0


async def gateway_command(gateway: Gateway, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = await asyncio.to_thread(
            main, ["--config", str(gateway.files.config_path), *args])
    return code, out.getvalue()


@pytest.mark.skipif(OPENSSL is None, reason="the openssl binary is not installed")
async def test_a_declaration_is_decided_by_every_agency_and_every_answer_is_signed(
        scene: Scene) -> None:
    gateway = scene.gateway
    async with adapters(scene, "customs", "quarantine"):
        await gateway.upload("van-a", "fish.edi", FISH)
        cusres = await wait_files(scene.outbox, f"{DECLARATION}.*.cusres.edi", 4)
        await gateway.settled()
    names = sorted(p.name for p in scene.outbox.iterdir())
    contrl = "fish.edi.1.contrl.edi"
    assert contrl in names
    by_agency = {agency: [p.name for p in cusres if f".{agency}." in p.name]
                 for agency in ("customs", "quarantine")}
    for agency, names_of in by_agency.items():  # registered (or licence), then the outcome
        assert names_of == [f"{DECLARATION}.1.1.{agency}.{n}.cusres.edi" for n in (1, 2)]
    answers_sent = [contrl, *by_agency["customs"], *by_agency["quarantine"]]
    assert names == sorted([*answers_sent, *(f"{n}.p7s" for n in answers_sent)])

    ca = gateway.files.root / "pki" / "ca.crt"
    for name in answers_sent:
        answer, signature = scene.outbox / name, scene.outbox / f"{name}.p7s"
        assert openssl_verifies(answer, signature, ca), name
        code, said = await gateway_command(gateway, "verify", str(answer))
        assert code == 0 and said.startswith(f"verified: {answer}"), said
        text = answer.read_text("latin-1")
        if name.endswith(".cusres.edi"):
            assert "UNB+UNOC:3+SWGATEWAY+VANA:ZZZ+" in text and "CUSRES:D:96B:UN" in text
            assert f"RFF+ABT:{DECLARATION}'" in text and "RFF+ALL:DEMO0001'" in text

    # A changed byte: OpenSSL and our own verify both refuse it.
    tampered = scene.tmp / "tampered.cusres.edi"
    body = bytearray((scene.outbox / by_agency["customs"][0]).read_bytes())
    body[body.index(b"GIS+") + 4] ^= 0x01
    tampered.write_bytes(bytes(body))
    signature = scene.outbox / f"{by_agency['customs'][0]}.p7s"
    assert not openssl_verifies(tampered, signature, ca)
    code, said = await gateway_command(gateway, "verify", str(tampered), str(signature))
    assert code == 1 and "verified" not in said.split(":")[0]

    decisions = await gateway.fetch(
        "SELECT agency, decision FROM agency_answers ORDER BY id")
    assert [(r["agency"], r["decision"]) for r in decisions if r["agency"] == "quarantine"] \
        == [("quarantine", "licence_passed"), ("quarantine", "released")]
    registered, customs = [r["decision"] for r in decisions if r["agency"] == "customs"]
    assert registered == "accepted"
    assert customs in ("released", "documents_required", "inspection")
    (record,) = await gateway.fetch(
        "SELECT count(*) AS n, count(DISTINCT signature_sha256) AS s FROM signed_answers")
    assert (record["n"], record["s"]) == (5, 5)

    code, story = await gateway_command(gateway, "track", DECLARATION)
    assert code == 0, story
    for step in ("received", "CONTRL sent", "delivered          to customs",
                 "delivered          to quarantine", "decision           customs:",
                 "decision           quarantine: licence_passed",
                 "decision           quarantine: released", "signature sha256",
                 "interchange sha256"):
        assert step in story, (step, story)
    assert story.count("answer sent") == 4 and "decision           customs: accepted (CUS-" \
        in story
    overall = "released" if customs == "released" else "in_progress"
    assert story.rstrip().endswith(
        f"customs {customs}, quarantine released -> {overall}"), story


# --- refusals ----------------------------------------------------------------------------


async def publish_as(agencies: AgencyUsers, code: str, body: bytes, *, correlation_id: str,
                     routing_key: str | None = None, kind: str = "CustomsResponse",
                     answer_id: str | None = None) -> None:
    """Publish an answer as agency ``code``'s own broker user, confirmed (under
    ``answer_id``, else a new message id)."""
    endpoint = agencies.endpoint(code)
    connection = await aio_pika.connect(endpoint.url)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(endpoint.responses_exchange, ensure=False)
        await exchange.publish(aio_pika.Message(
            body, user_id=endpoint.user,
            message_id=answer_id or f"{correlation_id}:{uuid.uuid4().hex}",
            correlation_id=correlation_id, type=kind, content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=routing_key or code, mandatory=True)
    finally:
        await connection.close()


async def refusals(gateway: Gateway, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + ANSWER_TIMEOUT
    while True:
        rows = await gateway.fetch(
            "SELECT broker_user, reason, interchange_id FROM refused_answers ORDER BY id")
        if len(rows) >= count or time.monotonic() > deadline:
            return [dict(r) for r in rows]
        await asyncio.sleep(0.05)




async def test_three_refusals_are_recorded_and_forwarded_nowhere(scene: Scene) -> None:
    gateway, agencies = scene.gateway, scene.agencies
    await gateway.upload("van-a", "fish.edi", FISH)
    await gateway.answers("van-a", "fish.edi")
    customs_delivery, quarantine_delivery = (
        await gateway.queue("customs", expect=1))[0], (
        await gateway.queue("quarantine", expect=1))[0]
    declaration = json.loads(quarantine_delivery.body)
    claimed = answers.released(Delivery(
        agency="quarantine", message_id=quarantine_delivery.message_id or "",
        correlation_id=quarantine_delivery.correlation_id or "", type="CustomsDeclaration",
        role="deliver", aeo=False, partner="van-a",
        headers=dict(quarantine_delivery.headers or {}),
        message=_declaration(declaration)), "QUA-1").model_copy(update={"agency": "customs"})

    # 1. quarantine, about its own delivery, claiming to be customs
    await publish_as(agencies, "quarantine", claimed.model_dump_json().encode(),
                     correlation_id=quarantine_delivery.message_id or "")
    # 2. quarantine, about the delivery to customs: never delivered to quarantine
    mine = claimed.model_copy(update={"agency": "quarantine", "answers": claimed.answers.model_copy(
        update={"correlation_id": customs_delivery.message_id})})
    await publish_as(agencies, "quarantine", mine.model_dump_json().encode(),
                     correlation_id=customs_delivery.message_id or "")
    # 3. customs, not a canonical answer
    await publish_as(agencies, "customs", b'{"kind": "CustomsResponse", "decision": "maybe"}',
                     correlation_id=customs_delivery.message_id or "")

    refused = await refusals(gateway, 3)  # taken at once: in any order
    claim, never, malformed = (
        next(r for r in refused if said in r["reason"]) for said in (
            "published by 'quarantine' but claims to be 'customs'",
            "which was never delivered to 'quarantine'", "not a canonical answer"))
    assert claim["broker_user"] == never["broker_user"] == agencies.users["quarantine"]
    assert malformed["broker_user"] == agencies.users["customs"]
    assert len(refused) == 3
    dead = await take_messages(scene.responses() + ".dead", 3)
    assert len(dead) == 3  # kept for ops in the dead-letter queue
    await gateway.settled()
    assert not list(scene.outbox.glob("*.cusres.edi"))  # forwarded nowhere
    assert await gateway.fetch("SELECT 1 FROM agency_answers") == []
    states = await gateway.fetch("SELECT agency, state FROM agency_states ORDER BY agency")
    assert [(r["agency"], r["state"]) for r in states] == [("customs", "awaiting"),
                                                          ("quarantine", "awaiting")]


def _declaration(body: dict[str, Any]) -> Any:
    from gateway.model.canonical import CANONICAL_ADAPTER

    return CANONICAL_ADAPTER.validate_python(body)


# --- killed before its acknowledgement ------------------------------------------------------


class TwoAnswers:
    """A handler that registers, then releases; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, delivery: Delivery) -> Sequence[Answer]:
        self.calls += 1
        return [answers.accepted(delivery, "CUS-9"), answers.released(delivery, "CUS-9")]


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


async def test_an_adapter_killed_before_its_ack_decides_once(scene: Scene) -> None:
    """With the gateway stopped and its answers queue holding one message at most, the
    adapter's first answer is confirmed and its second refused: the delivery stays
    unacknowledged and the adapter is killed.  After the gateway and the adapter start again,
    the redelivery republishes both answers from the journal, the gateway takes the first once
    (it had it already) and the second: one decision each, two CUSRES, the handler called
    once."""
    gateway, agencies = scene.gateway, scene.agencies
    await gateway.upload("van-a", "fish.edi", FISH)
    await gateway.answers("van-a", "fish.edi")
    await gateway.stop()
    policy = f"test-{uuid.uuid4().hex[:8]}"
    responses = scene.responses()
    rabbitmqctl("set_policy", "--apply-to", "queues", policy, f"^{responses}$",
                '{"max-length": 1, "overflow": "reject-publish"}')
    handler, journal = TwoAnswers(), scene.tmp / "customs.journal.sqlite"
    try:
        stop = asyncio.Event()
        adapter = asyncio.create_task(consume(agencies.endpoint("customs"), handler, stop,
                                              journal=journal, publish_retry_pause=0.05))
        await until_queue_length(responses, 1)
        await asyncio.sleep(0.3)  # the second answer is being refused and tried again
        adapter.cancel()  # killed before its acknowledgement
        with contextlib.suppress(asyncio.CancelledError):
            await adapter
    finally:
        rabbitmqctl("clear_policy", policy)
    assert handler.calls == 1
    restarted = await start_gateway(gateway.files)
    scene.gateway = restarted
    stop = asyncio.Event()
    adapter = asyncio.create_task(consume(agencies.endpoint("customs"), handler, stop,
                                          journal=journal, publish_retry_pause=0.05))
    try:
        cusres = await wait_files(scene.outbox, f"{DECLARATION}.*.customs.*.cusres.edi", 2)
        await restarted.settled()
        await asyncio.sleep(0.5)  # a third, late, answer would show now
    finally:
        stop.set()
        await asyncio.wait_for(adapter, 30)
    assert handler.calls == 1  # never decided twice
    assert [p.name for p in sorted(scene.outbox.glob("*.cusres.edi"))] == [
        p.name for p in cusres] and len(cusres) == 2
    taken = await restarted.fetch("SELECT answer_id, decision FROM agency_answers ORDER BY id")
    assert [(r["answer_id"].rsplit(":", 1)[1], r["decision"]) for r in taken] == [
        ("1", "accepted"), ("2", "released")]
    decided = await restarted.fetch(
        "SELECT count(*) AS n FROM events WHERE kind = 'agency_decision'")
    assert decided[0]["n"] == 2


async def until_queue_length(name: str, length: int) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while True:
            queue = await channel.declare_queue(name, passive=True)
            if queue.declaration_result.message_count >= length:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} holds fewer than {length}")
            await asyncio.sleep(0.05)
    finally:
        await connection.close()


class ApplicationErrors:
    async def __call__(self, delivery: Delivery) -> Sequence[Answer]:
        return [answers.application_error(delivery, ["Customs office TWKHH is closed"])]


async def test_an_application_error_reaches_the_trader_as_a_signed_aperak(
        scene: Scene) -> None:
    gateway = scene.gateway
    stop = asyncio.Event()
    adapter = asyncio.create_task(consume(scene.agencies.endpoint("customs"),
                                          ApplicationErrors(), stop,
                                          journal=scene.tmp / "customs.journal.sqlite"))
    try:
        await gateway.upload("van-a", "fish.edi", FISH)
        (aperak,) = await wait_files(scene.outbox, f"{DECLARATION}.*.aperak.edi", 1)
        await gateway.settled()
    finally:
        stop.set()
        await asyncio.wait_for(adapter, 30)
    assert aperak.name == f"{DECLARATION}.1.1.customs.1.aperak.edi"
    text = aperak.read_text("latin-1")
    assert "APERAK:D:96B:UN" in text and "Customs office TWKHH is closed" in text
    assert (scene.outbox / f"{aperak.name}.p7s").exists()
    code, said = await gateway_command(gateway, "verify", str(aperak))
    assert code == 0, said
    (state,) = await gateway.fetch(
        "SELECT state, final FROM agency_states WHERE agency = 'customs'")
    assert (state["state"], state["final"]) == ("application_error", True)
