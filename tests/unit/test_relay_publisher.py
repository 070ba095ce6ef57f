"""The AMQP publisher as the relay's dispatcher, against a scripted broker: only a Basic.Ack is
a delivery; a returned publish re-declares the agency's queue and is tried again; a nack waits
with its destination; a timeout or a dead connection stops the channel and reconnects; a
message the broker can never take is parked."""

from __future__ import annotations

from typing import Any

import aiormq
import pytest
from pamqp.header import ContentHeader

from gateway.bus import publisher as publisher_module
from gateway.bus.publisher import AmqpPublisher, publish_scope
from gateway.bus.topology import Topology
from gateway.store.outbox import OutboxRow, Scope

ACK = aiormq.spec.Basic.Ack(delivery_tag=1)


def returned_message(agency: str) -> aiormq.abc.DeliveredMessage:
    back = aiormq.spec.Basic.Return(reply_code=312, reply_text="NO_ROUTE", exchange="x",
                                    routing_key=agency)
    return aiormq.abc.DeliveredMessage(delivery=back, header=ContentHeader(), body=b"",
                                       channel=None)  # type: ignore[arg-type]


def returned(agency: str) -> aiormq.exceptions.PublishError:
    message = returned_message(agency)
    return aiormq.exceptions.PublishError(message, message.delivery)


NACK = aiormq.exceptions.DeliveryError(None, aiormq.spec.Basic.Nack(delivery_tag=1))
TOO_LARGE = aiormq.exceptions.ChannelPreconditionFailed(
    "PRECONDITION_FAILED - message size 200000000 is larger than configured max size")


class Broker:
    """Answers each publish with the next scripted outcome (a result or an exception)."""

    def __init__(self, *outcomes: Any, connect_error: BaseException | None = None) -> None:
        self.outcomes = list(outcomes)
        self.published: list[tuple[str, str]] = []
        self.declared: list[tuple[str, ...]] = []
        self.connections: list[Connection] = []
        self.channel_options: list[dict[str, Any]] = []
        self.connect_error = connect_error


class Channel:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.is_closed = False

    async def get_exchange(self, name: str) -> Exchange:
        return Exchange(self.broker, self)


class Exchange:
    def __init__(self, broker: Broker, channel: Channel) -> None:
        self.broker = broker
        self.channel = channel

    async def publish(self, message: Any, routing_key: str, **options: Any) -> Any:
        assert options["mandatory"] is True
        self.broker.published.append((routing_key, message.message_id))
        outcome = self.broker.outcomes.pop(0) if self.broker.outcomes else ACK
        if isinstance(outcome, aiormq.exceptions.ChannelClosed):
            self.channel.is_closed = True  # a channel error closes the channel (AMQP 1.5.2.5)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class Connection:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.is_closed = False

    async def channel(self, **options: Any) -> Channel:
        self.broker.channel_options.append(options)
        return Channel(self.broker)

    async def close(self) -> None:
        self.is_closed = True


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Broker:
    broker = Broker()

    async def connect(url: str) -> Connection:
        if broker.connect_error is not None:
            raise broker.connect_error
        connection = Connection(broker)
        broker.connections.append(connection)
        return connection

    async def declare(connection: Any, topology: Topology,
                      agencies: tuple[str, ...]) -> dict[str, str]:
        broker.declared.append(agencies)
        return {}

    monkeypatch.setattr(publisher_module, "connect", connect)
    monkeypatch.setattr(publisher_module, "declare", declare)
    return broker


def publisher() -> AmqpPublisher:
    return AmqpPublisher("amqp://test", Topology("x", "q."), ("customs", "port"))


def row(agency: str = "port", body: bytes = b"{}") -> OutboxRow:
    return OutboxRow(id=1, interchange_id=1, message_id=None, channel="amqp",
                     destination=agency, dispatch_key="swg-1-1-port", body=body,
                     properties={"message_id": "swg-1-1-port", "correlation_id": "swg-1-1",
                                 "type": "ContainerEvent", "headers": {}},
                     attempts=0, row_failures=0)


async def test_the_channel_raises_on_returns(broker: Broker) -> None:
    assert await publisher().dispatch(row()) is None
    assert broker.channel_options == [{"publisher_confirms": True, "on_return_raises": True}]


