"""One delivery of a canonical message to one agency, as an outbox row: what the processor
writes when it decides, and what ``gateway release`` writes for a held message."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TextIO

from pydantic import ValidationError

from gateway.model.canonical import CANONICAL_ADAPTER, CanonicalMessage
from gateway.pipeline.route import is_cancellation
from gateway.store import interchanges as store
from gateway.store import outbox
from gateway.store.deferred import Deferred


def queue_delivery(writes: Deferred, *, submission_id: int, partner_id: str,
                   position: int, message_id: int, body: bytes, kind: str,
                   interchange_ref: str, message_type: str, release: str, agency: str,
                   role: str, aeo: bool, priority: int | None = None,
                   verified: Mapping[str, str] | None = None,
                   stable_id: str | None = None) -> None:
    """``role`` is "deliver" (the agency acts on it, and its answer is awaited) or "copy" (an
    observer).  ``aeo``: an authorised economic operator registered to the partner is
    answerable for the message (header ``aeo``: agencies check trusted traders less);
    ``verified``: that trader's programme, tier and validity as the registry holds them
    (headers ``aeo_trader``, ``aeo_programme``, ``aeo_tier``, ``aeo_status``,
    ``aeo_valid_until``, ``aeo_mutual_recognition``; model.traders.AeoRegistry.verified).
    ``body``: the canonical message's JSON; ``stable_id``: its AMQP message id when not the
    usual ``delivery_id`` (a delivery made when the declaration reached a state)."""
    correlation = f"swg-{submission_id}-{position}"
    stable_id = stable_id or delivery_id(submission_id, position, agency)
    if role == "deliver":
        writes.awaited.append((message_id, agency))
    writes.rows.append(outbox.NewRow(
        interchange_id=submission_id, message_id=message_id, channel="amqp",
        destination=agency, dispatch_key=stable_id, body=body,
        properties={
            "message_id": stable_id,
            "correlation_id": correlation,
            "type": kind,
            "priority": priority,
            "headers": {
                "agency": agency,
                "role": role,
                "partner": partner_id,
                "message_type": message_type,
                "release": release,
                "interchange_ref": interchange_ref,
                "submission_id": submission_id,
                "aeo": aeo,
                **(verified or {}),
            },
        }))


def delivery_id(submission_id: int, position: int, agency: str) -> str:
    """The AMQP message id of a delivery, the same on every re-publish (rule 2); an agency's
    answer names it as its correlation id."""
    return f"swg-{submission_id}-{position}-{agency}"


def answerable_by_aeo(trusted: frozenset[str], canonical: CanonicalMessage) -> bool:
    """Whether one of ``trusted`` (the AEOs registered to the sending partner) is answerable
    for ``canonical`` (app.traders)."""
    return not trusted.isdisjoint(canonical.responsible_trader_ids)


def queue_deliveries(writes: Deferred, *, submission_id: int, partner_id: str,
                     position: int, message_id: int, canonical: CanonicalMessage,
                     message_type: str, release: str, agencies: tuple[str, ...],
                     copies: tuple[str, ...], trusted: frozenset[str],
                     priority: int | None = None, canonical_json: str | None = None,
                     verified: Mapping[str, str] | None = None) -> list[str]:
    """One delivery per agency that acts on the message and per observer, into ``writes``
    (the caller flushes them in its transaction); returns who gets it, in that order.
    ``trusted``: the AEOs registered to the partner; ``canonical_json``: the message's JSON
    when the caller has it already; ``verified``: the trusted trader's status headers."""
    roles = [(a, "deliver") for a in agencies] + [(a, "copy") for a in copies]
    aeo = answerable_by_aeo(trusted, canonical)
    body = (canonical_json or canonical.model_dump_json()).encode("utf-8")  # once for all
    for agency, role in roles:
        queue_delivery(
            writes, submission_id=submission_id, partner_id=partner_id, position=position,
            message_id=message_id, body=body, kind=canonical.kind,
            interchange_ref=canonical.source.interchange_reference,
            message_type=message_type, release=release, agency=agency, role=role, aeo=aeo,
            priority=priority, verified=verified if aeo else None)
    return [agency for agency, _ in roles]


async def original_route_of(connection: Any, partner_id: str, canonical: CanonicalMessage,
                            before: int) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """Where the original of a cancellation went (agencies, observers): a cancellation follows
    it (pipeline.route.follow_original).  None for any other message, or an unknown original."""
    reference = canonical.document_reference
    if not is_cancellation(canonical) or not reference:
        return None
    return await store.original_route(connection, partner_id, reference, before)


async def stored_canonical(connection: Any, message: store.StoredMessage,
                           out: TextIO) -> CanonicalMessage | None:
    """A stored canonical message read again for release or replay; None (told, and recorded
    in its history) when it no longer fits the canonical model, e.g. a value stored before the
    model learnt to refuse it: it stays where it is for ops to look at."""
    try:
        return CANONICAL_ADAPTER.validate_json(message.canonical)
    except ValidationError as exc:
        problem = f"{exc.error_count()} problem(s), first: {exc.errors()[0]['msg']}"
        await store.add_event(connection, message.interchange_id, "stored_message_invalid",
                              {"problem": problem}, message.id)
        out.write(f"message {message.id}: the stored canonical message no longer fits the "
                  f"model ({problem}); left as it is\n")
        return None
