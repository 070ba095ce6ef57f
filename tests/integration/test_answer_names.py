"""Every submission is answered, whatever it was called (issue 9 item 9): an upload under a
240-byte name, or a Latin-1 name that grows once decoded, used to get an answer whose name the
file system refused, retried every 60 s for ever."""

from __future__ import annotations

from tests.support.edifact import cusdec
from tests.support.harness import Gateway


async def upload_bytes_name(gateway: Gateway, name: bytes, data: bytes) -> None:
    async with gateway.connect("van-a") as connection, \
            connection.start_sftp_client() as sftp, \
            sftp.open(b"inbox/" + name, "wb") as handle:
        await handle.write(data)


async def test_long_and_latin1_names_are_answered(gateway: Gateway) -> None:
    names = [b"x" * 240 + b".edi", b"\xe9" * 200 + b".edi", "台灣報單.edi".encode()]
    for number, name in enumerate(names):
        await upload_bytes_name(gateway, name, cusdec(
            ("8471",), sender="VANA", control_reference=f"NAME{number}"))
    await gateway.settled()
    rows = await gateway.fetch("SELECT id FROM interchanges WHERE status = 'accepted'")
    outbox = gateway.files.mailbox("van-a") / "outbox"
    for row in rows:
        (answer,) = outbox.glob(f"*.{row['id']}.contrl.edi")
        assert len(answer.name.encode()) <= 255 and not answer.name.startswith(".")
    assert len(rows) == len(names)
    kept = sorted(p.name for p in outbox.iterdir())
    assert any(name.startswith("x" * 200) for name in kept)
    assert any(name.startswith("台灣報單.edi.") for name in kept)
    assert await gateway.fetch("SELECT id FROM outbox WHERE dispatched_at IS NULL") == []
