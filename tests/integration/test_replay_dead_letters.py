"""``gateway replay --dead`` with dead letters that are not what the gateway sent (found by an
adversarial review of issue 9): a letter is only a pointer to a delivery the gateway stored;
one that points nowhere, or cannot be looked up, stays in the queue and blocks no other."""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika

from tests.integration.test_poison import cli, wait_for
from tests.integration.test_replay import dead_count
from tests.support.edifact import cusdec
from tests.support.harness import AMQP_URL, Gateway


async def genuine_dead_letter(gateway: Gateway, channel: Any) -> tuple[int, str]:
    """A declaration delivered to customs and rejected by it: (submission id, message id)."""
    await gateway.upload("van-a", "decl.edi", cusdec(("8471",), sender="VANA"))
    await gateway.answers("van-a", "decl.edi")
    (submission,) = [r["id"] for r in await gateway.fetch("SELECT id FROM interchanges")]
    queue = await channel.get_queue(gateway.files.queue_prefix + "customs")
    dead = await channel.get_queue(gateway.files.queue_prefix + "customs.dead")
    message = await wait_for(lambda: queue.get(no_ack=False, fail=False), "a delivery")
    await message.reject(requeue=False)
    await wait_for(lambda: dead_count(dead), "the dead letter")
    return submission, str(message.message_id)


async def put_dead_letter(gateway: Gateway, channel: Any, message_id: str,
                          headers: dict[str, Any], body: bytes = b"{}") -> None:
    await channel.default_exchange.publish(
        aio_pika.Message(body, message_id=message_id, correlation_id="c", type="t",
                         headers=headers),
        routing_key=gateway.files.queue_prefix + "customs.dead")


async def replay_all(gateway: Gateway) -> tuple[int, str]:
    return await asyncio.to_thread(cli, gateway, "replay", "--dead", "customs", "--all")


async def test_a_dead_letter_naming_an_unknown_submission_does_not_block_the_others(
        gateway: Gateway) -> None:
    """A letter naming submission 999999999 used to make outbox.add violate
    outbox_interchange_id_fkey; StoreRefused escaped, every letter taken went back, and since
    the foreign letter came back first every later ``gateway replay --dead`` stopped at it."""
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        await put_dead_letter(gateway, channel, "foreign-1", {"submission_id": 999_999_999})
        _, genuine = await genuine_dead_letter(gateway, channel)
        code, said = await replay_all(gateway)
        assert code == 0 and f"dead letter '{genuine}'" in said, said
    finally:
        await connection.close()


async def test_a_dead_letter_whose_message_id_holds_a_nul_does_not_block_the_others(
        gateway: Gateway) -> None:
    """The dead letter's message id used to become the dispatch key, sent to PostgreSQL
    unguarded: 'invalid byte sequence for encoding UTF8: 0x00', and the replay of every dead
    letter behind it stopped."""
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        submission, _genuine = await genuine_dead_letter(gateway, channel)
        code, said = await replay_all(gateway)  # the genuine one: replayed
        assert code == 0, said
        await put_dead_letter(gateway, channel, "nul\x00id", {"submission_id": submission})
        await put_dead_letter(gateway, channel, "second\x00", {"submission_id": submission})
        code, said = await replay_all(gateway)
        assert code in (0, 1) and "PostgreSQL refused" not in said, said
    finally:
        await connection.close()


async def test_a_dead_letter_the_gateway_never_published_is_not_published(
        gateway: Gateway) -> None:
    """A forged letter (a message id the outbox never had, any body) naming a real submission
    used to be published to the agency: replay republished what the dead-letter queue held
    instead of what the gateway sent."""
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        submission, _ = await genuine_dead_letter(gateway, channel)
        await replay_all(gateway)  # the genuine one goes back to customs
        await gateway.queue("customs", expect=1)
        await put_dead_letter(gateway, channel, "forged-1",
                              {"submission_id": submission, "agency": "customs"},
                              body=b'{"kind": "CustomsDeclaration", "forged": true}')
        await replay_all(gateway)
        published = await gateway.fetch(
            "SELECT dispatch_key FROM outbox WHERE dispatch_key LIKE '%forged%'")
        assert published == [], published
    finally:
        await connection.close()
