"""Issue 15 item 3 (duties paid through a bank), end to end on real RabbitMQ (a broker user per
agency), PostgreSQL and SFTP, with the example adapters (``gateway agency run customs|bank``):
customs assesses duties, the gateway instructs the bank, and the bank's confirmation releases
the declaration (the trader's release CUSRES waits for it); with the release not waiting,
payment is a milestone only; the bank's hostile or mistaken confirmations."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.agency import answers
from gateway.agency.delivery import read_delivery
from gateway.model.canonical import Amount, PaymentInstruction
from tests.integration.test_answers import (
    Scene,
    adapters,
    gateway_command,
    publish_as,
    refusals,
    wait_files,
)
from tests.integration.test_licences import _scene, until
from tests.support.edifact import cusdec_message, interchange

#: HS 8438.50: routed to customs alone by the shipped routing.yaml; 1000 USD customs value.
MACHINE = "8438.50"
DECLARATION = "DEC-PAY-1"
#: The agencies that answer here (only they are provisioned: quicker).
DECIDING = ("customs", "bank", "tax")
#: 5 % of the declaration's 1000 USD.
DUTIES = "50 USD"


def customs_rules(tmp: Path) -> Path:
    """The shipped rules without the random sample: every declaration here is green."""
    shipped = (Path(__file__).resolve().parents[2] / "deploy/demo/customs-rules.yaml")
    path = tmp / "customs-rules.yaml"
    path.write_text(shipped.read_text().replace("sample_rate: 0.05", "sample_rate: 0")
                    .replace("sample_rate: 0.01", "sample_rate: 0"))
    return path


def declaration(number: str = DECLARATION, reference: str = "PAY0001",
                document: str = "929") -> bytes:
    """An import declaration (UNTDID 1001 929), or an export one (830)."""
    return interchange([cusdec_message(commodity_codes=(MACHINE,), declaration=number,
                                       parties=("IM+IMP001::ZZZ",))],
                       sender="VANA", control_reference=reference
                       ).replace(b"BGM+929+", f"BGM+{document}+".encode())


def payments(waits: bool) -> dict[str, object]:
    return {"payments": json.dumps({"agency": "bank", "release_waits_for_payment": waits})}


@pytest.fixture
async def scene(tmp_path: Path) -> AsyncIterator[Scene]:
    async for made in _scene(tmp_path, workers=1, settings=payments(True), only=DECIDING):
        yield made


@pytest.fixture
async def milestone_scene(tmp_path: Path) -> AsyncIterator[Scene]:
    async for made in _scene(tmp_path, workers=1, settings=payments(False), only=DECIDING):
        yield made


@pytest.fixture
async def hostile_scene(tmp_path: Path) -> AsyncIterator[Scene]:
    """The bank has half a second to answer an instruction."""
    async for made in _scene(tmp_path, workers=1, only=DECIDING, settings={
            **payments(True), "overdue_check_seconds": 0.1},
            agencies={"bank": {"answer_within_seconds": 0.5}}):
        yield made


async def clearance(scene: Scene, number: str = DECLARATION) -> str | None:
    rows = await scene.gateway.fetch(
        "SELECT clearance FROM messages WHERE document_ref = $1", number)
    return rows[0]["clearance"] if rows else None


async def events(scene: Scene, *kinds: str) -> list[tuple[str, dict[str, Any]]]:
    rows = await scene.gateway.fetch(
        "SELECT kind, detail FROM events WHERE kind = ANY($1::text[]) ORDER BY id", list(kinds))
    return [(r["kind"], json.loads(r["detail"])) for r in rows]


async def test_duties_lead_to_a_payment_instruction_and_the_banks_confirmation_releases(
        scene: Scene) -> None:
    gateway = scene.gateway
    rules = {"customs": customs_rules(scene.tmp)}
    async with adapters(scene, "customs", rules=rules):
        await gateway.upload("van-a", "pay.edi", declaration(document="830"))
        await until(lambda: _is(scene, "awaiting_payment"), "awaiting payment")
        await gateway.settled()
    assert not await gateway.fetch("SELECT 1 FROM outbox WHERE destination = 'tax'")
    # Registered (with duties) reaches the trader; the release waits for the payment.
    sent = await wait_files(scene.outbox, f"{DECLARATION}.*.cusres.edi", 1)
    assert [p.name.split(".")[-3] for p in sent] == ["1"]
    assert "MOA+" in sent[0].read_text("latin-1")  # the duties, in the registration
    (instructed,) = await events(scene, "payment_instructed")
    assert instructed[1]["amounts"] == [DUTIES] and instructed[1]["assessed_by"] == "customs"
    assert await events(scene, "answer_withheld")

    async with adapters(scene, "bank"):
        await until(lambda: _is(scene, "released"), "released by the payment")
        both = await wait_files(scene.outbox, f"{DECLARATION}.*.customs.*.cusres.edi", 2)
        await gateway.settled()
    assert "GIS+4'" in both[1].read_text("latin-1")  # released
    (confirmed,) = await events(scene, "payment_confirmed")
    assert confirmed[1]["paid"] == [DUTIES] and confirmed[1]["bank_reference"].startswith("BNK-")
    states = await gateway.fetch(
        "SELECT agency, state, final FROM agency_states ORDER BY agency")
    assert [tuple(r) for r in states] == [("bank", "paid", True), ("customs", "released", True)]
    # The instruction the bank got: the declaration, its payer and the duties.
    (row,) = await gateway.fetch(
        "SELECT body, properties FROM outbox WHERE destination = 'bank'")
    sent_instruction = PaymentInstruction.model_validate_json(row["body"])
    assert sent_instruction.answers.document_reference == DECLARATION
    assert sent_instruction.payer == ("12345678", "IMP001")
    assert [(str(a.value), a.currency) for a in sent_instruction.amounts] == [("50.00", "USD")]
    assert json.loads(row["properties"])["message_id"] == sent_instruction.instruction_id

    code, story = await gateway_command(gateway, "track", DECLARATION)
    assert code == 0, story
    for step in ("payment instructed", "answer withheld", "payment confirmed",
                 "answer released", "awaiting_payment -> released", "routed_on_state"):
        assert step in story, (step, story)

    # Released, the export declaration reaches tax: the stored declaration, once.
    (to_tax,) = await gateway.queue("tax", expect=1)
    (stored,) = await gateway.fetch(
        "SELECT canonical FROM messages WHERE document_ref = $1", DECLARATION)
    assert json.loads(to_tax.body) == json.loads(stored["canonical"])
    assert (to_tax.headers or {})["role"] == "after_clearance"
    assert to_tax.message_id == "swg-1-1-tax-released"
    # Its answer is recorded; the declaration stays released, the trader gets nothing more.
    tax = read_delivery("tax", message_id=to_tax.message_id,
                        correlation_id=to_tax.correlation_id, type_=to_tax.type,
                        headers=to_tax.headers, body=to_tax.body, redelivered=False)
    await publish_as(scene.agencies, "tax", answers.accepted(tax, "TAX-1")
                     .model_dump_json().encode(), correlation_id=tax.message_id)
    await until(lambda: gateway.fetch("SELECT 1 FROM agency_answers WHERE agency = 'tax'"),
                "the tax answer taken")
    await gateway.settled()
    assert await clearance(scene) == "released"
    assert len(list(scene.outbox.glob("*.cusres.edi"))) == 2


async def _is(scene: Scene, state: str, number: str = DECLARATION) -> bool:
    return await clearance(scene, number) == state


async def test_without_waiting_the_release_goes_at_once_and_payment_is_a_milestone(
        milestone_scene: Scene) -> None:
    scene, gateway = milestone_scene, milestone_scene.gateway
    async with adapters(scene, "customs", rules={"customs": customs_rules(scene.tmp)}):
        await gateway.upload("van-a", "pay.edi", declaration())
        await wait_files(scene.outbox, f"{DECLARATION}.*.cusres.edi", 2)
        await gateway.settled()
    assert await clearance(scene) == "released"
    # an import declaration: the tax rule (exports) does not send it on
    assert not await gateway.fetch("SELECT 1 FROM outbox WHERE destination = 'tax'")
    assert await events(scene, "payment_instructed") and not await events(
        scene, "answer_withheld")
    async with adapters(scene, "bank"):
        await until(lambda: events(scene, "payment_confirmed"), "payment confirmed")
    assert await clearance(scene) == "released"


async def _instruction(scene: Scene) -> Any:
    """The instruction in the bank's queue, read as the bank's SDK reads it."""
    (message,) = await scene.gateway.queue("bank", expect=1)
    return read_delivery("bank", message_id=message.message_id,
                         correlation_id=message.correlation_id, type_=message.type,
                         headers=message.headers, body=message.body, redelivered=False)


async def test_hostile_and_mistaken_confirmations_release_nothing(
        hostile_scene: Scene, caplog: pytest.LogCaptureFixture) -> None:
    scene = hostile_scene
    gateway, agencies = scene.gateway, scene.agencies
    async with adapters(scene, "customs", rules={"customs": customs_rules(scene.tmp)}):
        await gateway.upload("van-a", "pay.edi", declaration())
        await until(lambda: _is(scene, "awaiting_payment"), "awaiting payment")
        await gateway.settled()
    delivery = await _instruction(scene)
    instruction = delivery.message_id
    # the bank does not answer in time: overdue, once
    (overdue,) = await until(lambda: events(scene, "answer_overdue"), "the bank overdue")
    assert overdue[1]["agency"] == "bank"
    paid = answers.paid(delivery, "BNK-1").model_dump_json().encode()

    # customs claims the payment: the instruction was never delivered to it
    await publish_as(agencies, "customs", paid, correlation_id=instruction,
                     kind="PaymentConfirmation")
    # the bank, about an instruction never sent
    await publish_as(agencies, "bank", paid, correlation_id="swg-999-1-pay-9",
                     kind="PaymentConfirmation")
    # the bank, a decision instead of a confirmation
    await publish_as(agencies, "bank", answers.decision(
        delivery, "released").model_dump_json().encode(), correlation_id=instruction)
    refused = await refusals(gateway, 3)
    assert len(refused) == 3
    assert sum("never delivered to 'customs'" in r["reason"] for r in refused) == 1
    assert sum("'swg-999-1-pay-9'" in r["reason"] for r in refused) == 1
    assert sum("answered with a PaymentConfirmation, not a CustomsResponse" in r["reason"]
               for r in refused) == 1

    # the bank refuses it (no funds): still unpaid
    await publish_as(agencies, "bank", answers.payment_refused(
        delivery, ["Insufficient funds"]).model_dump_json().encode(),
        correlation_id=instruction, kind="PaymentConfirmation")
    (refusal,) = await until(lambda: events(scene, "payment_refused"), "the refusal")
    assert refusal[1]["reasons"] == ["Insufficient funds"]
    assert await clearance(scene) == "awaiting_payment"
    bank_state = await gateway.fetch("SELECT state FROM agency_states WHERE agency = 'bank'")
    assert [r["state"] for r in bank_state] == ["payment_refused"]

    # the bank pays less than instructed: a mismatch (alarm), not a release
    short = answers.paid(delivery, "BNK-2", [Amount(qualifier="55", value="10", currency="USD")])
    await publish_as(agencies, "bank", short.model_dump_json().encode(),
                     correlation_id=instruction, kind="PaymentConfirmation")
    (mismatch,) = await until(lambda: events(scene, "payment_mismatch"), "the mismatch")
    assert mismatch[1]["instructed"] == [DUTIES] and mismatch[1]["paid"] == ["10 USD"]
    assert await clearance(scene) == "awaiting_payment"
    assert any(r.getMessage() == "payment_mismatch"
               and getattr(r, "fields", {}).get("code") == "GW-A019" for r in caplog.records)

    # paid in full: released; the same answer again is not taken twice; another one is refused
    await publish_as(agencies, "bank", paid, correlation_id=instruction,
                     kind="PaymentConfirmation", answer_id=f"{instruction}:1")
    await until(lambda: _is(scene, "released"), "released")
    await publish_as(agencies, "bank", paid, correlation_id=instruction,
                     kind="PaymentConfirmation", answer_id=f"{instruction}:1")
    await publish_as(agencies, "bank", paid, correlation_id=instruction,
                     kind="PaymentConfirmation")
    refused = await refusals(gateway, 4)
    assert len(refused) == 4 and "was confirmed paid before" in refused[-1]["reason"]
    await gateway.settled()
    assert len(await events(scene, "payment_confirmed")) == 1
    taken = await gateway.fetch(
        "SELECT decision FROM agency_answers WHERE agency = 'bank' ORDER BY id")
    # the refusal, the short payment, the full one
    assert [r["decision"] for r in taken] == ["refused", "paid", "paid"]
    assert len(list(scene.outbox.glob(f"{DECLARATION}.*.customs.*.cusres.edi"))) == 2


async def _delivery_to(scene: Scene, agency: str) -> Any:
    """The delivery in ``agency``'s queue, read as its SDK reads it."""
    (message,) = await scene.gateway.queue(agency, expect=1)
    return read_delivery(agency, message_id=message.message_id,
                         correlation_id=message.correlation_id, type_=message.type,
                         headers=message.headers, body=message.body, redelivered=False)


