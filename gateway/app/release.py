"""``gateway release REF``: send on the messages a routing rule held (``hold: true``) once ops
have looked at them.  One transaction: the deliveries go into the outbox, the messages become
routed, and each gets a "released" event; a running gateway's relay publishes them."""

from __future__ import annotations

from typing import Any, TextIO

from gateway.app.deliveries import answerable_by_aeo, queue_deliveries, stored_canonical
from gateway.app.traders import AeoRegistry, TraderRegistry
from gateway.config.load import GatewayConfig
from gateway.store import interchanges as store
from gateway.store.database import create_pool, translated_errors
from gateway.store.deferred import Deferred


async def release(config: GatewayConfig, reference: str, out: TextIO) -> int:
    pool = await create_pool(config.database_url, size=1)
    try:
        registry = await TraderRegistry(pool).current()
        async with translated_errors("releasing held messages"), pool.acquire() as connection, \
                connection.transaction():
            held = await store.messages_in(connection, "held", reference)
            await release_messages(connection, registry, held, out)
    finally:
        await pool.close()
    if not held:
        out.write(f"nothing held under {reference!r}\n")
        return 1
    return 0


async def release_messages(connection: Any, registry: AeoRegistry,
                           held: list[store.StoredMessage], out: TextIO) -> None:
    """Send on ``held`` (locked by ``store.messages_in`` in the caller's transaction): the
    CLI's and the console's release (console Attention page)."""
    for message in held:
        canonical = await stored_canonical(connection, message, out)
        if canonical is None:
            continue
        writes = Deferred()
        trusted = registry.trusted_for(message.partner_id)
        sent_to = queue_deliveries(
            writes, submission_id=message.interchange_id,
            partner_id=message.partner_id, position=message.position,
            message_id=message.id, canonical=canonical,
            message_type=message.message_type, release=message.release,
            agencies=message.agencies, copies=message.copies, trusted=trusted,
            verified=registry.verified(trusted, canonical.responsible_trader_ids))
        await writes.flush(connection)
        await store.set_route(connection, message.id, status="routed",
                              agencies=message.agencies, copies=message.copies,
                              aeo=answerable_by_aeo(trusted, canonical))
        await store.add_event(connection, message.interchange_id, "released",
                              {"to": sent_to}, message.id)
        out.write(f"released message {message.id} "
                  f"({canonical.document_reference}) to "
                  f"{', '.join(sent_to) or 'nobody'}\n")
