"""Publish port alarms on the alarms exchange (a durable topic exchange; routing key
``<alarm>.<rule>``, e.g. ``overtime.discharge-to-gate-out``), persistent, with publisher
confirms: an alarm is marked published only once RabbitMQ acked it, so a broker outage or a
crash before the ack leaves it to be published again (DESIGN rule 1), under the same
``message_id`` (rule 2: a consumer drops the second).

Not mandatory: the exchange is a broadcast, and an alarm no queue is bound for yet is still
kept (the console lists it); a mandatory publish would come back for ever until someone
subscribes."""

from __future__ import annotations

from typing import Any

import aio_pika
import aiormq

from gateway.bus.topology import connect, translated_errors
from gateway.errors import BusError
from gateway.model.canonical.port_alarm import PortAlarm

PUBLISH_TIMEOUT_SECONDS = 15


class AlarmPublisher:
    def __init__(self, url: str, exchange: str) -> None:
        self._url = url
        self._name = exchange
        self._connection: Any = None
        self._exchange: Any = None

    async def _open(self) -> Any:
        if self._connection is None or self._connection.is_closed or self._exchange is None \
                or self._exchange.channel.is_closed:
            await self.close()
            self._connection = await connect(self._url)
            async with translated_errors(f"declaring the alarms exchange {self._name!r}"):
                channel = await self._connection.channel(publisher_confirms=True)
                self._exchange = await channel.declare_exchange(
                    self._name, aio_pika.ExchangeType.TOPIC, durable=True)
        return self._exchange

    async def publish(self, alarms: list[PortAlarm]) -> list[int]:
        """The ids of the alarms RabbitMQ confirmed, in order, up to the first that failed
        (which raises BusError once none went)."""
        done: list[int] = []
        try:
            exchange = await self._open()
            for alarm in alarms:
                await self._publish_one(exchange, alarm)
                done.append(alarm.alarm_id)
        except BusError:
            await self.close()
            if not done:
                raise
        return done

    async def _publish_one(self, exchange: Any, alarm: PortAlarm) -> None:
        message = aio_pika.Message(
            alarm.model_dump_json().encode(), content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT, message_id=alarm.amqp_message_id,
            type="PortAlarm", headers={"code": alarm.code, "container": alarm.container})
        async with translated_errors(f"publishing {alarm.amqp_message_id}"):
            confirmed = await exchange.publish(
                message, routing_key=f"{alarm.alarm}.{alarm.rule}", mandatory=False,
                timeout=PUBLISH_TIMEOUT_SECONDS)  # aio-pika's default is mandatory
        if not isinstance(confirmed, aiormq.spec.Basic.Ack):
            raise BusError(f"publishing {alarm.amqp_message_id}: not confirmed: {confirmed!r}")

    async def close(self) -> None:
        connection, self._connection, self._exchange = self._connection, None, None
        if connection is not None and not connection.is_closed:
            try:
                async with translated_errors("closing"):
                    await connection.close()
            except BusError:
                pass  # leaving anyway; the next publish opens a new one