async def test_a_release_withheld_then_superseded_by_the_agency_is_never_sent_on_payment(
        scene: Scene) -> None:
    """Attack: customs assesses duties, releases (withheld: unpaid), then cancels the
    declaration (its cancellation reaches the trader). The bank's payment that comes after
    must not write the stale release to the trader: customs no longer releases it."""
    gateway, agencies = scene.gateway, scene.agencies
    await gateway.upload("van-a", "pay.edi", declaration())
    customs = await _delivery_to(scene, "customs")
    duties = [Amount(qualifier="55", value="50", currency="USD")]
    for number, answer in enumerate((
            answers.decision(customs, "accepted", reference="C-1", duties=duties),
            answers.released(customs, "C-1"),
            answers.decision(customs, "cancelled", reference="C-1",
                             reasons=[answers.reason("Withdrawn by the declarant")]))):
        await publish_as(agencies, "customs", answer.model_dump_json().encode(),
                         correlation_id=customs.message_id,
                         answer_id=f"{customs.message_id}:{number}")
    await until(lambda: _is(scene, "cancelled"), "cancelled by customs")
    assert await events(scene, "answer_withheld")
    # the registration and the cancellation reach the trader; the release waits
    await wait_files(scene.outbox, f"{DECLARATION}.*.cusres.edi", 2)

    bank = await _delivery_to(scene, "bank")
    await publish_as(agencies, "bank", answers.paid(bank, "BNK-1").model_dump_json().encode(),
                     correlation_id=bank.message_id, kind="PaymentConfirmation")
    await until(lambda: events(scene, "payment_confirmed"), "payment confirmed")
    await gateway.settled()
    assert await clearance(scene) == "cancelled"
    assert not await events(scene, "answer_released")
    assert len(list(scene.outbox.glob(f"{DECLARATION}.*.cusres.edi"))) == 2


