"""``gateway replay``: take up again what stopped on the way, each thing at most once, each with
an event in its history (``gateway track``).

- A parked submission (decided in vain MAX_ATTEMPTS times: our failure) goes back to be
  decided by the running gateway, with a fresh count of attempts.
- An unroutable message (no rule matched) is routed again against the routing table in force
  (the last one the gateway applied); what matches now is delivered, what still matches
  nothing stays parked.
- A parked outbox row (a delivery or an answer that failed on its own 8 times, or could never
  go) is sent again by the relays, with a fresh count of failures.
- A dead letter (an agency rejected it, or could not take it within the delivery limit) is
  published to its agency again through the outbox, once per death (the replay carries a
  ``replays`` header counting them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TextIO

from gateway.app.deliveries import (
    answerable_by_aeo,
    original_route_of,
    queue_deliveries,
    stored_canonical,
)
from gateway.app.traders import AeoRegistry
from gateway.bus.dead_letters import REPLAYS_HEADER, DeadLetter, replay_dead_letters
from gateway.bus.topology import topology_of
from gateway.config.load import GatewayConfig, parse_routing
from gateway.config.routing import RoutingTable
from gateway.errors import ConfigError, StoreRefused
from gateway.model.canonical import CanonicalMessage
from gateway.pipeline.route import RouteDecision, follow_original, route
from gateway.store import interchanges as store
from gateway.store import outbox, routing_versions
from gateway.store import traders as trader_store
from gateway.store.database import create_pool, translated_errors
from gateway.store.deferred import Deferred

Connection = Any


async def replay(config: GatewayConfig, reference: str | None, out: TextIO) -> int:
    """Parked submissions and unroutable messages named by ``reference`` (a submission id, UNB
    reference or declaration number; every one when None).  1 when nothing was named."""
    pool = await create_pool(config.database_url, size=1)
    try:
        registry = await trader_store.registry(pool)
        async with translated_errors("replaying"), pool.acquire() as connection, \
                connection.transaction():
            parked = await replay_parked_submission(connection, reference, out)
            routed = await _unroutable(connection, config, reference, registry, out)
            resent = await replay_parked_rows(connection, reference, out)
    finally:
        await pool.close()
    if not parked and not routed and not resent:
        what = f"under {reference!r}" if reference is not None else "at all"
        out.write(f"nothing parked or unroutable {what}\n")
        return 1
    return 0


async def replay_parked_submission(connection: Connection, reference: str | None,
                                   out: TextIO) -> list[int]:
    """Parked submissions (one by id, or every one) back to be decided, each with its event;
    at most once: the update takes only what is still parked."""
    parked = await store.requeue_parked(connection, reference)
    for submission in parked:
        await store.add_event(connection, submission, "replayed",
                              {"what": "parked submission", "note": "decided again"})
        out.write(f"submission {submission}: parked, now waiting to be decided again\n")
    return parked


async def replay_parked_rows(connection: Connection, reference: str | None,
                             out: TextIO) -> int:
    rows = await outbox.requeue_parked(connection, reference)
    for row in rows:
        await store.add_event(connection, row.interchange_id, "replayed", {
            "what": f"parked {row.channel} dispatch", "destination": row.destination,
            "key": row.dispatch_key})
        out.write(f"submission {row.interchange_id}: {row.channel} dispatch to "
                  f"{row.destination} ({row.dispatch_key}) is sent again\n")
    return len(rows)


async def _unroutable(connection: Connection, config: GatewayConfig, reference: str | None,
                      registry: AeoRegistry, out: TextIO) -> int:
    messages = await store.messages_in(connection, "unroutable", reference)
    await replay_unroutable(connection, config, messages, registry, out)
    return len(messages)


async def replay_unroutable(connection: Connection, config: GatewayConfig,
                            messages: list[store.StoredMessage], registry: AeoRegistry,
                            out: TextIO) -> None:
    """Route ``messages`` (unroutable, locked by ``store.messages_in`` in the caller's
    transaction) again against the table in force: the CLI's and the console's replay."""
    if not messages:
        return
    version, table = await _table_in_force(connection, config)
    for message in messages:
        canonical = await stored_canonical(connection, message, out)
        if canonical is None:
            continue
        trusted = registry.trusted_for(message.partner_id)
        decision = await _decision(connection, message, canonical, table, trusted)
        await _apply(connection, message, canonical, decision, version, trusted, out,
                     registry.verified(trusted, canonical.responsible_trader_ids))


async def _table_in_force(connection: Connection,
                          config: GatewayConfig) -> tuple[int | None, RoutingTable]:
    applied = await routing_versions.applied_table(connection)
    if applied is None:  # the gateway never ran on this database: the table on disk
        return None, config.routing
    version, body, source = applied
    try:
        return version, parse_routing(body, f"routing version {version} ({source})",
                                      config.agency_codes)
    except ConfigError as exc:
        raise ConfigError(f"the routing table in force no longer loads against "
                          f"{config.settings.agencies}: {exc}") from exc


async def _decision(connection: Connection, message: store.StoredMessage,
                    canonical: CanonicalMessage, table: RoutingTable,
                    trusted: frozenset[str]) -> RouteDecision:
    decision = route(table, canonical, message.partner_id, trusted)
    original = await original_route_of(connection, message.partner_id, canonical,
                                       message.interchange_id)
    return decision if original is None else follow_original(decision, original)


async def _apply(connection: Connection, message: store.StoredMessage,
                 canonical: CanonicalMessage, decision: RouteDecision, version: int | None,
                 trusted: frozenset[str], out: TextIO,
                 verified: dict[str, str] | None = None) -> None:
    name = f"message {message.id} ({canonical.document_reference})"
    if not (decision.agencies or decision.copies):
        await store.add_event(connection, message.interchange_id, "replay_unroutable",
                              {"routing_version": version}, message.id)
        out.write(f"{name}: still no rule matches; it stays unroutable\n")
        return
    status = "held" if decision.held_by else "routed"
    await store.set_route(connection, message.id, status=status, agencies=decision.agencies,
                          copies=decision.copies, rules=decision.rules,
                          routing_version=version,
                          aeo=answerable_by_aeo(trusted, canonical) if status == "routed"
                          else None)
    sent_to: list[str] = []
    if status == "routed":
        writes = Deferred()
        sent_to = queue_deliveries(
            writes, submission_id=message.interchange_id, partner_id=message.partner_id,
            position=message.position, message_id=message.id, canonical=canonical,
            message_type=message.message_type, release=message.release,
            agencies=decision.agencies, copies=decision.copies, trusted=trusted,
            priority=decision.priority, verified=verified)
        await writes.flush(connection)
    await store.add_event(connection, message.interchange_id, "replayed", {
        "what": "unroutable message", "routing_version": version, "status": status,
        "to": sent_to, "rules": list(decision.rules),
        "held_by": list(decision.held_by)}, message.id)
    verdict = f"held by {', '.join(decision.held_by)}" if decision.held_by else \
        f"routed to {', '.join(sent_to)}"
    out.write(f"{name}: {verdict}\n")


#: Called inside a dead letter's replay transaction once it is published again (the console
#: writes its audit row there: the same transaction as the change).
Recorded = Callable[[Connection, dict[str, Any]], Awaitable[None]]


async def replay_dead(config: GatewayConfig, agency: str, reference: str | None,
                      out: TextIO, *, pool: Any = None, recorded: Recorded | None = None
                      ) -> int:
    """Publish again, to ``agency``, what its dead letters were (those of ``reference``, a
    submission, message or correlation id, when given), through the outbox: each death once.

    A dead letter is only a pointer: what is published is the delivery this gateway stored
    for it, so a letter the gateway never sent (or one an agency rewrote) publishes nothing.
    A letter that cannot be replayed stays in the queue and the others go on."""
    if agency not in config.agency_codes:
        raise ConfigError(f"{agency!r} is not an agency of {config.settings.agencies} "
                          f"({', '.join(config.agency_codes)})")
    own = pool is None
    pool = await create_pool(config.database_url, size=1) if own else pool
    try:
        async def one(letter: DeadLetter) -> bool:
            if reference is not None and reference not in _names(letter):
                return False
            try:
                return await _republish(pool, agency, letter, out, recorded)
            except StoreRefused as exc:  # this letter only: the others go on
                out.write(f"dead letter {_quoted(letter.message_id)}: not replayed ({exc}); "
                          "left in the queue\n")
                return False

        taken = await replay_dead_letters(config.amqp_url, topology_of(config), agency, one)
    finally:
        if own:
            await pool.close()
    if not taken:
        what = f" for {reference!r}" if reference is not None else ""
        out.write(f"no dead letter{what} replayed from {agency}'s dead-letter queue\n")
        return 1
    return 0


def _names(letter: DeadLetter) -> set[str]:
    return {letter.message_id, letter.correlation_id,
            str(letter.headers.get("submission_id", ""))}


def _quoted(value: str) -> str:
    """An agency's value, printed: bounded and with its control characters escaped."""
    return repr(value[:80]) + ("..." if len(value) > 80 else "")


