"""Consume one agency's queue.  Each delivery is handed to a handler and acknowledged only
after the handler returns, so a crash redelivers it; ``message_id`` is stable across
redeliveries and re-publishes, which lets a handler ignore what it has already seen."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aio_pika

from gateway.bus.topology import Topology, connect, translated_errors


@dataclass(frozen=True, slots=True)
class Delivery:
    message_id: str
    correlation_id: str
    type: str
    headers: dict[str, Any]
    body: dict[str, Any]
    redelivered: bool


Handler = Callable[[Delivery], Awaitable[None]]


async def consume(url: str, topology: Topology, agency: str, handler: Handler,
                  stop: asyncio.Event, prefetch: int = 20) -> None:
    """Run until ``stop`` is set.  The queue must exist (the gateway declares it)."""
    connection = await connect(url, robust=True)
    try:
        async with translated_errors(f"consuming {topology.queue_name(agency)}"):
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=prefetch)
            queue = await channel.get_queue(topology.queue_name(agency), ensure=True)

            async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                async with message.process(requeue=True):
                    await handler(_delivery(message))

            tag = await queue.consume(on_message)
            await stop.wait()
            await queue.cancel(tag)
    finally:
        await connection.close()


def _delivery(message: aio_pika.abc.AbstractIncomingMessage) -> Delivery:
    return Delivery(
        message_id=message.message_id or "",
        correlation_id=message.correlation_id or "",
        type=message.type or "",
        headers=dict(message.headers or {}),
        body=json.loads(message.body),
        redelivered=bool(message.redelivered),
    )


async def print_delivery(delivery: Delivery) -> None:
    """The example adapter's handler: one JSON line per declaration received."""
    source = delivery.body.get("source", {})
    goods = delivery.body.get("goods_items", [])
    print(json.dumps({
        "message_id": delivery.message_id,
        "type": delivery.type,
        "partner": delivery.headers.get("partner"),
        "declaration": delivery.body.get("declaration_number"),
        "function": delivery.body.get("function"),
        "interchange": source.get("interchange_reference"),
        "commodity_codes": [g.get("commodity_code") for g in goods],
        "redelivered": delivery.redelivered,
    }), flush=True)
