"""No dead ends (issue 9 item 11): what stopped on the way can be taken up again, at most once,
with an event in its history."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aio_pika

from tests.integration.test_poison import cli, wait_for
from tests.support.edifact import cusdec
from tests.support.harness import (
    AMQP_URL,
    DEMO_AGENCIES,
    Gateway,
    create_database,
    delete_topology,
    drop_database,
    start_gateway,
    write_files,
)


def replace_file(path: Path, text: str) -> None:
    """Write as ops tools do: a new file renamed over the old one."""
    partial = path.with_name(f".{path.name}.new")
    partial.write_text(text)
    os.replace(partial, path)


async def table_version(gateway: Gateway, count: int) -> None:
    await wait_for(lambda: gateway.fetch(
        "SELECT id FROM routing_versions WHERE status = 'applied' OFFSET $1", count - 1),
        f"routing table version {count} applied")


async def test_an_unroutable_message_is_routed_again_by_the_table_in_force(
        gateway: Gateway) -> None:
    routing = gateway.files.root / "routing.yaml"
    replace_file(routing, "rules:\n  - name: food\n    match: {hs_chapters: ['01-24']}\n"
                          "    deliver: [quarantine]\n")
    await table_version(gateway, 2)
    await gateway.upload("van-a", "lathe.edi", cusdec(("8458.11",), sender="VANA",
                                                      control_reference="LATHE"))
    await gateway.answers("van-a", "lathe.edi")
    (row,) = await gateway.fetch("SELECT status FROM messages")
    assert row["status"] == "unroutable"
    code, said = await asyncio.to_thread(cli, gateway, "replay", "LATHE")
    assert code == 0 and "still no rule matches" in said
    replace_file(routing, "rules:\n  - name: customs\n    deliver: [customs]\n")
    await table_version(gateway, 3)
    code, said = await asyncio.to_thread(cli, gateway, "replay", "LATHE")
    assert code == 0 and "routed to customs" in said, said
    (delivered,) = await gateway.queue("customs", expect=1, settle=1.0)
    assert delivered.headers["submission_id"] > 0
    code, said = await asyncio.to_thread(cli, gateway, "replay", "LATHE")
    assert code == 1  # at most once: it is routed now
    (message,) = await gateway.fetch("SELECT status, routing_version, rules FROM messages")
    versions = await gateway.fetch("SELECT id FROM routing_versions WHERE status = 'applied'"
                                   " ORDER BY id")
    assert message["status"] == "routed" and list(message["rules"]) == ["customs"]
    assert message["routing_version"] == versions[-1]["id"]
    kinds = [r["kind"] for r in await gateway.fetch("SELECT kind FROM events ORDER BY id")]
    assert kinds.count("replay_unroutable") == 1 and kinds.count("replayed") == 1
    assert await gateway.queue("customs", expect=1) == [delivered]


async def test_a_dead_letter_is_replayed_once_per_death(gateway: Gateway) -> None:
    await gateway.upload("van-a", "decl.edi", cusdec(("8471",), sender="VANA"))
    await gateway.answers("van-a", "decl.edi")
    (submission,) = [r["id"] for r in await gateway.fetch("SELECT id FROM interchanges")]
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(gateway.files.queue_prefix + "customs")
        dead = await channel.get_queue(gateway.files.queue_prefix + "customs.dead")

        async def reject_one() -> str:
            message = await wait_for(lambda: queue.get(no_ack=False, fail=False),
                                     "a delivery to customs")
            await message.reject(requeue=False)  # the agency cannot take it
            await wait_for(lambda: dead_count(dead), "the dead letter")
            return str(message.message_id)

        first_id = await reject_one()
        code, said = await asyncio.to_thread(cli, gateway, "replay", "--dead", "customs",
                                             str(submission))
        assert code == 0 and f"dead letter '{first_id}'" in said and "published" in said
        second_id = await reject_one()  # replayed, and rejected again
        assert second_id == first_id  # the same message id: the agency can tell
        code, said = await asyncio.to_thread(cli, gateway, "replay", "--dead", "customs",
                                             "--all")
        assert code == 0 and "published" in said
        again = await wait_for(lambda: queue.get(no_ack=True, fail=False), "second replay")
        assert again.message_id == first_id and again.headers["replays"] == 2
        code, said = await asyncio.to_thread(cli, gateway, "replay", "--dead", "customs",
                                             "--all")
        assert code == 1 and "no dead letter" in said
    finally:
        await connection.close()
    replays = await gateway.fetch("SELECT dispatch_key FROM outbox WHERE dispatch_key LIKE"
                                  " 'replay-%' ORDER BY id")
    assert [r["dispatch_key"] for r in replays] == [
        f"replay-{first_id}-1", f"replay-{first_id}-2"]
    events = await gateway.fetch("SELECT detail::text FROM events WHERE kind = 'replayed'")
    assert len(events) == 2 and all("dead letter" in e["detail"] for e in events)


async def dead_count(queue: aio_pika.abc.AbstractQueue) -> int:
    declared = await queue.channel.declare_queue(queue.name, passive=True)
    return int(declared.declaration_result.message_count or 0)


async def test_a_dead_letter_of_another_message_stays(gateway: Gateway) -> None:
    code, said = await asyncio.to_thread(cli, gateway, "replay", "--dead", "nobody", "--all")
    assert code == 2 and "'nobody' is not an agency" in said
    code, said = await asyncio.to_thread(cli, gateway, "replay")
    assert code == 2 and "name a REFERENCE or give --all" in said


async def test_the_same_bytes_after_ops_fixed_the_cause_are_decided_again(
        tmp_path: Path) -> None:
    """A rejection is not a decision to keep for ever: once ops add the sender ID the partner
    used, the identical resend is processed (it used to get the old rejection again)."""
    database = await create_database()
    files = write_files(tmp_path, database)
    data = cusdec(("8471",), sender="VANA2", control_reference="FIXED1")
    gateway = await start_gateway(files)
    try:
        await gateway.upload("van-a", "first.edi", data)
        (first,) = await gateway.answers("van-a", "first.edi")
        assert b"+4+23" in first  # unknown interchange sender
    finally:
        await gateway.stop()
    partners = files.root / "partners.yaml"
    partners.write_text(partners.read_text().replace("      - id: VANA\n",
                                                     "      - id: VANA\n      - id: VANA2\n"))
    gateway = await start_gateway(files)
    try:
        await gateway.upload("van-a", "again.edi", data)
        (again,) = await gateway.answers("van-a", "again.edi")
        assert b"UCI+FIXED1+VANA2:ZZZ+SWGATEWAY:ZZZ+7" in again
        assert len(await gateway.queue("customs", expect=1)) == 1
        await gateway.upload("van-a", "third.edi", data)  # now a true duplicate
        (third,) = await gateway.answers("van-a", "third.edi")
        assert third == again
        statuses = [r["status"] for r in await gateway.fetch(
            "SELECT status FROM interchanges ORDER BY id")]
        assert statuses == ["rejected", "accepted", "duplicate"]
        assert len(await gateway.queue("customs", expect=1)) == 1
    finally:
        await gateway.stop()
        await delete_topology(files, DEMO_AGENCIES)
        await drop_database(database)


async def test_a_parked_delivery_is_sent_again_once(gateway: Gateway) -> None:
    await gateway.upload("van-a", "decl.edi", cusdec(("8471",), sender="VANA"))
    await gateway.answers("van-a", "decl.edi")
    (first,) = await gateway.queue("customs", expect=1)
    (submission,) = [r["id"] for r in await gateway.fetch("SELECT id FROM interchanges")]
    # As the relay leaves a delivery it gave up on (outbox parking, issue 9 item 9).
    await gateway.fetch("UPDATE outbox SET dispatched_at = NULL, parked_at = now(),"
                        " next_attempt_at = 'infinity', last_error = 'gave up'"
                        " WHERE channel = 'amqp'")
    code, said = await asyncio.to_thread(cli, gateway, "replay", str(submission))
    assert code == 0 and "amqp dispatch to customs" in said and "sent again" in said
    (again,) = (await gateway.queue("customs", expect=2))[1:]
    assert again.message_id == first.message_id
    code, said = await asyncio.to_thread(cli, gateway, "replay", str(submission))
    assert code == 1  # at most once
    events = await gateway.fetch("SELECT detail::text FROM events WHERE kind = 'replayed'")
    assert len(events) == 1 and "parked amqp dispatch" in events[0]["detail"]


async def test_a_stored_message_the_model_now_refuses_is_left_for_ops(
        gateway: Gateway) -> None:
    """A canonical message stored before the model learnt to refuse one of its values (here
    an Arabic-Indic commodity code) is told and left as it is, not a crash of the replay."""
    replace_file(gateway.files.root / "routing.yaml",
                 "rules:\n  - name: manifests\n    match: {kind: CargoReport}\n"
                 "    deliver: [customs]\n")
    await table_version(gateway, 2)
    await gateway.upload("van-a", "old.edi", cusdec(("8471",), sender="VANA",
                                                    control_reference="OLD1"))
    await gateway.answers("van-a", "old.edi")
    await gateway.fetch(
        "UPDATE messages SET canonical = jsonb_set(canonical, '{goods_items,0,commodity_code}',"
        " to_jsonb('\u0668\u0664\u0667\u0661'::text))")
    code, said = await asyncio.to_thread(cli, gateway, "replay", "OLD1")
    assert code == 0 and "no longer fits the model" in said and "left as it is" in said
    (row,) = await gateway.fetch("SELECT status FROM messages")
    assert row["status"] == "unroutable"
    kinds = [r["kind"] for r in await gateway.fetch("SELECT kind FROM events")]
    assert "stored_message_invalid" in kinds
