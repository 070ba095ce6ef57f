"""Every submission is answered whatever name it was uploaded under (issue 9, item 9): before,
a 240-byte name or a Latin-1 one made an answer name no file system takes, retried every
60 s for ever, and the relay's batch stopped at it, starving every partner's answers."""

from __future__ import annotations

import os

from tests.support.edifact import cusdec
from tests.support.harness import Gateway


async def answer_to(gateway: Gateway, partner: str, submission: int) -> list[str]:
    """Names in the partner's outbox that answer this submission."""
    await gateway.settled()
    outbox = gateway.files.mailbox(partner) / "outbox"
    return [n for n in os.listdir(outbox) if n.endswith(f".{submission}.contrl.edi")]


async def test_uploads_under_hostile_names_are_answered_and_starve_nobody(
        gateway: Gateway) -> None:
    names = {
        b"a" * 240: "long",  # the answer's name would be 257 bytes
        b"\xe9" * 200: "latin-1",  # each byte becomes U+FFFD: 600 bytes
        "台灣報單.edi".encode(): "not Latin",  # kept as it is
    }
    async with gateway.connect("van-a") as connection, \
            connection.start_sftp_client() as sftp:
        for n, name in enumerate(names):
            async with sftp.open(b"inbox/" + name, "wb") as handle:
                await handle.write(cusdec(sender="VANA", control_reference=f"HOSTILE{n}"))
    await gateway.upload("van-b", "good.edi", cusdec(sender="VANB", control_reference="GOOD"))
    (good,) = await gateway.answers("van-b", "good.edi")  # not starved behind them
    assert b"UCI+GOOD+VANB" in good
    rows = await gateway.fetch(
        "SELECT interchange_id, dispatched_at, parked_at FROM outbox WHERE channel = 'mailbox'"
        " AND destination = 'van-a' ORDER BY id")
    assert len(rows) == len(names)
    for row in rows:
        (answer,) = await answer_to(gateway, "van-a", row["interchange_id"])
        assert row["dispatched_at"] is not None and row["parked_at"] is None
        assert len(answer.encode()) <= 255 and not answer.startswith(".")
    assert any(n.startswith("a" * 200) for n in os.listdir(gateway.files.mailbox("van-a") /
                                                           "outbox"))
    assert any(n.startswith("台灣報單.edi.") for n in os.listdir(gateway.files.mailbox("van-a") /
                                                            "outbox"))
