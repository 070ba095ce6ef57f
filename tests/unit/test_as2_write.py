"""security.as2_write: every layer combination build_message writes reads back with read_as2
(the partner's view) to the same payload, filename, layers and MIC; build_mdn reads back with
read_mdn; the openssl binary verifies our multipart/signed messages and MDNs and decrypts our
enveloped ones; hostile values never make a header span lines."""

from __future__ import annotations

import base64
import datetime as dt
import email.header
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import ConfigError
from gateway.security.as2 import read_as2
from gateway.security.as2_write import (
    HttpMessage,
    ReceiptRequest,
    build_mdn,
    build_message,
)
from gateway.security.envelope_write import CIPHERS
from gateway.security.pki import create_ca, issue_signing_certificate
from gateway.security.signing import SigningKey
from gateway.wire.as2.mic import Mic, compute_mic
from gateway.wire.as2.mime import parse_entity, split_multipart
from tests.support.as2_write import (
    PARTNER,
    PARTNER_NEXT,
    US,
    OnDisk,
    assert_single_line,
    header,
    partner_reads,
    partner_reads_mdn,
    signing_key,
    smime_file,
)
from tests.support.cms import openssl

EDI = b"UNA:+.? 'UNB+UNOC:3+SWGATEWAY+DEMOVAN+261203:1326+42'\nUNZ+0+42'\r\n\x00\xff"
#: A payload in canonical form (CRLFs only): what openssl's S/MIME reader passes on intact.
CRLF_EDI = b"UNA:+.? 'UNB+UNOC:3+SWGATEWAY+DEMOVAN+261203:1326+42'\r\nUNZ+0+42'\r\n"
NOW = dt.datetime(2026, 12, 3, 13, 26, 5, tzinfo=dt.UTC)


def message(payload: bytes = EDI, *, signed: bool = True, encryption: str | None = None,
            compress: bool = False, **options: object) -> tuple[HttpMessage, Mic]:
    arguments: dict[str, object] = {
        "filename": "order-42.edi", "content_type": "application/edifact",
        "as2_from": "SWGATEWAY", "as2_to": "DEMOVAN", "message_id": "42.1@swgateway",
        "subject": "EDI order 42", "signer": signing_key() if signed else None,
        "digest": "sha256", "recipients": [PARTNER.certificate], "encryption": encryption,
        "compress": compress, "now": NOW}
    arguments.update(options)
    return build_message(payload, **arguments)  # type: ignore[arg-type]


def mdn(**options: object) -> HttpMessage:
    arguments: dict[str, object] = {
        "original_message_id": "<42.1@demovan>", "original_recipient": "SWGATEWAY",
        "as2_from": "SWGATEWAY", "as2_to": "DEMOVAN", "message_id": "mdn-42@swgateway",
        "disposition": "processed", "mic": compute_mic(EDI, "sha256"),
        "text": "The message was received.", "signer": signing_key(), "micalg": "sha256",
        "now": NOW}
    arguments.update(options)
    return build_mdn(**arguments)  # type: ignore[arg-type]


# -- round trips through read_as2 ------------------------------------------------------------

@pytest.mark.parametrize("encryption", [None, *sorted(CIPHERS)])
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("compress", [False, True])
def test_every_layer_combination_reads_back_to_the_payload_and_the_mic(
        encryption: str | None, signed: bool, compress: bool) -> None:
    built, mic = message(signed=signed, encryption=encryption, compress=compress)
    read = partner_reads(built)
    assert read.payload == EDI
    assert read.filename == "order-42.edi"
    assert read.content_type == "application/edifact"
    assert (read.signed, read.encrypted, read.compressed) == (
        signed, encryption is not None, compress)
    assert read.encryption == encryption
    assert read.signer == (US.certificate if signed else None)
    assert read.mic == mic
    assert read.options.signed_receipt
    assert_single_line(built)


def test_the_mic_covers_what_rfc_4130_section_7_3_1_says() -> None:
    """Signed: the signed entity; encrypted only: the decrypted entity; neither: the body."""
    signed, signed_mic = message(signed=True)
    top = parse_entity(f"Content-Type: {header(signed, 'Content-Type')}\r\n\r\n".encode()
                       + signed.body)
    first = split_multipart(top.body, top.content_type.get("boundary"))[0]
    assert signed_mic == compute_mic(first, "sha-256")
    assert first.endswith(b"\r\n\r\n" + EDI)

    plain, plain_mic = message(signed=False)
    assert plain.body == EDI
    assert plain_mic.matches(compute_mic(EDI, "sha256"))

    encrypted, encrypted_mic = message(signed=False, encryption="aes128-cbc")
    entity = (b"Content-Type: application/edifact\r\nContent-Transfer-Encoding: binary\r\n"
              b'Content-Disposition: attachment; filename="order-42.edi"\r\n\r\n' + EDI)
    assert encrypted_mic == compute_mic(entity, "sha-256")
    assert partner_reads(encrypted).mic == encrypted_mic


