"""An AS2 partner made of the OpenSSL and curl command lines only (RFC 4130): its key and
certificate made by ``openssl req``/``openssl x509`` under the tests' demo CA, its messages
signed and encrypted by ``openssl cms``, POSTed by ``curl``, and the gateway's MDN verified
by ``openssl cms -verify`` and read with the standard library's email parser.  No gateway
code builds or reads anything here: what passes is what an independent peer does.

The commands run with asyncio subprocesses: the gateway under test answers in the same event
loop, so a blocking ``subprocess.run`` while it must answer would deadlock."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import hashlib
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

#: The certificate extensions of a partner's signing and encryption certificate.
PEER_EXTENSIONS = ("basicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature,keyEncipherment\n")


def missing_tools() -> str | None:
    """Why these tests cannot run here, or None."""
    missing = [tool for tool in ("openssl", "curl") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not on PATH: the independent AS2 peer needs both"
    return None


@dataclass(frozen=True)
class PeerFiles:
    """One partner's PEM files, made by openssl."""

    certificate: Path
    key: Path


def make_peer(folder: Path, name: str, ca_certificate: Path, ca_key: Path) -> PeerFiles:
    """An RSA-2048 key and a one-year certificate for ``name`` issued by the CA, by openssl.
    Synchronous: made once per module, before any gateway runs."""
    key, request = folder / f"{name}.key", folder / f"{name}.csr"
    certificate, extensions = folder / f"{name}.crt", folder / f"{name}.ext"
    extensions.write_text(PEER_EXTENSIONS)
    for command in (
            ["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
             "-subj", f"/CN={name}", "-out", str(request)],
            ["openssl", "x509", "-req", "-in", str(request), "-CA", str(ca_certificate),
             "-CAkey", str(ca_key), "-set_serial", str(uuid.uuid4().int >> 64),
             "-days", "365", "-extfile", str(extensions), "-out", str(certificate)]):
        subprocess.run(command, check=True, capture_output=True)
    return PeerFiles(certificate, key)


