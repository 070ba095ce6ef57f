"""The processor: takes committed submissions from the store, runs the pure pipeline on each,
and writes the whole decision (messages, events, outbox rows, acknowledgement) in the
transaction that locks it.  A crash anywhere leaves the submission 'received' to be taken
again; nothing is decided twice.

One never holds back the others (DESIGN rule 6):
- each attempt is counted before the work starts (store.claim_next), and a submission whose
  decision fails on our side (a bug, a value the database refuses, a crash of the process) is
  tried again with a growing pause and parked with an alarm after MAX_ATTEMPTS, visible in
  ``gateway track`` and put back by ``gateway replay``;
- several workers decide at once, and one of them only takes small submissions, so a large or
  slow one never stalls the traffic behind it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import asdict, replace
from typing import Any, Protocol

from gateway import alarms
from gateway.app import licences as licence_gate
from gateway.app import n2n
from gateway.app.deliveries import answerable_by_aeo, original_route_of, queue_deliveries
from gateway.app.memory import without_cyclic_gc
from gateway.app.routing_reload import RoutingInForce, TableInForce
from gateway.app.traders import AeoRegistry, TraderRegistry
from gateway.app.workers import poll_forever
from gateway.catalog.catalog import Catalog
from gateway.config.load import GatewayConfig
from gateway.config.partners import Partner
from gateway.console import metrics
from gateway.errors import StoreUnavailable
from gateway.logs import event
from gateway.model.canonical import CanonicalMessage, CertificateOfOrigin, CustomsDeclaration
from gateway.model.edifact import PartyId
from gateway.model.findings import Finding, SyntaxErrorCode
from gateway.model.outcome import Acknowledgement, MessageOutcome, Outcome, Receipt, Status
from gateway.pipeline.mapping.mapping import Mappings
from gateway.pipeline.process import Context, process_submission, refusal
from gateway.pipeline.route import follow_original
from gateway.pipeline.xml_kinds import XmlCatalog
from gateway.store import interchanges as store
from gateway.store import outbox
from gateway.store import traders as trader_store
from gateway.store.database import translated_errors
from gateway.store.deferred import Deferred
from gateway.transports.mailbox import answer_name

log = logging.getLogger("gateway.processor")
IDLE_POLL_SECONDS = 1.0
#: Attempts at deciding one submission before it is parked for ops (with the pauses of
#: store.claim_next, about eight minutes of trying).
MAX_ATTEMPTS = 8
#: Submissions whose outage-ended attempts are remembered at once (bounded memory: the oldest
#: is forgotten first, and its attempts then count like any other).
MAX_REMEMBERED_OUTAGES = 10_000
#: Submissions one worker claims and decides in one transaction.
BATCH = 32


class Wakeable(Protocol):
    def set(self) -> None: ...


class Processor:
    def __init__(self, pool: Any, config: GatewayConfig, compiled: tuple[Catalog, Mappings],
                 routing: RoutingInForce, wake: asyncio.Event, wake_relays: Wakeable,
                 xml: XmlCatalog | None = None) -> None:
        self._pool = pool
        self._xml = xml if xml is not None else XmlCatalog()
        self._traders = TraderRegistry(pool)
        self._config = config
        self._catalog, self._mappings = compiled
        self._routing = routing
        self._wake = wake
        self._wake_relays = wake_relays
        settings = config.settings
        self._gateway = PartyId(settings.gateway_id, settings.gateway_id_qualifier or "")
        #: Submissions a worker of this process is deciding: the others do not take them.
        self._busy: set[int] = set()
        #: Attempts that ended because PostgreSQL was unreachable, per submission: those are
        #: everybody's outage, not this submission's fault, so they do not count towards
        #: parking (a crash of the process still does: it forgets these).
        self._outages: dict[int, int] = {}
        #: What each decision in progress counts once its transaction commits (console.metrics).
        self._tallies: dict[int, metrics.Tally] = {}

    async def run(self, name: str = "processor", max_size: int | None = None) -> None:
        """One worker; ``max_size`` makes it a lane for submissions of at most that size."""
        async def step() -> bool:
            return await self.process_batch(max_size)

        await poll_forever(name, step, self._wake, IDLE_POLL_SECONDS)

    async def process_one(self, max_size: int | None = None) -> bool:
        """Decide one waiting submission; False when none is waiting."""
        return await self.process_batch(max_size, limit=1)

    async def process_batch(self, max_size: int | None = None, limit: int = BATCH) -> bool:
        """Decide up to ``limit`` waiting submissions, in one transaction when all goes well
        (one claim, one lock, one commit for them all); False when none is waiting.

        Each submission stays all or nothing: when any decision of the batch fails, the
        batch's transaction is rolled back and each is decided again on its own, so one bad
        submission is retried and parked alone and never takes the others down with it."""
        claimed = await store.claim_batch(self._pool, limit, max_size=max_size,
                                          busy=self._busy)
        if not claimed:
            return False
        fresh: list[store.PendingInterchange] = []
        for pending in claimed:
            if self._attempts(pending) > MAX_ATTEMPTS:  # earlier attempts never came back
                await self._park(pending, "the gateway stopped while deciding it, "
                                 f"{pending.attempts - 1} times")
            else:
                fresh.append(pending)
        self._busy.update(p.id for p in fresh)
        try:
            await self._decide_all(fresh)
        finally:
            self._busy.difference_update(p.id for p in fresh)
        self._wake_relays.set()
        return True

    async def _decide_all(self, batch: list[store.PendingInterchange]) -> None:
        if len(batch) > 1:
            try:
                await self._decide_together(batch)
                return
            except StoreUnavailable:
                for pending in batch:
                    self._count_outage(pending.id)
                raise  # everybody waits alike; the turn comes back
            except Exception as exc:  # noqa: BLE001 - one of them: each again on its own
                event(log, "batch_split", level=logging.WARNING, submissions=len(batch),
                      error=repr(exc), note="each submission is decided on its own")
        for pending in batch:
            await self._decide_alone(pending)

    async def _decide_together(self, batch: list[store.PendingInterchange]) -> None:
        """Every decision of ``batch`` in one transaction; raises what any of them raised."""
        version = _newest_registry(batch)
        while (moved := await self._try_together(batch, version)) is not None:
            version = moved

    async def _try_together(self, batch: list[store.PendingInterchange],
                            version: int | None) -> int | None:
        """One attempt at deciding ``batch`` with the trader registry of ``version``; the
        registry's version when a change committed since (decide again with it), else None."""
        registry = await self._traders.current(version)
        in_force = self._routing.current  # one table for the whole batch
        assert in_force is not None
        trusted = {p.partner_id: registry.trusted_for(p.partner_id) for p in batch}
        outcomes = await asyncio.to_thread(without_cyclic_gc(self._outcomes), batch, in_force,
                                           trusted)
        committed = False
        try:
            async with translated_errors("deciding submissions"), \
                    self._pool.acquire() as connection, connection.transaction():
                ours = await store.lock_claimed_many(connection, batch)
                moved = await _registry_moved(connection, registry)
                if moved is not None:
                    return moved
                await licence_gate.lock_all(connection, (
                    (p.partner_id, m.canonical) for p, o in zip(batch, outcomes, strict=True)
                    if not isinstance(o, Exception) for m in o.messages))
                await n2n.lock_all(connection, (
                    m.canonical for o in outcomes if not isinstance(o, Exception)
                    for m in o.messages))
                writes = Deferred()
                for pending, outcome in zip(batch, outcomes, strict=True):
                    if pending.id in ours:
                        if isinstance(outcome, Exception):
                            raise outcome
                        await self._decide(connection, writes, pending, registry,
                                           (in_force, outcome))
                await writes.flush(connection)
            committed = True
        finally:  # committed: counted; rolled back: decided again, and counted then
            self._settle_tallies(batch, committed=committed)
        for pending in batch:
            self._outages.pop(pending.id, None)
        return None

    def _outcomes(self, batch: list[store.PendingInterchange], in_force: TableInForce,
                  trusted: dict[str, frozenset[str]]) -> list[Outcome | Exception]:
        """The pure pipeline's outcome of each (in a worker thread), or what it raised."""
        results: list[Outcome | Exception] = []
        for pending in batch:
            try:
                results.append(self._outcome(pending, in_force, trusted[pending.partner_id]))
            except Exception as exc:  # noqa: BLE001 - raised again when its turn comes
                results.append(exc)
        return results

    def _outcome(self, pending: store.PendingInterchange, in_force: TableInForce,
                 trusted: frozenset[str]) -> Outcome:
        partner = self._config.partner(pending.partner_id)
        received = pending.received_at.astimezone(dt.UTC)
        if partner is None:  # removed from partners.yaml after it submitted
            return refusal(f"partner {pending.partner_id!r} is no longer configured on this "
                           "gateway", int(SyntaxErrorCode.NO_AGREEMENT), pending.file_name,
                           received)
        return process_submission(pending.raw, self._context(pending, partner, received,
                                                             in_force, trusted))

    async def _decide_alone(self, claimed: store.PendingInterchange) -> None:
        try:
            # Read before the decision's connection is taken: a worker never holds one pooled
            # connection while it waits for another (with every worker doing so, the pool
            # would be empty and nothing decided again).
            version = claimed.registry_version
            while True:
                registry = await self._traders.current(version)
                committed = False
                try:
                    async with translated_errors("deciding a submission"), \
                            self._pool.acquire() as connection, connection.transaction():
                        if await store.lock_claimed(connection, claimed):
                            version = await _registry_moved(connection, registry)
                            if version is not None:
                                continue  # the transaction ends unused: decided again
                            writes = Deferred()
                            await self._decide(connection, writes, claimed, registry)
                            await writes.flush(connection)
                    committed = True
                finally:
                    self._settle_tallies([claimed], committed=committed)
                break
        except StoreUnavailable:
            self._count_outage(claimed.id)
            raise  # everybody waits alike; the turn comes back
        except Exception as exc:  # noqa: BLE001 - ours (a bug, a refused value): retry, park
            await self._failed(claimed, exc)
            return
        self._outages.pop(claimed.id, None)

    def _settle_tallies(self, decided: list[store.PendingInterchange], *,
                        committed: bool) -> None:
        for pending in decided:
            tally = self._tallies.pop(pending.id, None)
            if tally is not None and committed:
                tally.commit()

    def _tally(self, submission: int) -> metrics.Tally:
        return self._tallies.setdefault(submission, metrics.Tally())

    def _count_outage(self, submission: int) -> None:
        """Remember one more outage-ended attempt; the oldest entry goes when the memory is
        full (a submission another gateway decided is never seen again here)."""
        if submission not in self._outages and len(self._outages) >= MAX_REMEMBERED_OUTAGES:
            del self._outages[next(iter(self._outages))]
        self._outages[submission] = self._outages.get(submission, 0) + 1

    def _attempts(self, claimed: store.PendingInterchange) -> int:
        """The attempts that count towards parking."""
        return claimed.attempts - self._outages.get(claimed.id, 0)

    async def _failed(self, claimed: store.PendingInterchange, exc: Exception) -> None:
        """Rule 4: our failure is never the partner's fault; it is retried on its own (the claim
        already set its next turn), and parked after MAX_ATTEMPTS so it cannot block others."""
        if self._attempts(claimed) >= MAX_ATTEMPTS:
            await self._park(claimed, repr(exc))
            return
        event(log, "processing_failed", level=logging.ERROR, exc_info=exc,
              partner=claimed.partner_id, submission=claimed.id, attempt=claimed.attempts,
              error=repr(exc))
        await store.record_failure(self._pool, claimed, repr(exc))

    async def _park(self, claimed: store.PendingInterchange, error: str) -> None:
        self._outages.pop(claimed.id, None)
        if await store.park(self._pool, claimed, error):
            event(log, "submission_parked", level=logging.ERROR, code=alarms.SUBMISSION_PARKED,
                  partner=claimed.partner_id,
                  submission=claimed.id, attempts=claimed.attempts, error=error,
                  note=f"alarm: ops must look; `gateway replay {claimed.id}` tries it again")

    async def _decide(self, connection: Any, writes: Deferred,
                      pending: store.PendingInterchange, registry: AeoRegistry,
                      computed: tuple[TableInForce, Outcome] | None = None) -> None:
        """``computed``: the pipeline's outcome already in hand (a batch runs the pipeline for
        all its submissions in one go), with the routing table it was computed with."""
        trusted = registry.trusted_for(pending.partner_id)
        if computed is None:
            in_force = self._routing.current  # taken once: a reload swaps it between decisions
            assert in_force is not None
            outcome = await asyncio.to_thread(without_cyclic_gc(self._outcome), pending,
                                              in_force, trusted)
        else:
            in_force, outcome = computed
        header = outcome.header
        key = None if header is None or outcome.status is Status.REJECTED else (
            header.sender.id, header.control_reference)
        earlier = await store.earlier_of(connection, pending, key)
        if earlier is not None:
            await self._duplicate(connection, writes, pending, earlier.id, earlier.because)
            return
        await self._save(connection, writes, pending, outcome, in_force.version,
                         (trusted, registry))
        self._trusted_claims(writes, pending, outcome, registry)

    def _context(self, pending: store.PendingInterchange, partner: Partner,
                 received: dt.datetime, in_force: TableInForce,
                 trusted: frozenset[str]) -> Context:
        return Context(partner=partner, routing=in_force.table, catalog=self._catalog,
                       mappings=self._mappings,
                       gateway=self._gateway, ack_reference=str(pending.id),
                       received=received, file_name=pending.file_name,
                       trusted_traders=trusted, xml=self._xml)

    async def _save(self, connection: Any, writes: Deferred,
                    pending: store.PendingInterchange,
                    outcome: Outcome, routing_version: int,
                    verifier: tuple[frozenset[str], AeoRegistry]) -> None:
        """``verifier``: the AEOs trusted for the partner, and the registry they come from."""
        header = outcome.header
        reply_to = None if header is None or outcome.answer_to is None else store.ReplyTo(
            outcome.answer_to.id, outcome.answer_to.qualifier, header.syntax_version)
        tally = self._tally(pending.id)
        tally.status = outcome.status.value
        await licence_gate.lock_all(connection, ((pending.partner_id, m.canonical)
                                                 for m in outcome.messages))
        trader = licence_gate.Trader(
            pending.partner_id, pending.id, header.control_reference if header else None,
            reply_to, self._config.answer_channel(pending.partner_id))
        later: list[outbox.NewRow] = []  # after the CONTRL: the licence check's answers
        if outcome.status is Status.REJECTED:
            tally.rejected("interchange", _first_code(outcome))
        writes.events.append(await store.decide(
            connection, pending.id, status=outcome.status.value, summary=outcome.summary,
            sender_id=header.sender.id if header else None,
            recipient_id=header.recipient.id if header else None,
            control_ref=header.control_reference if header else None, reply_to=reply_to))
        for message in outcome.messages:
            await self._save_message(connection, writes, pending, message, routing_version,
                                     verifier, (trader, later))
        for receipt in outcome.receipts:
            await self._record_receipt(connection, writes, pending, receipt)
        if outcome.acknowledgement is not None:
            self._answer(writes, pending, outcome.acknowledgement,
                               header.control_reference if header else None)
        writes.rows.extend(later)
        event(log, "decided", partner=pending.partner_id, submission=pending.id,
              interchange=header.control_reference if header else None,
              status=outcome.status.value, summary=outcome.summary)

    async def _save_message(self, connection: Any, writes: Deferred,
                            pending: store.PendingInterchange,
                            message: MessageOutcome, routing_version: int,
                            verifier: tuple[frozenset[str], AeoRegistry],
                            answering: tuple[licence_gate.Trader, list[outbox.NewRow]]
                            ) -> None:
        """``answering``: whom a failed licence check answers, and where its answer goes."""
        trusted, registry = verifier
        if message.accepted and message.canonical is not None:
            original = await original_route_of(connection, pending.partner_id,
                                               message.canonical, pending.id)
            message = message if original is None else follow_original(message, original)
        message, licence = await licence_gate.judge(connection, pending.partner_id, message,
                                                    dt.datetime.now(dt.UTC).date())
        if message.accepted and isinstance(message.canonical, CustomsDeclaration):
            message = replace(message, canonical=await n2n.verified_declaration(
                connection, message.canonical))
        canonical = message.canonical
        canonical_json = canonical.model_dump_json() if canonical else None
        status = "rejected" if not message.accepted else "held" if message.held_by else (
            "routed" if message.agencies or message.copies else "unroutable")
        message_id = await store.insert_message(
            connection, pending.id, position=message.position,
            message_ref=message.reference, message_type=message.identifier.type,
            release=message.identifier.directory, status=status,
            canonical=canonical_json,
            document_ref=canonical.document_reference if canonical else None,
            agencies=message.agencies, copies=message.copies, rules=message.rules,
            routing_version=routing_version,
            findings=[_finding_json(f) for f in message.findings],
            aeo=answerable_by_aeo(trusted, canonical)
            if status == "routed" and canonical is not None else None)
        detail: dict[str, Any] = {"message_ref": message.reference,
                                  "agencies": list(message.agencies),
                                  "copies": list(message.copies),
                                  "rules": list(message.rules)}
        if status == "rejected":
            detail["findings"] = [f.describe() for f in message.findings]
        if status == "held":
            detail["held_by"] = list(message.held_by)
        writes.event(pending.id, f"message_{status}", detail, message_id)
        if status != "rejected":
            await self._origin_certificates(connection, writes, pending, canonical, message_id)
        await self._licence_settled(connection, writes, pending, message, message_id,
                                    (licence, answering))
        self._tally(pending.id).message(status, message.agencies)
        if status == "rejected" and message.findings:
            self._tally(pending.id).rejected("message", int(message.findings[0].code))
        if status == "unroutable":
            event(log, "unroutable", level=logging.WARNING, partner=pending.partner_id,
                  submission=pending.id, message_ref=message.reference)
        if status != "routed" or canonical is None:
            return
        assert canonical_json is not None
        queue_deliveries(
            writes, submission_id=pending.id, partner_id=pending.partner_id,
            position=message.position, message_id=message_id, canonical=canonical,
            message_type=message.identifier.type, release=message.identifier.directory,
            agencies=message.agencies, copies=message.copies, trusted=trusted,
            priority=message.priority, canonical_json=canonical_json,
            verified=registry.verified(trusted, canonical.responsible_trader_ids))

    async def _origin_certificates(self, connection: Any, writes: Deferred,
                                   pending: store.PendingInterchange,
                                   canonical: CanonicalMessage | None, message_id: int) -> None:
        """A certificate from a foreign single window, or a declaration citing certificates
        of origin: recorded and linked, whichever came first (docs/n2n.md)."""
        if isinstance(canonical, CustomsDeclaration):
            await n2n.record_declaration(connection, writes, canonical, message_id, pending.id)
        elif isinstance(canonical, CertificateOfOrigin) and canonical.from_single_window:
            partner = self._config.partner(pending.partner_id)
            if partner is not None and partner.single_window:
                await n2n.record_certificate(connection, writes, canonical, message_id,
                                             pending.id, partner)

    async def _licence_settled(
            self, connection: Any, writes: Deferred, pending: store.PendingInterchange,
            message: MessageOutcome, message_id: int,
            judged: tuple[licence_gate.Judged | None,
                          tuple[licence_gate.Trader, list[outbox.NewRow]]]) -> None:
        """What the licence check reserved, or the trader's answer to its failure; and what
        a cancellation gives back (docs/licences.md)."""
        licence, (trader, later) = judged
        if licence is not None:
            await licence_gate.record(connection, writes, pending.id, message, message_id,
                                      licence)
            if not licence.verdict.passed:
                later.append(licence_gate.trader_answer(
                    self._mappings, self._gateway, trader, message, message_id,
                    licence.verdict))
        await licence_gate.restore_for_cancellation(connection, writes, pending.partner_id,
                                                    message, message_id, pending.id)

    def _trusted_claims(self, writes: Deferred, pending: store.PendingInterchange,
                        outcome: Outcome, registry: AeoRegistry) -> None:
        """A message naming an authorised economic operator that is not registered to the
        sending partner: the AEO lane did not apply to it, and its history says why."""
        for message in outcome.messages:
            if message.canonical is None:
                continue
            named = message.canonical.responsible_trader_ids
            lapsed = registry.lapsed(pending.partner_id, named, dt.datetime.now(dt.UTC).date())
            if lapsed:  # suspended, revoked, expired or not yet valid: the lane did not apply
                writes.event(pending.id, "trusted_trader_not_applied", {
                    "message_ref": message.reference, "partner": pending.partner_id,
                    "lapsed": lapsed, "registry_version": registry.version})
            elsewhere = registry.claimed_elsewhere(pending.partner_id, named)
            if elsewhere:
                writes.event(pending.id, "trusted_trader_not_applied", {
                    "message_ref": message.reference, "partner": pending.partner_id,
                    "registered_to": elsewhere,
                    "reason": "an AEO identification counts only in the messages of the "
                              "partners it is registered to"})

    async def _record_receipt(self, connection: Any, writes: Deferred,
                              pending: store.PendingInterchange, receipt: Receipt) -> None:
        """A partner's CONTRL: an event on the CONTRL's own submission, and on the submission
        our answer with that reference was for (our CONTRLs carry the submission id)."""
        detail = {"acknowledged_reference": receipt.acknowledged_reference,
                  "action": receipt.action, "rejected_messages": list(receipt.rejected_messages)}
        writes.event(pending.id, "contrl_received", detail)
        answered = await store.answered_submission(connection, pending.partner_id,
                                                   receipt.acknowledged_submission)
        if answered is not None:
            writes.event(answered, "partner_acknowledged",
                         {**detail, "by_submission": pending.id})

    async def _duplicate(self, connection: Any, writes: Deferred,
                         pending: store.PendingInterchange, original: int,
                         because: str) -> None:
        """Rule 2: a resend is not routed again; it gets the original answer again."""
        summary = f"duplicate of submission {original} ({because}); not routed again"
        self._tally(pending.id).status = "duplicate"
        await writes.flush(connection)  # the original may be of this batch: its answer too
        first = await store.decided(connection, original)
        writes.events.append(await store.decide(
            connection, pending.id, status="duplicate", summary=summary,
            sender_id=first.sender_id, recipient_id=first.recipient_id,
            control_ref=first.control_ref, duplicate_of=original))
        if first.ack_kind is not None and first.ack_body is not None:  # CONTRLs got none
            self._answer(writes, pending, Acknowledgement(first.ack_kind, first.ack_body),
                         first.control_ref)
        event(log, "duplicate", partner=pending.partner_id, submission=pending.id,
              original=original, reason=because)

    def _answer(self, writes: Deferred, pending: store.PendingInterchange,
                ack: Acknowledgement, interchange_ref: str | None) -> None:
        """The answer goes to the partner's outbox under ``<file>.<submission>.<suffix>``,
        always a name the outbox can hold (``answer_name``), whatever the upload was called."""
        file_name = answer_name(pending.file_name, pending.id, ack.suffix)
        writes.acknowledgements.append(
            store.NewAcknowledgement(pending.id, ack.kind, file_name, ack.body))
        writes.rows.append(outbox.NewRow(
            interchange_id=pending.id, message_id=None,
            channel=self._config.answer_channel(pending.partner_id),
            destination=pending.partner_id, dispatch_key=f"ack-{pending.id}", body=ack.body,
            properties={"file_name": file_name, "kind": ack.kind, "partner": pending.partner_id,
                        "interchange_ref": interchange_ref,
                        # the answer's latency is measured from here when it is written
                        "received_at": pending.received_at.timestamp()}))


async def _registry_moved(connection: Any, registry: AeoRegistry) -> int | None:
    """The trader registry's version when a change committed since ``registry`` was read,
    else None; either way the version stays held FOR SHARE until the decision commits, so a
    suspension either came before the decision (and is in it, decided again) or waits for it
    (docs/traders.md: a suspension applies at once)."""
    held = await trader_store.hold_version(connection)
    return held if held != registry.version else None


def _newest_registry(batch: list[store.PendingInterchange]) -> int | None:
    """The newest trader registry version the batch's claim saw (one statement: all alike)."""
    return max((p.registry_version for p in batch if p.registry_version is not None),
               default=None)


def _first_code(outcome: Outcome) -> int:
    """The ISO 9735 code (0085) a rejection is counted under: the interchange's first finding,
    else its first rejected message's, else 18 (unspecified)."""
    findings = outcome.findings or next(
        (m.findings for m in outcome.messages if m.findings), ())
    return int(findings[0].code) if findings else int(SyntaxErrorCode.UNSPECIFIED)


def _finding_json(finding: Finding) -> dict[str, Any]:
    data = asdict(finding)
    data["code"] = int(finding.code)
    return data


