"""AS2 over a gateway's life, over real HTTP into real gateways: a partner's certificate
rotation and ours, the gateway dying while an answer's POST is in flight, decompression and
parser bombs, and ``Expect: 100-continue``.  Each time: what the partner sees, and that
nothing accepted is lost or doubled (interchanges, as2_received, as2_sent, outbox)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.app import serve as serve_module
from gateway.errors import As2Rejected
from gateway.security.as2 import read_as2, read_mdn
from gateway.security.as2_write import HttpMessage, build_message
from gateway.security.pki import Issued
from tests.support.as2 import entity
from tests.support.as2_lifecycle import (
    issued_since,
    many_parts,
    nested_envelope,
    post_expecting_continue,
    recording_receiver,
    signed_bomb,
    with_body,
)
from tests.support.as2_peer import Peer, as2_port, as2_url, gateway_certificate, new_peer, send
from tests.support.edifact import cusdec
from tests.support.harness import (
    DEMO_AGENCIES,
    Gateway,
    create_database,
    delete_topology,
    drop_database,
    gateway_fixture,
    start_gateway,
    write_files,
)

VANA = new_peer("VANA")
#: VANA's rotation: the certificate it had, the one it moves to (valid from a day ago), and
#: one more from the same CA that partners.yaml does not list.
VANA_OLD = issued_since("VANA", 30)
VANA_NEW = issued_since("VANA", 1)
VANA_UNLISTED = issued_since("VANA", 0)
#: Ours: the key we had (valid since ten days) and the one we move to (valid from now).
OURS_OLD = issued_since("SWGATEWAY old", 10)
OURS_NEW = issued_since("SWGATEWAY new", 0)


def as2_gateway(**more: object) -> dict[str, object]:
    return {"as2": json.dumps({"id": "SWGATEWAY", "port": 0, **more})}


url = as2_url


async def count(gateway: Gateway, sql: str) -> int:
    (row,) = await gateway.fetch(f"SELECT count(*) AS n FROM {sql}")
    return int(row["n"])


async def taken(gateway: Gateway) -> tuple[int, int]:
    """(interchanges, as2_received rows): what was accepted, to be neither lost nor doubled."""
    return await count(gateway, "interchanges"), await count(gateway, "as2_received")


def disposition(response: Any) -> str:
    assert response.status == 200, (response.status, response.body[:300])
    text: str = response.mdn().report.disposition.text()
    return text


async def still_serves(gateway: Gateway) -> None:
    """An ordinary message right after: taken."""
    response = await send(url(gateway), VANA.message(cusdec(
        sender="VANA", control_reference="GOOD1"))[0])
    assert disposition(response) == "processed"


async def dispatched(gateway: Gateway, rows: int) -> list[Any]:
    """The as2 channel's outbox rows once ``rows`` of them are dispatched."""
    for _ in range(600):
        found = await gateway.fetch("SELECT id, attempts, dispatched_at, parked_at FROM outbox"
                                    " WHERE channel = 'as2' ORDER BY id")
        if sum(r["dispatched_at"] is not None for r in found) >= rows:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {rows} AS2 answers dispatched: {found}")


# --- 1. a partner's certificate rotation ----------------------------------------------------


async def test_a_partner_rotating_its_certificate_is_read_under_both_and_answered_to_the_new(
        tmp_path: Path) -> None:
    for name, issued in (("vana-old.crt", VANA_OLD), ("vana-new.crt", VANA_NEW)):
        (tmp_path / name).write_bytes(issued.certificate_pem)
    # The partner's server after its switch: only the new key.
    async with recording_receiver(Peer("VANA", VANA_NEW)) as server:
        async for gateway in gateway_fixture(
                tmp_path, settings=as2_gateway(),
                partner_as2={"van-a": {"id": "VANA", "url": server.url,
                                       "certificates": ["vana-old.crt", "vana-new.crt"]}}):
            old = await send(url(gateway), Peer("VANA", VANA_OLD).message(
                cusdec(sender="VANA", control_reference="OLD1"))[0])
            new = await send(url(gateway), Peer("VANA", VANA_NEW).message(
                cusdec(sender="VANA", control_reference="NEW1"))[0])
            unlisted = await send(url(gateway), Peer("VANA", VANA_UNLISTED).message(
                cusdec(sender="VANA", control_reference="NOPE1"))[0])
            assert disposition(old) == "processed"
            assert disposition(new) == "processed"
            # issued by the same CA, but not pinned: refused
            assert disposition(unlisted) == "processed/error: authentication-failed"
            assert await taken(gateway) == (2, 2)
            # Both CONTRLs reach the server holding only the new key (it decrypts them)...
            await server.wait(2)
            assert all(b"CONTRL" in p.payload and p.encrypted for p in server.received)
            rows = await dispatched(gateway, 2)
            assert len(rows) == 2
            sent = await gateway.fetch("SELECT disposition, mic_matched FROM as2_sent")
            assert [(r["disposition"], r["mic_matched"]) for r in sent] == [
                ("processed", True)] * 2
            # ...and the old key alone cannot read them: encrypted to the newest certificate.
            for request in server.requests:
                with pytest.raises(As2Rejected) as refused:
                    read_as2(request.headers, request.body,
                             keys=[(VANA_OLD.certificate, VANA_OLD.private_key)],
                             partner_certificates=[gateway_certificate()],
                             max_bytes=10_000_000)
                assert refused.value.disposition == "decryption-failed"
            assert await taken(gateway) == (2, 2)


