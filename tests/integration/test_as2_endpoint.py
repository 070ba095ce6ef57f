"""AS2 into the gateway over real HTTP (RFC 4130): a signed, encrypted CUSDEC is committed,
answered with a signed MDN carrying its MIC, and routed like an SFTP upload; a repeated
Message-ID gets the same MDN and routes nothing; what is wrong gets its negative MDN and
leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import os
import signal
import ssl
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.app import as2_unwrap
from gateway.security.as2 import read_as2
from gateway.security.as2_write import ReceiptRequest
from tests.support.as2_peer import (
    Peer,
    Response,
    as2_url,
    free_port,
    new_peer,
    receiver,
    send,
)
from tests.support.edifact import cusdec
from tests.support.harness import Gateway, demo_pki, gateway_fixture

VANA = new_peer("VANA")
STRANGER = new_peer("STRANGER")


def as2_options(root: Path, unwrap_processes: int | None = None,
                **partner: object) -> dict[str, Any]:
    server: dict[str, object] = {"id": "SWGATEWAY", "port": 0}
    if unwrap_processes is not None:
        server["unwrap_processes"] = unwrap_processes
    return {"settings": {"as2": json.dumps(server)},
            "partner_as2": {"van-a": VANA.settings(root, **partner)}}


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async for running in gateway_fixture(tmp_path, **as2_options(tmp_path)):
        yield running


@pytest.fixture
async def threaded(tmp_path: Path) -> AsyncIterator[Gateway]:
    """Unwrapping in the gateway's own threads (unwrap_processes: 0), where a test can hold
    it from inside."""
    async for running in gateway_fixture(tmp_path, **as2_options(tmp_path, 0)):
        yield running


url = as2_url


async def interchanges(gateway: Gateway) -> list[Any]:
    return await gateway.fetch("SELECT id, partner_id, transport, file_name FROM interchanges"
                               " ORDER BY id")


async def test_a_signed_encrypted_cusdec_is_taken_answered_and_routed(
        gateway: Gateway) -> None:
    message, mic = VANA.message(cusdec(sender="VANA"), filename="decl.edi")
    response = await send(url(gateway), message)
    assert response.status == 200
    mdn = response.mdn()
    assert mdn.signed
    assert mdn.report.disposition.text() == "processed"
    assert mdn.report.mic is not None and mdn.report.mic.matches(mic)
    assert mdn.report.original_message_id == dict(message.headers)["Message-ID"]
    (row,) = await interchanges(gateway)
    assert (row["partner_id"], row["transport"], row["file_name"]) == ("van-a", "as2",
                                                                        "decl.edi")
    assert len(await gateway.queue("customs", expect=1)) == 1
    # no url in partners.yaml: the CONTRL waits in its SFTP outbox, as for an upload
    (contrl,) = await gateway.answers("van-a", "decl.edi")
    assert contrl.startswith((b"UNA", b"UNB"))
    history = await gateway.fetch("SELECT kind, detail FROM events WHERE interchange_id = $1"
                                  " AND kind = 'as2_received'", row["id"])
    detail = json.loads(history[0]["detail"])
    assert detail["signed"] and detail["encrypted"] and detail["encryption"] == "aes256-cbc"
    assert detail["mic"] == mic.header()  # the MIC the MDN reported, kept in the history


async def test_a_repeated_message_id_gets_the_first_mdn_and_routes_nothing(
        gateway: Gateway) -> None:
    message, _ = VANA.message(cusdec(sender="VANA"))
    first = await send(url(gateway), message)
    again = await send(url(gateway), message)
    assert again.status == 200 and again.body == first.body
    assert len(await interchanges(gateway)) == 1
    assert len(await gateway.queue("customs", expect=1)) == 1


async def test_the_same_payload_under_a_new_message_id_is_a_duplicate_document(
        gateway: Gateway) -> None:
    payload = cusdec(sender="VANA")
    await send(url(gateway), VANA.message(payload)[0])
    second = await send(url(gateway), VANA.message(payload)[0])
    assert second.mdn().report.disposition.text() == "processed/warning: duplicate-document"
    # kept (nothing accepted is lost), and the pipeline's duplicate check routes it once
    assert len(await interchanges(gateway)) == 2
    assert len(await gateway.queue("customs", expect=1)) == 1


@pytest.mark.parametrize(("case", "disposition"), [
    ("unknown partner", "authentication-failed"),
    ("wrong recipient", "authentication-failed"),
    ("signed by another key", "authentication-failed"),
    ("tampered", "integrity-check-failed"),
    ("encrypted to another key", "decryption-failed"),
    ("unsigned", "insufficient-message-security"),
])
async def test_what_is_wrong_gets_its_negative_mdn_and_leaves_nothing(
        gateway: Gateway, case: str, disposition: str) -> None:
    payload = cusdec(sender="VANA")
    if case == "unknown partner":
        message, _ = STRANGER.message(payload)
    elif case == "wrong recipient":
        message, _ = VANA.message(payload, as2_to="SOMEONEELSE")
    elif case == "signed by another key":
        message, _ = Peer("VANA", STRANGER.issued).message(payload)
    elif case == "tampered":
        message, _ = VANA.message(payload, encryption=None)
        body = message.body.replace(b"UNH+", b"UNH-", 1)
        assert body != message.body
        message = type(message)(message.headers, body)
    elif case == "encrypted to another key":
        from gateway.security.as2_write import build_message

        message, _ = build_message(
            payload, filename="x.edi", content_type="application/EDIFACT", as2_from="VANA",
            as2_to="SWGATEWAY", message_id="<wrong-key@VANA>", subject="x", signer=VANA.key,
            digest="sha256", recipients=(STRANGER.issued.certificate,),
            encryption="aes256-cbc")
    else:
        message, _ = VANA.message(payload, sign=False)
    response = await send(url(gateway), message)
    assert response.status == 200
    mdn = response.mdn()
    assert mdn.signed
    assert mdn.report.disposition.text() == f"processed/error: {disposition}"
    assert await interchanges(gateway) == []
    await gateway.queue("customs", expect=0)


async def test_decryption_failures_cannot_be_told_apart(gateway: Gateway) -> None:
    """RFC 3218: a wrong key and a mangled envelope read the same in the MDN."""
    from gateway.security.as2_write import build_message

    payload = cusdec(sender="VANA")
    wrong_key, _ = build_message(
        payload, filename="x.edi", content_type="application/EDIFACT", as2_from="VANA",
        as2_to="SWGATEWAY", message_id="<a@VANA>", subject="x", signer=VANA.key,
        digest="sha256", recipients=(STRANGER.issued.certificate,), encryption="aes256-cbc")
    good, _ = VANA.message(payload, message_id="<b@VANA>")
    # The RSA-encrypted content key (an OCTET STRING of 256 bytes for the RSA-2048 gateway
    # key) is what RFC 3218's attacks mangle; a mangled CBC ciphertext would decrypt with
    # valid padding about once in 256 tries, and its garbled MIME would be a different error.
    encrypted_key = b"\x04\x82\x01\x00"
    assert good.body.count(encrypted_key) == 1
    at = good.body.index(encrypted_key) + len(encrypted_key) + 100
    mangled = type(good)(good.headers, good.body[:at] + bytes([good.body[at] ^ 0x55])
                         + good.body[at + 1:])
    texts = []
    for message in (wrong_key, mangled):
        mdn = (await send(url(gateway), message)).mdn()
        assert mdn.report.disposition.text() == "processed/error: decryption-failed"
        texts.append(mdn.text)
    assert texts[0] == texts[1]


async def test_a_body_over_the_partners_limit_is_refused_before_it_is_read(
        tmp_path: Path) -> None:
    async for gateway in gateway_fixture(tmp_path, **as2_options(tmp_path, max_bytes=4096)):
        message, _ = VANA.message(cusdec(sender="VANA") + b" " * 8000, encryption=None)
        response = await send(url(gateway), message)
        assert response.status == 413
        assert b"4096" in response.body
        assert await interchanges(gateway) == []


async def test_an_asynchronous_mdn_goes_to_the_url_asked_for(tmp_path: Path) -> None:
    port = free_port()
    allowed = f"http://127.0.0.1:{port}/"
    async with receiver(VANA, port) as taker:
        async for gateway in gateway_fixture(tmp_path, **as2_options(
                tmp_path, receipt_urls=[allowed])):
            message, mic = VANA.message(cusdec(sender="VANA"),
                                        receipt=ReceiptRequest(async_url=taker.url))
            response = await send(url(gateway), message)
            assert response.status == 200 and response.body == b""
            await taker.wait(1, "mdns")
            (mdn,) = taker.mdns
            assert mdn.signed and mdn.report.disposition.text() == "processed"
            assert mdn.report.mic is not None and mdn.report.mic.matches(mic)
            # sent again (it did not see the MDN come): the first MDN, in the response
            again = await send(url(gateway), message)
            assert again.mdn().report.disposition.text() == "processed"
            assert len(await interchanges(gateway)) == 1


async def test_an_asynchronous_mdn_to_a_url_not_the_partners_comes_in_the_response(
        gateway: Gateway) -> None:
    """A signed message cannot make the gateway POST anywhere (no receipt_urls and no url:
    no URL is the partner's)."""
    async with receiver(VANA) as elsewhere:
        message, _ = VANA.message(cusdec(sender="VANA"),
                                  receipt=ReceiptRequest(async_url=elsewhere.url))
        response = await send(url(gateway), message)
        assert response.mdn().report.disposition.text() == "processed"
        await gateway.settled()
        assert elsewhere.mdns == [] and elsewhere.received == []
        assert await gateway.fetch("SELECT 1 FROM outbox WHERE channel = 'as2'") == []


async def test_a_body_well_above_aiohttps_default_limit_is_taken(gateway: Gateway) -> None:
    """aiohttp reads at most 1 MiB by default; a partner's limit is its own (64 MiB here)."""
    payload = cusdec(sender="VANA") + b"\n" * (5 * 1024 * 1024)
    message, mic = VANA.message(payload, filename="big.edi", compress=False)
    assert len(message.body) > 5 * 1024 * 1024
    response = await send(url(gateway), message)
    mdn = response.mdn()
    assert mdn.report.disposition.text() == "processed"
    assert mdn.report.mic is not None and mdn.report.mic.matches(mic)
    (row,) = await gateway.fetch("SELECT octet_length(raw) AS size FROM interchanges")
    assert row["size"] == len(payload)


def tls_pair(folder: Path) -> tuple[Path, Path, Path]:
    """A server certificate for 127.0.0.1 from the tests' demo CA: (certificate, key, CA)."""
    ca_folder = demo_pki()
    ca_certificate = x509.load_pem_x509_certificate((ca_folder / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((ca_folder / "ca.key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_certificate.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    (folder / "tls.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "tls.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return folder / "tls.crt", folder / "tls.key", ca_folder / "ca.crt"


async def test_the_https_listener_takes_messages_too(tmp_path: Path) -> None:
    """Production: AS2 over TLS (RFC 4130 section 4.2), beside the plain listener."""
    certificate, key, ca = tls_pair(tmp_path)
    https = {"host": "127.0.0.1", "port": 0, "certificate": str(certificate),
             "key": str(key)}
    options = as2_options(tmp_path)
    options["settings"] = {"as2": json.dumps({"id": "SWGATEWAY", "port": 0, "https": https})}
    async for gateway in gateway_fixture(tmp_path, **options):
        assert gateway.running is not None and gateway.running.as2_https_port is not None
        message, _ = VANA.message(cusdec(sender="VANA"))
        client = ssl.create_default_context(cafile=str(ca))
        async with aiohttp.ClientSession() as session, session.post(
                f"https://127.0.0.1:{gateway.running.as2_https_port}/as2",
                data=message.body, headers=list(message.headers), ssl=client) as response:
            answer = Response(response.status, dict(response.headers), await response.read())
        assert answer.mdn().report.disposition.text() == "processed"
        assert len(await interchanges(gateway)) == 1


async def test_a_required_mic_algorithm_we_do_not_compute_fails_the_mdn_request(
        gateway: Gateway) -> None:
    """RFC 4130 section 7.5.3: failed/Failure: unsupported MIC-algorithms, nothing kept."""
    message, _ = VANA.message(cusdec(sender="VANA"))
    headers = tuple(
        (name, "signed-receipt-protocol=required, pkcs7-signature; "
               "signed-receipt-micalg=required, md5")
        if name == "Disposition-Notification-Options" else (name, value)
        for name, value in message.headers)
    response = await send(url(gateway), type(message)(headers, message.body))
    mdn = response.mdn()
    assert mdn.signed
    assert mdn.report.disposition.text() == "failed/failure: unsupported mic-algorithms"
    assert await interchanges(gateway) == []


async def test_large_messages_never_hold_back_small_ones(
        threaded: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule 6: large bodies are unwrapped in a lane of their own.  Three large messages whose
    unwrapping hangs (held here) would take every unwrapping thread; a small one is taken
    meanwhile all the same.  (The lane is picked the same way for processes.)"""
    gateway = threaded
    held, entered = threading.Event(), threading.Semaphore(0)
    real = read_as2

    def slow_when_large(headers: Any, body: bytes, **kwargs: Any) -> Any:
        if len(body) > as2_unwrap.LARGE_BODY_BYTES:
            entered.release()
            held.wait(60)
        return real(headers, body, **kwargs)

    monkeypatch.setattr(as2_unwrap, "read_as2", slow_when_large)
    large = [VANA.message(cusdec(sender="VANA", control_reference=f"BIG{n}")
                          + b"\n" * (as2_unwrap.LARGE_BODY_BYTES + 1))[0] for n in range(3)]
    try:
        pending = [asyncio.create_task(send(url(gateway), m)) for m in large]
        assert await asyncio.to_thread(entered.acquire, True, 30)  # one is being unwrapped
        small, _ = VANA.message(cusdec(sender="VANA", control_reference="SMALL1"))
        response = await asyncio.wait_for(send(url(gateway), small), 30)
        assert response.mdn().report.disposition.text() == "processed"
    finally:
        held.set()
    for answered in await asyncio.gather(*pending):
        assert answered.mdn().report.disposition.text() == "processed"
    assert len(await interchanges(gateway)) == 4


def children(parent: int) -> list[tuple[int, bytes]]:
    """(pid, command line) of ``parent``'s living children."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text().rpartition(")")[2].split()
            if entry.name.isdigit() and int(stat[1]) == parent and stat[0] != "Z":
                found.append((int(entry.name), (entry / "cmdline").read_bytes()))
        except (OSError, ValueError, IndexError):
            continue
    return found


def alive(pid: int) -> bool:
    """``pid`` is a process that has not ended (a zombie has)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def unwrapping_processes(gateway: int | None = None) -> list[int]:
    """The processes the multiprocessing forkserver of ``gateway`` (default: this process)
    forked: the gateway's AS2 unwrapping processes (no other part of the gateway uses it)."""
    servers = [pid for pid, cmdline in children(gateway or os.getpid())
               if b"forkserver" in cmdline]
    return [pid for server in servers for pid, _ in children(server)]


async def test_an_unwrapping_process_that_dies_costs_a_503_and_nothing_else(
        gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    """A process killed under the gateway (the OOM killer) breaks its pool: the message that
    finds it broken is answered 503 (ours: the partner sends it again) and nothing of it is
    kept; an alarm names it; a new pool takes the next message, and the resend is taken."""
    killed = unwrapping_processes()
    assert len(killed) == 3  # two for small bodies, one for large ones (started at start-up)
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    message, _ = VANA.message(cusdec(sender="VANA"), message_id="<dies@VANA>")
    await asyncio.sleep(0.5)  # the pool's manager thread sees its processes gone
    first = await send(url(gateway), message)
    assert first.status == 503 and b"send it again" in first.body
    assert await interchanges(gateway) == []
    assert any(r.getMessage() == "as2_unwrap_process_died"
               and getattr(r, "fields", {}).get("code") == "GW-A015" for r in caplog.records)
    again = await send(url(gateway), message)
    assert again.status == 200
    assert again.mdn().report.disposition.text() == "processed"
    assert len(await interchanges(gateway)) == 1
    assert set(unwrapping_processes()).isdisjoint(killed)


async def test_a_refusal_found_in_an_unwrapping_process_keeps_its_reason(
        gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    """What refuses a message in the unwrapping process crosses back whole: its disposition,
    its reason in the MDN, and its cause in the log."""
    good, _ = VANA.message(cusdec(sender="VANA"), message_id="<good@VANA>")
    signed_by_stranger, _ = Peer("VANA", STRANGER.issued).message(
        cusdec(sender="VANA"), message_id="<stranger@VANA>")
    mdn = (await send(url(gateway), signed_by_stranger)).mdn()
    assert mdn.report.disposition.text() == "processed/error: authentication-failed"
    assert "not accepted" in mdn.text and "signature" in mdn.text.lower()
    (refused,) = [getattr(r, "fields", {}) for r in caplog.records
                  if r.getMessage() == "as2_refused"]
    assert refused["disposition"] == "authentication-failed"
    assert refused["cause"] is not None and "UnwrapCause" in refused["cause"]
    assert (await send(url(gateway), good)).status == 200


@contextlib.asynccontextmanager
async def serving(gateway: Gateway) -> AsyncIterator[tuple[asyncio.subprocess.Process,
                                                           list[int]]]:
    """``gateway serve`` with the fixture's files, in a process (and session) of its own,
    once it has started (its three unwrapping processes started and initialised before the
    ``started`` line: Unwrapping.warm): the process and their pids."""
    await gateway.stop()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "-c", str(gateway.files.config_path), "serve",
        stderr=asyncio.subprocess.PIPE, start_new_session=True)
    try:
        assert process.stderr is not None
        async with asyncio.timeout(60):
            while b'"event": "started"' not in await process.stderr.readline():
                assert process.returncode is None
        drain = asyncio.create_task(process.stderr.read())  # its pipe never fills up
        started = unwrapping_processes(process.pid)
        assert len(started) == 3
        yield process, started
        drain.cancel()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def gone(pids: list[int]) -> list[int]:
    """Those of ``pids`` still running after up to 10 s."""
    for _ in range(100):
        left = [pid for pid in pids if alive(pid)]
        if not left:
            break
        await asyncio.sleep(0.1)
    return left


async def test_unwrapping_processes_do_not_outlive_a_killed_gateway(gateway: Gateway) -> None:
    """A SIGKILLed gateway cannot stop its pools: its unwrapping processes leave on their
    own (each holds its job queue's both ends, and would wait for jobs forever)."""
    async with serving(gateway) as (process, started):
        process.kill()
        await process.wait()
        assert await gone(started) == []


async def test_unwrapping_processes_wait_for_the_gateway_to_stop_them(
        gateway: Gateway) -> None:
    """systemd's stop (and Ctrl-C) signal the whole group: the unwrapping processes leave
    it to the gateway, which drains, answers what it holds, then closes them."""
    async with serving(gateway) as (process, started):
        for pid in started:  # what a signal to the whole group does to them
            os.kill(pid, signal.SIGTERM)
            os.kill(pid, signal.SIGINT)
        await asyncio.sleep(1.0)
        assert all(alive(pid) for pid in started)
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 30) == 0
        assert await gone(started) == []