def test_a_rotating_partner_reads_with_either_certificate() -> None:
    built, mic = message(encryption="aes256-cbc",
                         recipients=[PARTNER.certificate, PARTNER_NEXT.certificate])
    for partner in (PARTNER, PARTNER_NEXT):
        read = partner_reads(built, partner)
        assert (read.payload, read.mic) == (EDI, mic)


@pytest.mark.parametrize(("digest", "micalg"), [("sha224", "sha-224"), ("sha384", "sha-384"),
                                                ("SHA-512", "sha-512")])
def test_the_signing_digest_is_named_in_micalg(digest: str, micalg: str) -> None:
    built, _ = message(digest=digest)
    content_type = header(built, "Content-Type") or ""
    assert f"micalg={micalg};" in content_type
    read = partner_reads(built)
    assert read.verified is not None
    assert read.verified.signer.digest_algorithm == micalg.replace("-", "")


def test_an_ec_signer_reads_back() -> None:
    ca = create_ca("EC CA")
    ec = issue_signing_certificate(ca, "EC gateway")
    built, mic = message(signer=SigningKey(ec.certificate, ec.private_key))
    read = read_as2(dict(built.headers), built.body, keys=[],
                    partner_certificates=[ec.certificate], max_bytes=1 << 20)
    assert (read.payload, read.mic) == (EDI, mic)


# -- HTTP headers ----------------------------------------------------------------------------

def test_the_http_headers_of_a_signed_encrypted_message() -> None:
    built, _ = message(encryption="aes256-cbc")
    names = [name for name, _ in built.headers]
    assert names == ["AS2-Version", "AS2-From", "AS2-To", "Message-ID", "Date",
                     "MIME-Version", "Subject", "Disposition-Notification-To",
                     "Disposition-Notification-Options", "Content-Type",
                     "Content-Transfer-Encoding", "Content-Disposition"]
    assert dict(built.headers) == {
        "AS2-Version": "1.2", "AS2-From": "SWGATEWAY", "AS2-To": "DEMOVAN",
        "Message-ID": "<42.1@swgateway>", "Date": "Thu, 03 Dec 2026 13:26:05 GMT",
        "MIME-Version": "1.0", "Subject": "EDI order 42",
        "Disposition-Notification-To": "as2@gateway",
        "Disposition-Notification-Options": (
            "signed-receipt-protocol=optional, pkcs7-signature; "
            "signed-receipt-micalg=optional, sha-256"),
        "Content-Type": "application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m",
        "Content-Transfer-Encoding": "binary",
        "Content-Disposition": 'attachment; filename="smime.p7m"'}
    assert built.body[0] == 0x30  # DER, not base64


def test_receipt_options_follow_the_request() -> None:
    asynchronous, mic = message(receipt=ReceiptRequest(
        micalg="sha384", async_url="https://swgateway.example/as2/mdn", to="mdn@swgateway"))
    assert header(asynchronous, "Receipt-Delivery-Option") == (
        "https://swgateway.example/as2/mdn")
    assert header(asynchronous, "Disposition-Notification-To") == "mdn@swgateway"
    assert (header(asynchronous, "Disposition-Notification-Options") or "").endswith(
        "signed-receipt-micalg=optional, sha-384")
    assert partner_reads(asynchronous).mic == mic
    assert mic.algorithm == "sha-384"

    sha1, sha1_mic = message(receipt=ReceiptRequest(micalg="sha1"))
    assert partner_reads(sha1).mic == sha1_mic
    assert sha1_mic.algorithm == "sha-1"

    unsigned, unsigned_mic = message(receipt=ReceiptRequest(signed=False))
    assert header(unsigned, "Disposition-Notification-Options") is None
    assert header(unsigned, "Disposition-Notification-To") == "as2@gateway"
    assert partner_reads(unsigned).mic == unsigned_mic

    none, _ = message(receipt=None)
    names = {name for name, _ in none.headers}
    assert not names & {"Disposition-Notification-To", "Disposition-Notification-Options",
                        "Receipt-Delivery-Option"}


def test_as2_names_with_spaces_are_quoted() -> None:
    built, _ = message(as2_from='Swiss "Gateway"', as2_to="DEMO VAN")
    assert header(built, "AS2-From") == '"Swiss \\"Gateway\\""'
    assert header(built, "AS2-To") == '"DEMO VAN"'


