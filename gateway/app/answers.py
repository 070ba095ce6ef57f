"""The answer desk: each answer an agency publishes is tied to the message it answers, recorded
once, and rendered in the sender's syntax for the partner's outbox (signed when the mailbox
relay writes it), in one transaction; or refused and recorded, and forwarded nowhere.

Who answers is the agency whose broker user RabbitMQ validated (bus.responses); the answer
must agree with it, and must answer a message the gateway delivered to that agency for a
decision (role "deliver": observers' copies are not decided on)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any, Protocol

from gateway import alarms
from gateway.app import licences, n2n
from gateway.app.deliveries import delivery_id, queue_delivery
from gateway.app.routing_reload import RoutingInForce
from gateway.bus.responses import IncomingAnswer, Verdict
from gateway.config.load import GatewayConfig, load_agencies
from gateway.config.routing import RoutingTable
from gateway.errors import ConfigError, RenderError
from gateway.logs import event
from gateway.model.canonical import (
    CANONICAL_ADAPTER,
    ApplicationError,
    CustomsDeclaration,
    CustomsResponse,
    PaymentConfirmation,
)
from gateway.model.edifact import PartyId
from gateway.pipeline.mapping.mapping import Mappings
from gateway.pipeline.payments import (
    BANK_PAID,
    BANK_REFUSED,
    amounts_match,
    describe,
    instruction_id,
    overall_clearance,
    payment_instruction,
)
from gateway.pipeline.respond import (
    answer_message,
    answer_problem,
    answer_tail,
    is_final,
    read_answer,
    render_answer,
    render_xml_decision,
    state_of,
    tie_answer,
)
from gateway.pipeline.route import route_on_state
from gateway.store import answers, outbox, payments
from gateway.store import interchanges as store
from gateway.store.database import translated_errors
from gateway.store.deferred import Deferred
from gateway.store.interchanges import ReplyTo
from gateway.transports.mailbox import answer_name

log = logging.getLogger("gateway.answers")
#: How often agencies.yaml is read again for a broker user no agency has (one added since).
REREAD_AGENCIES_SECONDS = 5.0

Answer = CustomsResponse | ApplicationError
#: The role (delivery header) of a payment instruction's delivery to the bank.
PAYMENT_ROLE = "payment"
#: The role of a declaration's delivery made when its clearance reached a state (a routing
#: rule's ``match.state``): the agency acts on it, but the declaration's clearance is settled.
AFTER_CLEARANCE_ROLE = "after_clearance"


class Wakeable(Protocol):
    def set(self) -> None: ...


class _Refused(Exception):
    """An answer that cannot be taken; ``about``: the delivery it names, when it is one."""

    def __init__(self, reason: str, about: answers.Delivered | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.about = about


class AnswerDesk:
    def __init__(self, pool: Any, config: GatewayConfig, mappings: Mappings,
                 wake_mailbox: Wakeable, routing: RoutingInForce | None = None) -> None:
        """``routing``: the table in force (hot reloaded), for the rules on a declaration's
        state; the table loaded at start without it."""
        self._pool = pool
        self._routing = routing
        self._config = config
        self._mappings = mappings
        self._wake_mailbox = wake_mailbox
        settings = config.settings
        self._gateway = PartyId(settings.gateway_id, settings.gateway_id_qualifier or "")
        self._agency_of_user = {a.user: a.code for a in config.agencies}
        self._payments = settings.payments
        self._read_agencies_at = time.monotonic()

    async def take(self, incoming: IncomingAnswer) -> Verdict:
        try:
            agency = self._agency(incoming.broker_user)
            answer = read_answer(incoming.body, incoming.type)
            if isinstance(answer, str):
                raise _Refused(answer)
            problem = answer_problem(answer, agency, incoming.correlation_id)
            if problem is not None:
                raise _Refused(problem)
            async with translated_errors("taking an answer"), \
                    self._pool.acquire() as connection, connection.transaction():
                await self._take(connection, incoming, agency, answer)
        except _Refused as refused:
            await self._refuse(incoming, refused)
            return Verdict.REFUSED
        self._wake_mailbox.set()
        return Verdict.TAKEN

    def _agency(self, user: str | None) -> str:
        if not user:
            raise _Refused("no user_id property: an answer is taken only from the agency "
                           "RabbitMQ vouches for")
        if user not in self._agency_of_user:
            self._reread_agencies()
        agency = self._agency_of_user.get(user)
        if agency is None:
            raise _Refused(f"broker user {user!r} is no agency's")
        return agency

    def _reread_agencies(self) -> None:
        """An agency added to agencies.yaml since the start answers too (a broken file keeps
        the agencies known)."""
        if time.monotonic() - self._read_agencies_at < REREAD_AGENCIES_SECONDS:
            return
        self._read_agencies_at = time.monotonic()
        try:
            agencies = load_agencies(self._config.agencies_path, self._config.amqp_url)
        except ConfigError as exc:
            event(log, "agencies_unreadable", level=logging.WARNING, error=str(exc))
            return
        self._agency_of_user = {a.user: a.code for a in agencies}

    async def _take(self, connection: Any, incoming: IncomingAnswer, agency: str,
                    answer: Answer | PaymentConfirmation) -> None:
        assert incoming.correlation_id is not None  # answer_problem saw to it
        delivered = await answers.delivered(connection, incoming.correlation_id, agency)
        if delivered is None:
            raise _Refused(f"it answers {incoming.correlation_id!r}, which was never "
                           f"delivered to {agency!r}")
        if isinstance(answer, PaymentConfirmation) or delivered.role == PAYMENT_ROLE:
            await self._payment(connection, incoming, agency, answer, delivered)
            return
        if delivered.role == AFTER_CLEARANCE_ROLE:
            await self._after_clearance(connection, incoming, agency, answer, delivered)
            return
        if delivered.role != "deliver":
            raise _Refused(f"{agency!r} received {incoming.correlation_id!r} as an observer's "
                           "copy: only the agencies that act on a message decide",
                           delivered)
        taken = await self._recorded(connection, incoming, agency, answer, delivered)
        if taken is None:
            return
        answer, answer_id, row_id = taken
        await self._instruct(connection, delivered, answer, row_id)
        await self._decided(connection, delivered, agency, answer, answer_id)
        if await self._withheld(connection, delivered, answer):
            await store.add_event(connection, delivered.interchange_id, "answer_withheld", {
                "agency": agency, "answer": answer_id, "until": "payment_confirmed"},
                delivered.message_id)
            return
        await self._queue_answer(connection, delivered, agency, answer, row_id)
        await self._approving(connection, delivered, agency, answer)

    async def _approving(self, connection: Any, delivered: answers.Delivered, agency: str,
                         answer: Answer) -> None:
        """An approved certificate of origin goes to its destination's single window, queued
        in this transaction (docs/n2n.md); an approval withheld for its fee when it is
        paid."""
        n2n_settings = self._config.settings.n2n
        if agency == n2n_settings.approving_agency and \
                state_of(answer) in n2n_settings.approving_decisions:
            await n2n.approved(connection, self._config, delivered.message_id, state_of(answer))

    @staticmethod
    async def _repeated(connection: Any, delivered: answers.Delivered, agency: str,
                        answer: Answer | PaymentConfirmation, answer_id: str) -> None:
        """An answer under an id taken before: the same one again is not decided again;
        another one (an agency reusing its ids) is refused, never dropped unseen."""
        if not await answers.same_answer(
                connection, agency=agency, answer_id=answer_id,
                message_id=delivered.message_id, kind=answer.kind, decision=state_of(answer)):
            raise _Refused(f"its message_id {answer_id!r} is that of another answer "
                           f"{agency!r} gave before (about another message, or another "
                           "decision): each answer has an id of its own",
                           delivered)
        event(log, "answer_repeated", agency=agency, answer=answer_id,
              submission=delivered.interchange_id, note="taken before; not decided again")

    async def _recorded(self, connection: Any, incoming: IncomingAnswer, agency: str,
                        answer: Answer, delivered: answers.Delivered
                        ) -> tuple[Answer, str, int] | None:
        """The answer tied to the message it answers, recorded once under the message's lock:
        (answer, its id, its row); None when that agency gave it before (handled as a repeat)."""
        answer = self._tied(answer, delivered)
        await answers.lock_message(connection, delivered.message_id)
        answer_id = incoming.answer_id or incoming.correlation_id or ""
        row_id = await answers.take_answer(
            connection, agency=agency, answer_id=answer_id, message_id=delivered.message_id,
            kind=answer.kind, decision=state_of(answer), body=answer.model_dump(mode="json"))
        if row_id is None:
            await self._repeated(connection, delivered, agency, answer, answer_id)
            return None
        return answer, answer_id, row_id

    @staticmethod
    def _tied(answer: Answer, delivered: answers.Delivered) -> Answer:
        """The answer with the references of the message it answers, as delivered."""
        tied = tie_answer(answer, document_reference=delivered.document_ref,
                          interchange_reference=delivered.interchange_ref,
                          message_reference=delivered.message_ref)
        if isinstance(tied, str):
            raise _Refused(tied, delivered)
        assert not isinstance(tied, PaymentConfirmation)
        return tied

    async def _decided(self, connection: Any, delivered: answers.Delivered, agency: str,
                       answer: Answer, answer_id: str) -> None:
        """The agency's state, the declaration's, and their history."""
        state = state_of(answer)
        await answers.set_state(connection, delivered.message_id, agency, state,
                                is_final(answer))
        detail: dict[str, Any] = {"agency": agency, "decision": state, "answer": answer_id}
        if isinstance(answer, CustomsResponse):
            detail["agency_reference"] = answer.agency_reference
            detail["reasons"] = [r.text for r in answer.reasons]
        else:
            detail["errors"] = [r.text for r in answer.errors]
        await store.add_event(connection, delivered.interchange_id, "agency_decision", detail,
                              delivered.message_id)
        overall = await self._clearance(connection, delivered)
        event(log, "agency_decision", **detail, submission=delivered.interchange_id,
              declaration=delivered.document_ref, clearance=overall)

    async def _clearance(self, connection: Any, delivered: answers.Delivered) -> str:
        """The declaration's overall state from its agencies' (and its duties', when the
        release waits for their payment), recorded when it changed."""
        states = await answers.states(connection, delivered.message_id)
        pay = self._payments
        overall = overall_clearance(
            states, bank=pay.agency if pay else None,
            unpaid=pay is not None and await payments.unpaid(connection, delivered.message_id) > 0,
            waits=pay is not None and pay.release_waits_for_payment)
        before = await answers.set_clearance(connection, delivered.message_id, overall)
        if before != overall:
            await store.add_event(connection, delivered.interchange_id, "clearance",
                                  {"from": before, "to": overall}, delivered.message_id)
            await self._licences_settled(connection, delivered, overall)
            await self._goes_on(connection, delivered, overall)
        return overall

    # --- the rules on a declaration's state (routing.yaml match.state) --------------------

    def _table(self) -> RoutingTable | None:
        in_force = None if self._routing is None else self._routing.current
        return in_force.table if in_force is not None else self._config.routing_table

    async def _goes_on(self, connection: Any, delivered: answers.Delivered,
                       state: str) -> None:
        """The stored declaration, as it came in (no re-keying), to the agencies the rules on
        ``state`` name, through the outbox, once (its deliveries' keys say the state)."""
        table = self._table()
        if table is None or not any(rule.match.state == state for rule in table.rules):
            return
        stored = await store.canonical_of(connection, delivered.message_id)
        if stored is None:
            return
        message = CANONICAL_ADAPTER.validate_json(stored)
        decision = route_on_state(table, message, delivered.partner_id, state)
        roles = [(a, AFTER_CLEARANCE_ROLE) for a in decision.agencies] + [
            (a, "copy") for a in decision.copies]
        keys = {agency: f"{delivery_id(delivered.interchange_id, delivered.position, agency)}"
                        f"-{state}" for agency, _ in roles}
        done = await outbox.existing_keys(connection, list(keys.values()))
        writes = Deferred()
        body = message.model_dump_json().encode("utf-8")
        sent = []
        for agency, role in roles:
            if keys[agency] in done:
                continue
            queue_delivery(
                writes, submission_id=delivered.interchange_id,
                partner_id=delivered.partner_id, position=delivered.position,
                message_id=delivered.message_id, body=body, kind=message.kind,
                interchange_ref=delivered.interchange_ref or "",
                message_type=delivered.message_type, release=delivered.release,
                agency=agency, role=role, aeo=False, stable_id=keys[agency])
            sent.append(agency)
        if not sent:
            return
        detail: dict[str, Any] = {"state": state, "rules": list(decision.rules),
                                  "agencies": sent}
        writes.event(delivered.interchange_id, "routed_on_state", detail, delivered.message_id)
        await writes.flush(connection)
        event(log, "routed_on_state", **detail, submission=delivered.interchange_id,
              declaration=delivered.document_ref)

    async def _after_clearance(self, connection: Any, incoming: IncomingAnswer, agency: str,
                               answer: Answer | PaymentConfirmation,
                               delivered: answers.Delivered) -> None:
        """An agency's answer to a declaration it got once the declaration was cleared (the
        tax agency, for refunds): recorded, in its history, once; the declaration's clearance
        and the trader's answers stay as they are."""
        assert not isinstance(answer, PaymentConfirmation)
        taken = await self._recorded(connection, incoming, agency, answer, delivered)
        if taken is None:
            return
        answer, answer_id, _row = taken
        detail: dict[str, Any] = {"agency": agency, "decision": state_of(answer),
                                  "answer": answer_id, "after_clearance": True}
        await store.add_event(connection, delivered.interchange_id, "agency_decision", detail,
                              delivered.message_id)
        event(log, "agency_decision", **detail, submission=delivered.interchange_id,
              declaration=delivered.document_ref)

    # --- duties paid through the bank (docs/payments.md) ----------------------------------

    async def _instruct(self, connection: Any, delivered: answers.Delivered, answer: Answer,
                        row_id: int) -> None:
        """An agency's decision with duties: the bank is instructed to collect them, through
        the outbox, in this transaction (once per answer: a repeated answer never gets here)."""
        pay = self._payments
        if pay is None or not isinstance(answer, CustomsResponse) or not answer.duties:
            return
        instruction = instruction_id(delivered.interchange_id, delivered.position, row_id)
        stored = await store.canonical_of(connection, delivered.message_id)
        declaration = None if stored is None else CANONICAL_ADAPTER.validate_json(stored)
        built = payment_instruction(
            answer, instruction=instruction, instructed_at=dt.datetime.now(dt.UTC),
            declaration=declaration if isinstance(declaration, CustomsDeclaration) else None)
        body = built.model_dump(mode="json")
        if not await payments.instruct(
                connection, instruction_id=instruction, message_id=delivered.message_id,
                answer_row=row_id, assessed_by=answer.agency, bank=pay.agency,
                amounts=body["amounts"]):
            return
        await outbox.add(
            connection, interchange_id=delivered.interchange_id,
            message_id=delivered.message_id, channel="amqp", destination=pay.agency,
            dispatch_key=instruction, body=built.model_dump_json().encode("utf-8"),
            properties={
                "message_id": instruction,
                "correlation_id": f"swg-{delivered.interchange_id}-{delivered.position}",
                "type": built.kind,
                "headers": {"agency": pay.agency, "role": PAYMENT_ROLE,
                            "partner": delivered.partner_id,
                            "message_type": delivered.message_type,
                            "release": delivered.release,
                            "interchange_ref": delivered.interchange_ref or "",
                            "submission_id": delivered.interchange_id}})
        detail: dict[str, Any] = {"agency": pay.agency, "instruction": instruction,
                  "assessed_by": answer.agency, "amounts": describe(answer.duties)}
        await store.add_event(connection, delivered.interchange_id, "payment_instructed",
                              detail, delivered.message_id)
        event(log, "payment_instructed", **detail, submission=delivered.interchange_id,
              declaration=delivered.document_ref)

    async def _withheld(self, connection: Any, delivered: answers.Delivered,
                        answer: Answer) -> bool:
        """Whether the trader's copy of a release waits for the duties' payment."""
        pay = self._payments
        return (pay is not None and pay.release_waits_for_payment
                and isinstance(answer, CustomsResponse) and answer.decision == "released"
                and await payments.unpaid(connection, delivered.message_id) > 0)

    async def _payment(self, connection: Any, incoming: IncomingAnswer, agency: str,
                       answer: Answer | PaymentConfirmation,
                       delivered: answers.Delivered) -> None:
        """The bank's answer to a payment instruction: taken once; paid (the amounts
        instructed), refused, or a mismatch (an alarm; nothing released on it)."""
        correlation = incoming.correlation_id or ""
        if not isinstance(answer, PaymentConfirmation):
            raise _Refused(f"{correlation!r} is a payment instruction: it is answered with a "
                           f"PaymentConfirmation, not a {answer.kind}", delivered)
        if delivered.role != PAYMENT_ROLE:
            raise _Refused(f"a PaymentConfirmation answers a payment instruction; "
                           f"{correlation!r} is not one", delivered)
        if self._payments is None or agency != self._payments.agency:
            raise _Refused(f"{agency!r} is not the payments agency (gateway.yaml payments)",
                           delivered)
        if answer.instruction_id != correlation:
            raise _Refused(f"instruction_id {answer.instruction_id!r} is not the "
                           f"correlation_id {correlation!r} it was published with", delivered)
        tied = tie_answer(answer, document_reference=delivered.document_ref,
                          interchange_reference=delivered.interchange_ref,
                          message_reference=delivered.message_ref)
        if isinstance(tied, str):
            raise _Refused(tied, delivered)
        assert isinstance(tied, PaymentConfirmation)
        await answers.lock_message(connection, delivered.message_id)
        answer_id = incoming.answer_id or correlation
        row_id = await answers.take_answer(
            connection, agency=agency, answer_id=answer_id, message_id=delivered.message_id,
            kind=tied.kind, decision=tied.status, body=tied.model_dump(mode="json"))
        if row_id is None:
            await self._repeated(connection, delivered, agency, tied, answer_id)
            return
        instruction = await payments.instruction(connection, correlation)
        if instruction is None:  # the delivery is there, so its row is: never, but say so
            raise _Refused(f"no payment instruction {correlation!r}", delivered)
        if instruction.state == "paid":
            raise _Refused(f"payment instruction {correlation!r} was confirmed paid before: "
                           "a payment is confirmed once", delivered)
        detail: dict[str, Any] = {"agency": agency, "instruction": correlation,
                                  "answer": answer_id, "bank_reference": tied.bank_reference}
        if tied.status == "refused":
            await payments.confirm(connection, correlation, "refused", tied.bank_reference,
                                   None)
            await answers.set_state(connection, delivered.message_id, agency, BANK_REFUSED,
                                    False)
            detail["reasons"] = [r.text for r in tied.reasons]
            kind = "payment_refused"
        elif not amounts_match(instruction.amounts, tied.amounts):
            detail["instructed"] = describe(instruction.amounts)
            detail["paid"] = describe(tied.amounts)
            kind = "payment_mismatch"
        else:
            await payments.confirm(connection, correlation, "paid", tied.bank_reference,
                                   tied.paid_at)
            await answers.set_state(connection, delivered.message_id, agency, BANK_PAID, True)
            detail["paid"] = describe(tied.amounts)
            kind = "payment_confirmed"
        await store.add_event(connection, delivered.interchange_id, kind, detail,
                              delivered.message_id)
        overall = await self._clearance(connection, delivered)
        if kind == "payment_mismatch":
            event(log, kind, level=logging.ERROR, code=alarms.PAYMENT_MISMATCH, **detail,
                  submission=delivered.interchange_id, declaration=delivered.document_ref,
                  note="alarm: not released on it")
        else:
            event(log, kind, **detail, submission=delivered.interchange_id,
                  declaration=delivered.document_ref, clearance=overall)
        if kind == "payment_confirmed" and not await payments.unpaid(
                connection, delivered.message_id):
            await self._release_withheld(connection, delivered)

    async def _release_withheld(self, connection: Any, delivered: answers.Delivered) -> None:
        """The releases withheld while the duties were unpaid, queued for the trader now."""
        for withheld in await payments.withheld_releases(connection, delivered.message_id):
            of_agency = await answers.delivered(
                connection, delivery_id(delivered.interchange_id, delivered.position,
                                        withheld.agency), withheld.agency)
            if of_agency is None:
                continue
            release = CustomsResponse.model_validate(withheld.body)
            await self._queue_answer(connection, of_agency, withheld.agency, release,
                                     withheld.row_id)
            await self._approving(connection, of_agency, withheld.agency, release)
            await store.add_event(connection, delivered.interchange_id, "answer_released", {
                "agency": withheld.agency, "because": "payment_confirmed"},
                delivered.message_id)

    @staticmethod
    async def _licences_settled(connection: Any, delivered: answers.Delivered,
                                overall: str) -> None:
        """Released: what the declaration reserved on its licences is drawn; rejected or
        cancelled: given back (app.licences, docs/licences.md)."""
        settled = await licences.settle_on_clearance(connection, delivered.message_id, overall)
        if settled:
            await store.add_event(connection, delivered.interchange_id, "licence_" + (
                "drawn" if settled[0].after == "drawn" else "restored"), {
                    "because": overall,
                    "licences": {s.licence_number: str(s.quantity) for s in settled}},
                delivered.message_id)

    async def _queue_answer(self, connection: Any, delivered: answers.Delivered, agency: str,
                            answer: Answer, row_id: int) -> None:
        """The answer in the sender's syntax, queued for the partner's outbox after what was
        queued before (its CONTRL first): to an XML document, in the XML standard its sender
        speaks (a DEC-DMS declaration gets RES-DMS)."""
        kind = answer_message(answer.kind, delivered.syntax, delivered.message_type,
                              self._mappings)
        control_reference = f"R{row_id}"
        if delivered.syntax == "XML":
            body = render_xml_decision(
                answer, message_type=delivered.message_type, gateway_id=self._gateway.id,
                reply_to=delivered.reply_to.id if delivered.reply_to else delivered.partner_id,
                response_id=control_reference, prepared=dt.datetime.now(dt.UTC),
                mappings=self._mappings)
        else:
            body = self._edifact_answer(delivered, answer, control_reference)
        sequence = await answers.answers_taken(connection, delivered.message_id, agency)
        file_name = answer_name(delivered.document_ref or delivered.file_name,
                                delivered.interchange_id,
                                answer_tail(delivered.position, agency, sequence, answer.kind,
                                            syntax=delivered.syntax,
                                            message_type=delivered.message_type,
                                            mappings=self._mappings))
        await outbox.add(
            connection, interchange_id=delivered.interchange_id,
            message_id=delivered.message_id,
            channel=self._config.answer_channel(delivered.partner_id),
            destination=delivered.partner_id, dispatch_key=f"answer-{row_id}", body=body,
            properties={"file_name": file_name, "kind": kind, "partner": delivered.partner_id,
                        "interchange_ref": control_reference, "agency": agency})

    def _edifact_answer(self, delivered: answers.Delivered, answer: Answer,
                        control_reference: str) -> bytes:
        reply = delivered.reply_to or self._fallback_reply(delivered.partner_id)
        try:
            return render_answer(
                answer, self._mappings, release=delivered.release, gateway=self._gateway,
                reply_to=PartyId(reply.id, reply.qualifier),
                syntax_version=reply.syntax_version, control_reference=control_reference,
                prepared=dt.datetime.now(dt.UTC))
        except RenderError as exc:
            kind = answer_message(answer.kind)
            raise _Refused(f"cannot be written as {kind} {delivered.release}: {exc}",
                           delivered) from exc

    def _fallback_reply(self, partner_id: str) -> ReplyTo:
        """Whom to answer for an interchange decided before the gateway kept it (migration
        0007): the partner's first EDIFACT id, in syntax version 3."""
        partner = self._config.partner(partner_id)
        if partner is None:
            raise _Refused(f"partner {partner_id!r} is no longer configured: nobody to answer")
        first = partner.edifact_ids[0]
        return ReplyTo(first.id, first.qualifier or "", "3")

    async def _refuse(self, incoming: IncomingAnswer, refused: _Refused) -> None:
        refusal = answers.Refusal(
            broker_user=incoming.broker_user, routing_key=incoming.routing_key,
            answer_id=incoming.answer_id, correlation_id=incoming.correlation_id,
            reason=refused.reason, body=incoming.body,
            interchange_id=None if refused.about is None else refused.about.interchange_id)
        async with translated_errors("recording a refused answer"), \
                self._pool.acquire() as connection, connection.transaction():
            refusal_id = await answers.refuse(connection, refusal)
            if refused.about is not None:  # in the history of the message it names
                await store.add_event(connection, refused.about.interchange_id,
                                      "answer_refused", {
                                          "broker_user": incoming.broker_user,
                                          "answer": incoming.answer_id,
                                          "reason": refused.reason, "refusal": refusal_id},
                                      refused.about.message_id)
        event(log, "answer_refused", level=logging.ERROR, code=alarms.ANSWER_REFUSED,
              broker_user=incoming.broker_user,
              routing_key=incoming.routing_key, answer=incoming.answer_id,
              correlation_id=incoming.correlation_id, reason=refused.reason,
              refusal=refusal_id, note="alarm: recorded in refused_answers and dead-lettered;"
              " forwarded nowhere")