@pytest.fixture
async def two_agency_scene(tmp_path: Path) -> AsyncIterator[Scene]:
    async for made in _scene(tmp_path, workers=1, settings=payments(True),
                             only=("customs", "quarantine", "bank")):
        yield made


async def test_two_agencies_releasing_around_the_payment_each_reach_the_trader_once(
        two_agency_scene: Scene) -> None:
    """Fish (HS 03) goes to customs and quarantine. Customs assesses duties; quarantine
    releases, then customs: both withheld. The bank pays: each release is written once, the
    declaration is released once, and the bank's confirmation again changes nothing."""
    scene = two_agency_scene
    gateway, agencies = scene.gateway, scene.agencies
    await gateway.upload("van-a", "pay.edi", interchange(
        [cusdec_message(commodity_codes=("0303.55",), declaration=DECLARATION)],
        sender="VANA", control_reference="PAY0002"))
    customs = await _delivery_to(scene, "customs")
    quarantine = await _delivery_to(scene, "quarantine")
    duties = [Amount(qualifier="55", value="50", currency="USD")]
    for code, delivery, answer in (
            ("customs", customs, answers.decision(customs, "accepted", reference="C-1",
                                                  duties=duties)),
            ("quarantine", quarantine, answers.released(quarantine, "Q-1")),
            ("customs", customs, answers.released(customs, "C-1"))):
        await publish_as(agencies, code, answer.model_dump_json().encode(),
                         correlation_id=delivery.message_id)
        await until(lambda n=delivery.message_id: gateway.fetch(
            "SELECT 1 FROM agency_answers WHERE body -> 'answers' ->> 'correlation_id' = $1",
            n), "taken")
    await until(lambda: _is(scene, "awaiting_payment"), "awaiting payment")
    assert len(await events(scene, "answer_withheld")) == 2

    bank = await _delivery_to(scene, "bank")
    paid = answers.paid(bank, "BNK-1").model_dump_json().encode()
    await publish_as(agencies, "bank", paid, correlation_id=bank.message_id,
                     kind="PaymentConfirmation", answer_id=f"{bank.message_id}:1")
    await until(lambda: _is(scene, "released"), "released by the payment")
    await publish_as(agencies, "bank", paid, correlation_id=bank.message_id,
                     kind="PaymentConfirmation", answer_id=f"{bank.message_id}:1")
    await gateway.settled()
    assert len(await events(scene, "answer_released")) == 2
    assert [d["to"] for _, d in await events(scene, "clearance")].count("released") == 1
    await wait_files(scene.outbox, f"{DECLARATION}.*.cusres.edi", 3)
    assert len(list(scene.outbox.glob(f"{DECLARATION}.*.customs.*.cusres.edi"))) == 2
    assert len(list(scene.outbox.glob(f"{DECLARATION}.*.quarantine.*.cusres.edi"))) == 1