@pytest.mark.parametrize("field", ["as2_from", "as2_to", "message_id", "content_type"])
@pytest.mark.parametrize("value", ["A\r\nX-Evil: 1", "A\nB", "A\x00", "Zürich"])
def test_our_own_values_with_control_characters_are_refused(field: str, value: str) -> None:
    options: dict[str, Any] = {field: value}
    with pytest.raises(ConfigError):
        message(**options)


def test_an_as2_name_over_128_characters_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"1 to 128"):
        message(as2_to="A" * 129)


def test_a_receipt_address_with_a_line_break_is_refused() -> None:
    with pytest.raises(ConfigError):
        message(receipt=ReceiptRequest(async_url="https://x\r\nX-Evil: 1"))


def test_a_filename_cannot_add_a_header_and_is_read_back_escaped() -> None:
    built, _ = message(filename='a"b\\c\r\nX-Evil: 1.edi', signed=False)
    assert_single_line(built)
    assert header(built, "X-Evil") is None
    assert partner_reads(built).filename == 'a"b\\cX-Evil: 1.edi'


def test_a_filename_that_is_not_ascii_goes_as_filename_star_too() -> None:
    built, _ = message(filename="Bestellung Zürich.edi", signed=False)
    assert header(built, "Content-Disposition") == (
        "attachment; filename=\"Bestellung Z_rich.edi\"; "
        "filename*=UTF-8''Bestellung%20Z%C3%BCrich.edi")
    assert partner_reads(built).filename == "Bestellung Z_rich.edi"


def test_a_subject_that_is_not_ascii_is_encoded_on_one_line() -> None:
    subject = "Bestellung für Zürich " * 80
    built, _ = message(subject=subject + "\r\nX-Evil: 1")
    assert_single_line(built)
    value = header(built, "Subject") or ""
    decoded = "".join(part.decode(charset or "ascii") if isinstance(part, bytes) else part
                      for part, charset in email.header.decode_header(value))
    assert subject.startswith(decoded[:-10])
    assert len(decoded) > 300


@pytest.mark.parametrize("digest", ["md5", "sha1", "sha3-256"])
def test_an_unknown_or_sha1_signing_digest_is_refused(digest: str) -> None:
    with pytest.raises(ConfigError, match=digest):
        message(digest=digest)


def test_a_receipt_micalg_we_cannot_compute_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"md5"):
        message(receipt=ReceiptRequest(micalg="md5"))


# -- MDNs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("disposition", [
    "processed", "processed/error: decryption-failed",
    "processed/warning: duplicate-document", "failed/failure: unsupported format"])
def test_an_mdn_reads_back_with_its_disposition_and_mic(signed: bool,
                                                        disposition: str) -> None:
    mic = compute_mic(EDI, "sha256")
    built = mdn(disposition=disposition, signer=signing_key() if signed else None, mic=mic)
    read = partner_reads_mdn(built)
    assert read.signed == signed
    assert read.signer == (US.certificate if signed else None)
    assert read.message_id == "<mdn-42@swgateway>"
    assert read.report.disposition.text() == disposition.lower()
    assert read.report.disposition.mode == "automatic-action/mdn-sent-automatically"
    assert read.report.mic == mic
    assert read.report.original_message_id == "<42.1@demovan>"
    assert read.report.original_recipient == "rfc822; SWGATEWAY"
    assert read.report.final_recipient == "rfc822; SWGATEWAY"
    assert read.report.reporting_ua == "Single Window Gateway"
    assert read.text == "The message was received.\r\n"
    assert_single_line(built)


def test_an_error_mdn_may_carry_no_mic_and_no_original_recipient() -> None:
    read = partner_reads_mdn(mdn(mic=None, original_recipient=None,
                                 disposition="processed/error: authentication-failed"))
    assert read.report.mic is None
    assert read.report.original_recipient is None
    assert not read.report.disposition.ok


@pytest.mark.parametrize(("micalg", "expected"), [
    ("sha-384", "sha-384"), ("sha512", "sha-512"), ("sha224", "sha-224"),
    # SHA-1 cannot be signed with (cryptography refuses it), md5 is unknown: SHA-256, said so.
    ("sha1", "sha-256"), ("md5", "sha-256")])
def test_a_signed_mdn_is_signed_with_the_micalg_asked_for(micalg: str, expected: str) -> None:
    built = mdn(micalg=micalg)
    assert f"micalg={expected};" in (header(built, "Content-Type") or "")
    read = partner_reads_mdn(built)
    assert read.verified is not None
    assert read.verified.signer.digest_algorithm == expected.replace("-", "")


def test_the_mdn_http_headers() -> None:
    built = mdn(signer=None)
    assert [name for name, _ in built.headers] == [
        "AS2-Version", "AS2-From", "AS2-To", "Message-ID", "Date", "MIME-Version",
        "Content-Type"]
    assert (header(built, "Content-Type") or "").startswith(
        "multipart/report; report-type=disposition-notification; boundary=")