async def dead_letters(config: GatewayConfig, agency: str, limit: int) -> list[DeadLetter]:
    """The first ``limit`` letters in ``agency``'s dead-letter queue now, each put back
    untouched (the console's Attention page lists them)."""
    if agency not in config.agency_codes:
        raise ConfigError(f"{agency!r} is not an agency of {config.settings.agencies}")
    seen: list[DeadLetter] = []

    async def look(letter: DeadLetter) -> bool:
        seen.append(letter)
        return False  # nacked back to the queue after the scan

    await replay_dead_letters(config.amqp_url, topology_of(config), agency, look, limit)
    return seen


async def _republish(pool: Any, agency: str, letter: DeadLetter, out: TextIO,
                     recorded: Recorded | None = None) -> bool:
    """One outbox row per (message id, death), a copy of the delivery the gateway stored:
    replaying twice does not publish twice, and nothing the gateway did not send goes out."""
    name = _quoted(letter.message_id)
    async with translated_errors("replaying a dead letter"), pool.acquire() as connection, \
            connection.transaction():
        original = await outbox.published(connection, "amqp", agency, letter.message_id)
        if original is None:
            out.write(f"dead letter {name}: this gateway never delivered such a message to "
                      f"{agency}; left in the queue\n")
            return False
        key = f"replay-{original.dispatch_key}-{letter.replays + 1}"
        if await outbox.exists(connection, key):
            out.write(f"dead letter {name}: already replayed ({key}); removed from the "
                      "dead-letter queue\n")
            return True
        properties = original.properties
        await outbox.add(
            connection, interchange_id=original.interchange_id,
            message_id=original.message_id, channel="amqp", destination=agency,
            dispatch_key=key, body=original.body,
            properties={**properties, "headers": {**properties.get("headers", {}),
                                                  REPLAYS_HEADER: letter.replays + 1}})
        detail = {"what": "dead letter", "agency": agency, "message_id": original.dispatch_key,
                  "replay": letter.replays + 1, "reason": letter.reason}
        await store.add_event(connection, original.interchange_id, "replayed", detail,
                              original.message_id)
        if recorded is not None:
            await recorded(connection, {**detail, "submission": original.interchange_id})
    out.write(f"dead letter {name} ({_quoted(letter.reason or 'dead')}): published to "
              f"{agency} again\n")
    return True