async def run(*command: str, stdin: bytes | None = None) -> bytes:
    """``command``'s stdout; its stderr in the error when it fails."""
    process = await asyncio.create_subprocess_exec(
        *command, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await process.communicate(stdin)
    if process.returncode != 0:
        raise CommandFailed(command, process.returncode or 0, err)
    return out


class CommandFailed(Exception):
    def __init__(self, command: Sequence[str], status: int, stderr: bytes) -> None:
        super().__init__(f"{' '.join(command)} exited {status}: "
                         f"{stderr.decode('utf-8', 'replace')[:2000]}")
        self.status = status
        self.stderr = stderr


def entity(payload: bytes, filename: str) -> bytes:
    """The payload's MIME entity (RFC 4130 section 5.2), headers in CRLFs."""
    return (b"Content-Type: application/EDIFACT\r\n"
            b"Content-Disposition: attachment; filename=\"" + filename.encode() + b"\"\r\n"
            b"\r\n" + payload)


async def sign(work: Path, content: bytes, signer: PeerFiles, digest: str) -> bytes:
    """``openssl cms -sign``'s S/MIME multipart/signed over ``content`` (detached, binary:
    the bytes are signed as given), its own headers included."""
    source = _write(work, "to-sign", content)
    return await run("openssl", "cms", "-sign", "-in", str(source), "-signer",
                     str(signer.certificate), "-inkey", str(signer.key), "-md", digest,
                     "-binary", "-crlfeol")


async def encrypt(work: Path, content: bytes, recipient: Path, cipher: str,
                  *options: str, der: bool = True) -> bytes:
    """``openssl cms -encrypt`` of ``content`` (a MIME entity with its headers) to
    ``recipient``: DER (the binary body AS2 sends) or openssl's own S/MIME, headers and
    base64."""
    source = _write(work, "to-encrypt", content)
    return await run("openssl", "cms", "-encrypt", "-in", str(source), "-binary", cipher,
                     "-recip", str(recipient), *options,
                     *(("-outform", "DER") if der else ("-crlfeol",)))


def split(message: bytes) -> tuple[list[tuple[str, str]], bytes]:
    """A MIME entity's headers (unfolded) and body, to send as HTTP headers and body."""
    head, _, body = message.partition(b"\r\n\r\n")
    headers: list[tuple[str, str]] = []
    for line in head.decode("ascii").split("\r\n"):
        if line[:1] in (" ", "\t") and headers:
            headers[-1] = (headers[-1][0], headers[-1][1] + " " + line.strip())
        else:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return headers, body


@dataclass(frozen=True)
class Answer:
    status: int
    #: Lower-cased names.
    headers: dict[str, str]
    body: bytes


async def post(work: Path, url: str, headers: Sequence[tuple[str, str]],
               body: bytes) -> Answer:
    """``curl --data-binary`` of ``body`` with ``headers``; the response kept as curl got
    it (headers with -D, body with -o)."""
    sent = _write(work, "request.bin", body)
    dump, out = work / "response-headers.txt", work / "response.bin"
    arguments = ["curl", "-sS", "--data-binary", f"@{sent}", "-D", str(dump), "-o", str(out),
                 "-w", "%{http_code}"]
    for name, value in headers:
        arguments += ["-H", f"{name}: {value}"]
    status = int(await run(*arguments, url))
    # the last header block: curl also dumps a "100 Continue" when one came
    block = dump.read_bytes().decode("latin-1").strip().split("\r\n\r\n")[-1]
    answer: dict[str, str] = {}
    for line in block.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        answer[name.strip().lower()] = value.strip()
    return Answer(status, answer, out.read_bytes())


async def verify_mdn(work: Path, answer: Answer, ca_certificate: Path) -> bytes:
    """``openssl cms -verify`` of a signed MDN against the CA; the signed content (the
    multipart/report entity) when it verifies, CommandFailed when it does not."""
    mdn = _write(work, "mdn.eml", b"Content-Type: " + answer.headers["content-type"].encode()
                 + b"\r\n\r\n" + answer.body)
    return await run("openssl", "cms", "-verify", "-CAfile", str(ca_certificate),
                     "-in", str(mdn))


@dataclass(frozen=True)
class Report:
    """The fields of an MDN's message/disposition-notification part (RFC 3798 section 3)."""

    disposition: str
    mic: str | None
    original_message_id: str | None
    text: str


def read_report(content: bytes) -> Report:
    """The disposition of a multipart/report, read by the standard library's email parser."""
    message = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message.get_content_type() == "multipart/report", message.get_content_type()
    fields: EmailMessage | None = None
    text = ""
    for part in message.iter_parts():
        assert isinstance(part, EmailMessage)
        if part.get_content_type() == "message/disposition-notification":
            raw = part.get_payload(decode=True)
            if not isinstance(raw, bytes):  # the parser may already have read it as headers
                raw = part.as_bytes().partition(b"\n\n")[2]
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            fields = parsed
        elif part.get_content_type() == "text/plain" and not text:
            text = part.get_content()
    assert fields is not None, "no message/disposition-notification part"
    disposition = str(fields["Disposition"])
    mic = fields["Received-Content-MIC"]
    original = fields["Original-Message-ID"]
    return Report(" ".join(disposition.split()), None if mic is None else str(mic).strip(),
                  None if original is None else str(original).strip(), text)


def mic(signed_content: bytes, digest: str) -> str:
    """RFC 4130 section 7.3.1: the base64 digest of the signed entity, headers included,
    then the algorithm (``sha-256``...)."""
    value = base64.b64encode(hashlib.new(digest, signed_content).digest()).decode()
    return f"{value}, {digest.replace('sha', 'sha-')}"


def as2_headers(as2_from: str, content_type: str, digest: str,
                message_id: str | None = None) -> list[tuple[str, str]]:
    """What a partner puts on its POST (RFC 4130 sections 6, 7.3), a signed MDN asked for
    with ``digest`` as its MIC algorithm."""
    micalg = digest.replace("sha", "sha-")
    return [("AS2-Version", "1.2"), ("AS2-From", as2_from), ("AS2-To", "SWGATEWAY"),
            ("Message-ID", message_id or f"<{uuid.uuid4().hex}@openssl.{as2_from}>"),
            ("Subject", "openssl peer"), ("MIME-Version", "1.0"),
            ("Disposition-Notification-To", "as2@vana.example"),
            ("Disposition-Notification-Options",
             f"signed-receipt-protocol=optional, pkcs7-signature; "
             f"signed-receipt-micalg=optional, {micalg}"),
            ("Content-Type", content_type)]


def _write(work: Path, name: str, data: bytes) -> Path:
    path = work / name
    path.write_bytes(data)
    return path