# --- 2. our own key rotation ----------------------------------------------------------------


@pytest.fixture
async def rotated(tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway whose signing.keys are OURS_OLD then OURS_NEW (the demo key removed)."""
    database = await create_database()
    files = write_files(tmp_path, database, settings=as2_gateway(),
                        partner_as2={"van-a": VANA.settings(tmp_path)})
    pki = tmp_path / "pki"
    for name, issued in (("old", OURS_OLD), ("new", OURS_NEW)):
        (pki / f"{name}.crt").write_bytes(issued.certificate_pem)
        (pki / f"{name}.key").write_bytes(issued.key_pem)
    text = files.config_path.read_text()
    demo = "    - certificate: pki/gateway.crt\n      key: pki/gateway.key\n"
    assert demo in text
    files.config_path.write_text(text.replace(demo, "".join(
        f"    - certificate: pki/{n}.crt\n      key: pki/{n}.key\n" for n in ("old", "new"))))
    gateway = await start_gateway(files)
    try:
        yield gateway
    finally:
        await gateway.stop()
        await delete_topology(files, DEMO_AGENCIES)
        await drop_database(database)


def encrypted_to(recipient: Issued | None, reference: str) -> HttpMessage:
    """VANA's signed message encrypted to ``recipient`` (None: the demo gateway key)."""
    certificate = gateway_certificate() if recipient is None else recipient.certificate
    message, _ = build_message(
        cusdec(sender="VANA", control_reference=reference), filename=f"{reference}.edi",
        content_type="application/EDIFACT", as2_from="VANA", as2_to="SWGATEWAY",
        message_id=f"<{reference}@VANA>", subject="rotation", signer=VANA.key,
        digest="sha256", recipients=(certificate,), encryption="aes256-cbc")
    return message


async def test_our_key_rotation_reads_both_certificates_and_signs_with_the_newest(
        rotated: Gateway) -> None:
    for recipient, reference in ((OURS_OLD, "TOOLD"), (OURS_NEW, "TONEW")):
        response = await send(url(rotated), encrypted_to(recipient, reference))
        assert response.status == 200
        # the MDN verifies against the new certificate, is signed by it...
        mdn = read_mdn(response.headers, response.body,
                       partner_certificates=[OURS_NEW.certificate])
        assert mdn.report.disposition.text() == "processed", reference
        assert mdn.signed and mdn.signer == OURS_NEW.certificate
        # ...and not by the old one, though both are valid now
        with pytest.raises(As2Rejected):
            read_mdn(response.headers, response.body,
                     partner_certificates=[OURS_OLD.certificate])
    # a key no longer listed decrypts nothing
    gone = await send(url(rotated), encrypted_to(None, "TODEMO"))
    gone_mdn = read_mdn(gone.headers, gone.body, partner_certificates=[OURS_NEW.certificate])
    assert gone_mdn.report.disposition.text() == "processed/error: decryption-failed"
    assert await taken(rotated) == (2, 2)


# --- 3. the gateway dies while an answer's POST is in flight ---------------------------------


async def test_an_answer_in_flight_when_the_gateway_dies_is_sent_again_as_the_same_message(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The lease is the send timeout alone: the next gateway takes the row over 5 s later.
    monkeypatch.setattr(serve_module, "LEASE_MARGIN", 0.0)
    database = await create_database()
    try:
        async with recording_receiver(VANA) as server:
            server.hang = True
            files = write_files(tmp_path, database,
                                settings=as2_gateway(send_timeout_seconds=5),
                                partner_as2={"van-a": VANA.settings(tmp_path, url=server.url)})
            first = await start_gateway(files)
            try:
                response = await send(url(first), VANA.message(cusdec(sender="VANA"))[0])
                assert disposition(response) == "processed"
                await server.wait(1, "requests")  # our POST of the CONTRL hangs from now on
            finally:
                # Dies abruptly: no drain, no settling of the POST in flight.
                assert first.task is not None
                first.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await first.task
            (row,) = await first.fetch("SELECT dispatched_at FROM outbox WHERE channel = 'as2'")
            assert row["dispatched_at"] is None  # not confirmed, so not done
            server.hang = False  # the partner's server answers from now on
            second = await start_gateway(files)
            try:
                await server.wait(1)  # read and answered with a processed MDN
                (row,) = await dispatched(second, 1)
                await second.settled()
                ids = [r.message_id for r in server.requests]
                assert len(ids) == 2 and ids[0] == ids[1], ids  # the same message again
                assert len(server.received) == 1
                sent = await second.fetch("SELECT message_id, disposition, mic_matched"
                                          " FROM as2_sent")
                assert [(r["message_id"], r["disposition"], r["mic_matched"])
                        for r in sent] == [(ids[0], "processed", True)]
                assert await count(second, "events WHERE kind = 'as2_sent'") == 1
                assert await count(second, "outbox WHERE channel = 'as2'") == 1
                assert await taken(second) == (1, 1)
            finally:
                await second.stop()
                await delete_topology(files, DEMO_AGENCIES)
    finally:
        await drop_database(database)


# --- 4. bombs over HTTP ----------------------------------------------------------------------

#: The partner's limit in these tests: a bomb must stop near it, not at 64 MiB.
BOMB_LIMIT = 1024 * 1024


def zlib_bomb_message() -> HttpMessage:
    """Signed (valid) over a compressed layer that inflates to 256 MiB."""
    content_type, body = signed_bomb(VANA, 256 * 1024 * 1024)
    assert len(body) < BOMB_LIMIT
    return with_body(VANA.message(b"x", encryption=None)[0], content_type, body)


def nested_message(depth: int, reference: str = "NEST1") -> HttpMessage:
    """VANA's signed CUSDEC in a real envelope to us whose encryptedContent is BER nested
    ``depth`` levels deep."""
    signed, _ = VANA.message(cusdec(sender="VANA", control_reference=reference),
                             encryption=None)
    content_type = dict(signed.headers)["Content-Type"]
    inner = f"Content-Type: {content_type}\r\n\r\n".encode() + signed.body
    body = nested_envelope(inner, gateway_certificate(), depth)
    assert len(body) < BOMB_LIMIT
    return with_body(signed, 'application/pkcs7-mime; smime-type=enveloped-data; '
                             'name="smime.p7m"', body)


def nesting_bomb_message() -> HttpMessage:
    return nested_message(100_000)


def many_parts_message() -> HttpMessage:
    content_type, body = many_parts(VANA, entity(cusdec(sender="VANA"), "application/EDIFACT"),
                                    5000)
    assert len(body) < BOMB_LIMIT
    return with_body(VANA.message(b"x", encryption=None)[0], content_type, body)


@pytest.mark.parametrize(("build", "expected"), [
    (zlib_bomb_message, "processed/error: decompression-failed"),
    (nesting_bomb_message, "processed/error: decryption-failed"),
    (many_parts_message, "processed/error: unexpected-processing-error"),
], ids=["zlib-bomb", "ber-nesting-bomb", "5000-parts"])
async def test_a_bomb_gets_a_negative_mdn_and_the_next_message_is_taken(
        tmp_path: Path, build: Callable[[], HttpMessage], expected: str) -> None:
    async for gateway in gateway_fixture(tmp_path, settings=as2_gateway(), partner_as2={
            "van-a": VANA.settings(tmp_path, max_bytes=BOMB_LIMIT)}):
        response = await send(url(gateway), build())
        assert disposition(response) == expected  # an MDN: not a 500, not a hang
        assert await taken(gateway) == (0, 0)  # nothing kept
        await still_serves(gateway)
        assert await taken(gateway) == (1, 1)


async def test_the_same_envelope_nested_a_few_levels_is_valid_ber_and_taken(
        tmp_path: Path) -> None:
    """The nesting bomb's control: the construction itself is valid BER (streaming CMS
    writers segment their OCTET STRINGs), so the bomb above is refused for its depth."""
    async for gateway in gateway_fixture(tmp_path, settings=as2_gateway(), partner_as2={
            "van-a": VANA.settings(tmp_path, max_bytes=BOMB_LIMIT)}):
        assert disposition(await send(url(gateway), nested_message(5))) == "processed"
        assert await taken(gateway) == (1, 1)


# --- 5. Expect: 100-continue ------------------------------------------------------------------


@pytest.fixture
async def limited(tmp_path: Path) -> AsyncIterator[Gateway]:
    async for gateway in gateway_fixture(tmp_path, settings=as2_gateway(), partner_as2={
            "van-a": VANA.settings(tmp_path, max_bytes=4096)}):
        yield gateway


port = as2_port


async def test_expect_continue_over_the_limit_is_a_413_before_the_body_is_sent(
        limited: Gateway) -> None:
    message, _ = VANA.message(cusdec(sender="VANA"), encryption=None)
    exchange = await post_expecting_continue(port(limited), list(message.headers),
                                             b"x" * 100_000)
    assert (exchange.first, exchange.body_sent, exchange.status) == (413, False, 413)
    assert b"4096" in exchange.body
    assert await taken(limited) == (0, 0)


async def test_expect_continue_under_the_limit_is_taken(limited: Gateway) -> None:
    message, _ = VANA.message(cusdec(sender="VANA"), encryption=None)
    assert len(message.body) < 4096
    exchange = await post_expecting_continue(port(limited), list(message.headers),
                                             message.body)
    assert (exchange.first, exchange.body_sent, exchange.status) == (100, True, 200)
    assert b"processed" in exchange.body and b"processed/error" not in exchange.body
    assert await taken(limited) == (1, 1)