@pytest.mark.parametrize("back", [returned("port"), returned_message("port")],
                         ids=["raised", "resolved"])
async def test_a_returned_publish_redeclares_the_queue_and_publishes_again(
        broker: Broker, back: Any) -> None:
    broker.outcomes = [back, ACK]
    assert await publisher().dispatch(row()) is None
    assert broker.declared == [("customs", "port"), ("port",)]
    assert broker.published == [("port", "swg-1-1-port")] * 2


@pytest.mark.parametrize("back", [returned("port"), returned_message("port")],
                         ids=["raised", "resolved"])
async def test_a_publish_returned_again_is_a_failure_of_its_destination(
        broker: Broker, back: Any) -> None:
    broker.outcomes = [back, back]
    failure = await publisher().dispatch(row())
    assert failure is not None and failure.scope is Scope.DESTINATION


async def test_a_returned_publish_to_an_agency_no_longer_configured_is_parked(
        broker: Broker) -> None:
    broker.outcomes = [returned("gone")]
    failure = await publisher().dispatch(row("gone"))
    assert failure is not None and failure.scope is Scope.UNDELIVERABLE
    assert "not an agency" in failure.error and broker.declared == [("customs", "port")]


async def test_a_nack_is_a_failure_of_its_destination_and_keeps_the_connection(
        broker: Broker) -> None:
    broker.outcomes = [NACK, ACK]
    relay_side = publisher()
    failure = await relay_side.dispatch(row())
    assert failure is not None and failure.scope is Scope.DESTINATION
    assert "Nack" in failure.error
    assert await relay_side.dispatch(row("customs")) is None
    assert len(broker.connections) == 1 and not broker.connections[0].is_closed


@pytest.mark.parametrize("error", [TimeoutError(), ConnectionResetError(),
                                   aiormq.exceptions.ChannelInvalidStateError("closed")])
async def test_a_timeout_or_a_broken_link_stops_the_channel_and_reconnects(
        broker: Broker, error: BaseException) -> None:
    """A confirm that never came (it may still come, late): the message is published again
    under the same message id, which agencies deduplicate on (DESIGN rule 2)."""
    broker.outcomes = [error, ACK]
    relay_side = publisher()
    failure = await relay_side.dispatch(row())
    assert failure is not None and failure.scope is Scope.CHANNEL
    assert broker.connections[0].is_closed  # a wedged channel is not trusted again
    assert await relay_side.dispatch(row()) is None
    assert len(broker.connections) == 2
    assert broker.published == [("port", "swg-1-1-port")] * 2


async def test_the_broker_unreachable_is_a_failure_of_the_channel(broker: Broker) -> None:
    broker.connect_error = RuntimeError("<Connection> closed")  # what aiormq raises too
    failure = await publisher().dispatch(row())
    assert failure is not None and failure.scope is Scope.CHANNEL


async def test_a_message_refused_by_the_broker_is_undeliverable(broker: Broker) -> None:
    broker.outcomes = [TOO_LARGE]
    failure = await publisher().dispatch(row())
    assert failure is not None and failure.scope is Scope.UNDELIVERABLE


async def test_the_next_row_reopens_the_channel_the_broker_closed(broker: Broker) -> None:
    broker.outcomes = [TOO_LARGE, ACK]
    relay_side = publisher()
    failure = await relay_side.dispatch(row())
    assert failure is not None and failure.scope is Scope.UNDELIVERABLE
    assert await relay_side.dispatch(row("customs")) is None
    assert len(broker.connections) == 1 and len(broker.channel_options) == 2


async def test_a_body_larger_than_the_broker_takes_is_never_sent(
        broker: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publisher_module, "MAX_MESSAGE_BYTES", 10)
    failure = await publisher().dispatch(row(body=b"x" * 11))
    assert failure is not None and failure.scope is Scope.UNDELIVERABLE
    assert broker.published == []


def test_what_a_failed_publish_is_about() -> None:
    assert publish_scope(returned("port")) is Scope.DESTINATION
    assert publish_scope(NACK) is Scope.DESTINATION
    assert publish_scope(TOO_LARGE) is Scope.UNDELIVERABLE
    assert publish_scope(TimeoutError()) is Scope.CHANNEL
    assert publish_scope(None) is Scope.CHANNEL
