"""Publishing licences, for a licensing agency (docs/licences.md): each version of a licence
(issued, amended with a higher amendment number, or revoked) goes to the licences exchange
with the agency's code as the routing key and its broker user as ``user_id``, persistent and
mandatory, and counts as sent only on RabbitMQ's ``Basic.Ack``.

    from gateway.agency import licences
    await licences.publish(endpoint_of(config, "trade"), licences.licence(...))

The gateway takes a licence only from its issuing agency, and keeps the highest amendment."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterable
from decimal import Decimal

import aio_pika
import aiormq

from gateway.agency.credentials import Endpoint
from gateway.bus.topology import connect, translated_errors
from gateway.errors import BusError
from gateway.model.canonical.licence import Licence, LicenceKind

PUBLISH_TIMEOUT_SECONDS = 30.0
#: How long a publish is tried again while the gateway has not declared the exchange yet.
WAIT_SECONDS = 30.0


def licence(endpoint: Endpoint, *, number: str, holder: str, kind: LicenceKind,
            commodity_codes: Iterable[str], quantity: Decimal | int | str, unit: str,
            valid_from: dt.date, valid_until: dt.date, amendment: int = 0) -> Licence:
    """A licence issued by the endpoint's agency (ValueError when it is not one)."""
    return Licence(number=number, holder=holder, issuing_agency=endpoint.code,
                   licence_kind=kind, commodity_codes=tuple(commodity_codes),
                   quantity=Decimal(quantity), unit=unit, valid_from=valid_from,
                   valid_until=valid_until, amendment=amendment)


def amended(current: Licence, **changes: object) -> Licence:
    """The next amendment of ``current`` with ``changes`` (quantity, valid_until ...)."""
    return Licence.model_validate({**current.model_dump(), **changes,
                                   "amendment": current.amendment + 1})


def revoked(current: Licence) -> Licence:
    """The revocation of ``current``: its next amendment, with status revoked."""
    return amended(current, status="revoked")


async def publish(endpoint: Endpoint, licence: Licence, *,
                  wait_seconds: float = WAIT_SECONDS) -> None:
    """Publish one version of a licence as the endpoint's agency, again while the exchange
    is not there or no queue takes it (the gateway declares them when it starts), up to
    ``wait_seconds``; BusError unless RabbitMQ confirmed it."""
    deadline = time.monotonic() + wait_seconds
    pause = 0.1
    while True:
        try:
            await _publish_once(endpoint, licence)
            return
        except BusError:
            if time.monotonic() + pause > deadline:
                raise
        await asyncio.sleep(pause)
        pause = min(2.0, pause * 2)


async def _publish_once(endpoint: Endpoint, licence: Licence) -> None:
    async with translated_errors(f"publishing licence {licence.number!r}"):
        connection = await connect(endpoint.url)
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            exchange = await channel.get_exchange(endpoint.licences_exchange, ensure=True)
            confirmed = await exchange.publish(
                aio_pika.Message(
                    body=licence.model_dump_json().encode(), type="Licence",
                    message_id=f"{licence.number}#{licence.amendment}",
                    correlation_id=licence.number, content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT, user_id=endpoint.user),
                routing_key=endpoint.code, mandatory=True, timeout=PUBLISH_TIMEOUT_SECONDS)
        finally:
            await connection.close()
    if not isinstance(confirmed, aiormq.spec.Basic.Ack):
        raise BusError(f"licence {licence.number!r}: RabbitMQ did not confirm it: {confirmed!r}")