HOSTILE = [
    "<1@x>\r\nDisposition: automatic-action/MDN-sent-automatically; failed/failure: x",
    "<1@x>\nX-Evil: 1", "<1@x>\r", "<1\x00@x>", "<1@x>\x0b\x0c\x1b[2J",
    "<" + "A" * 100_000 + "@x>", "<\udcff@x>", "<é@x>", "",
]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_values_never_make_an_mdn_header_or_field_span_lines(hostile: str) -> None:
    built = mdn(original_message_id=hostile, as2_to=hostile, original_recipient=hostile,
                message_id=hostile, reporting_ua=hostile, text=hostile)
    assert_single_line(built)
    assert header(built, "X-Evil") is None
    read = partner_reads_mdn(built)
    assert read.report.disposition.text() == "processed"
    original = read.report.original_message_id or ""
    assert len("Original-Message-ID: " + original) <= 998
    assert "\r" not in original and "\n" not in original and "\x00" not in original
    if len(hostile) < 200 and hostile.isascii() and hostile.isprintable():
        assert original == hostile


def test_a_hostile_disposition_or_mic_cannot_add_a_field() -> None:
    built = mdn(signer=None,
                disposition="processed\r\nDisposition: automatic-action/x; failed/failure: y",
                mic=Mic("abc\r\nX-Evil: 1", "sha256"))
    top = parse_entity(f"Content-Type: {header(built, 'Content-Type')}\r\n\r\n".encode()
                       + built.body)
    notification = split_multipart(top.body, top.content_type.get("boundary"))[1]
    lines = notification.split(b"\r\n")
    assert sum(line.startswith(b"Disposition:") for line in lines) == 1
    assert not any(line.startswith(b"X-Evil") for line in lines)


# -- the openssl binary as the partner -------------------------------------------------------

def _openssl_verifies(path: Path, files: OnDisk) -> str:
    done = openssl("cms", "-verify", "-CAfile", files.ca, "-in", path)
    assert done.returncode == 0, done.stderr
    assert "Verification successful" in done.stderr
    return done.stdout


def test_openssl_verifies_a_signed_mdn(tmp_path: Path) -> None:
    files = OnDisk.write(tmp_path)
    built = mdn(signer=signing_key())
    out = _openssl_verifies(smime_file(tmp_path / "mdn.eml", built), files)
    assert "Disposition: automatic-action/MDN-sent-automatically; processed" in out


@pytest.mark.parametrize("compress", [False, True])
def test_openssl_verifies_a_signed_message(tmp_path: Path, compress: bool) -> None:
    """S/MIME input: OpenSSL's MIME reader turns bare LFs into CRLFs, so the payload here is
    in CRLFs; a binary payload is checked below with the detached signature."""
    files = OnDisk.write(tmp_path)
    built, _ = message(CRLF_EDI, compress=compress)
    out = _openssl_verifies(smime_file(tmp_path / "message.eml", built), files)
    assert ("UNZ+0+42'" in out) != compress


def test_openssl_verifies_the_detached_signature_over_a_binary_entity(tmp_path: Path) -> None:
    files = OnDisk.write(tmp_path)
    built, mic = message(EDI)
    top = parse_entity(f"Content-Type: {header(built, 'Content-Type')}\r\n\r\n".encode()
                       + built.body)
    entity, signature = split_multipart(top.body, top.content_type.get("boundary"))
    (tmp_path / "entity").write_bytes(entity)
    (tmp_path / "entity.p7s").write_bytes(base64.b64decode(
        b"".join(parse_entity(signature).body.split())))
    done = openssl("cms", "-verify", "-binary", "-inform", "DER", "-in",
                   tmp_path / "entity.p7s", "-content", tmp_path / "entity",
                   "-CAfile", files.ca, "-out", "/dev/null")
    assert done.returncode == 0, done.stderr
    assert mic == compute_mic(entity, "sha-256")


@pytest.mark.parametrize("encryption", sorted(CIPHERS))
def test_openssl_decrypts_a_signed_encrypted_message(tmp_path: Path,
                                                      encryption: str) -> None:
    files = OnDisk.write(tmp_path)
    built, mic = message(EDI, encryption=encryption)
    (tmp_path / "message.p7m").write_bytes(built.body)
    out = tmp_path / "inner"
    done = openssl("cms", "-decrypt", "-binary", "-inform", "DER",
                   "-in", tmp_path / "message.p7m", "-recip", files.certificate,
                   "-inkey", files.key, "-out", out)
    assert done.returncode == 0, done.stderr
    inner = parse_entity(out.read_bytes())
    assert inner.content_type.value == "multipart/signed"
    first = split_multipart(inner.body, inner.content_type.get("boundary"))[0]
    assert mic == compute_mic(first, "sha-256")
