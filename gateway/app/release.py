"""``gateway release REF``: send on the messages a routing rule held (``hold: true``) once ops
have looked at them.  One transaction: the deliveries go into the outbox, the messages become
routed, and each gets a "released" event; a running gateway's relay publishes them."""

from __future__ import annotations

from typing import TextIO

from gateway.app.deliveries import queue_delivery
from gateway.config.load import GatewayConfig
from gateway.model.canonical import CANONICAL_ADAPTER
from gateway.store import interchanges as store
from gateway.store.database import create_pool, translated_errors


async def release(config: GatewayConfig, reference: str, out: TextIO) -> int:
    pool = await create_pool(config.database_url, size=1)
    try:
        async with translated_errors("releasing held messages"), pool.acquire() as connection, \
                connection.transaction():
            held = await store.held_messages(connection, reference)
            for message in held:
                canonical = CANONICAL_ADAPTER.validate_json(message.canonical)
                roles = [(a, "deliver") for a in message.agencies] + \
                        [(a, "copy") for a in message.copies]
                for agency, role in roles:
                    await queue_delivery(
                        connection, submission_id=message.interchange_id,
                        partner_id=message.partner_id, position=message.position,
                        message_id=message.id, canonical=canonical,
                        message_type=message.message_type, release=message.release,
                        agency=agency, role=role)
                await store.mark_routed(connection, message.id)
                await store.add_event(connection, message.interchange_id, "released",
                                      {"to": [a for a, _ in roles]}, message.id)
                out.write(f"released message {message.id} "
                          f"({canonical.document_reference}) to "
                          f"{', '.join(a for a, _ in roles) or 'nobody'}\n")
    finally:
        await pool.close()
    if not held:
        out.write(f"nothing held under {reference!r}\n")
        return 1
    return 0
