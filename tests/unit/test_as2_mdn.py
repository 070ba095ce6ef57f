"""security.as2.read_mdn on the recorded Mendelson and IBM Sterling MDNs (signed and unsigned)
and on MDNs built here; the Disposition field in its AS2 forms; hostile MDNs raise only
As2Rejected."""

from __future__ import annotations

import contextlib

import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import (
    As2AuthenticationFailed,
    As2IntegrityCheckFailed,
    As2ProcessingError,
    As2Rejected,
)
from gateway.security.as2 import Mdn, read_mdn
from gateway.security.chain import read_certificates
from gateway.security.cms import read_signed_data
from gateway.security.pki import create_ca, issue_signing_certificate
from gateway.wire.as2.mdn import parse_disposition
from gateway.wire.as2.mic import Mic
from gateway.wire.as2.mime import Entity, Headers, parse_entity, split_multipart
from tests.support.as2 import certificate, request, sign, signed_multipart

CA = create_ca("AS2 test CA", kind="rsa-2048")
PARTNER = issue_signing_certificate(CA, "partner", kind="rsa-2048")
REPORT = (b"Content-Type: multipart/report; report-type=disposition-notification; "
          b'boundary="r"\r\n\r\n'
          b"--r\r\nContent-Type: text/plain\r\n\r\nThe message was received.\r\n"
          b"--r\r\nContent-Type: message/disposition-notification\r\n\r\n"
          b"Reporting-UA: SWGATEWAY\r\n\r\n"
          b"Original-Recipient: rfc822; SWGATEWAY\r\nFinal-Recipient: rfc822; SWGATEWAY\r\n"
          b"Original-Message-ID: <42@demovan>\r\n"
          b"Disposition: automatic-action/MDN-sent-automatically; processed/warning: "
          b"duplicate-document\r\n"
          b"Received-Content-MIC: 7v7F++Fiq4y8wWDbqf5jTvSVLQEnmLgYuZF2kFO6GRQ=, sha-256\r\n"
          b"\r\n--r--\r\n")


def _embedded_certificate(name: str) -> x509.Certificate:
    """The certificate inside a recorded MDN's signature.  Mendelson's 2016 key (CN=mecas2)
    is in no fixture file: pinning the one it sent checks the signature over the report,
    not who made it."""
    headers, body = request(name)
    top = Entity(Headers.of(headers), body, body)
    parts = split_multipart(top.body, top.content_type.get("boundary"))
    signed = read_signed_data(parse_entity(parts[1]).decoded())
    (found,) = read_certificates(signed.certificates)
    return found


def recorded(name: str, pinned: x509.Certificate, *, check_validity: bool = False) -> Mdn:
    headers, body = request(name)
    return read_mdn(headers, body, partner_certificates=[pinned],
                    check_validity=check_validity)


def test_the_signed_mendelson_mdn_parses_and_verifies() -> None:
    pinned = _embedded_certificate("mecas2_signed.mdn")
    assert pinned.subject.rfc4514_string().startswith("CN=mecas2,")
    mdn = recorded("mecas2_signed.mdn", pinned)
    assert mdn.signed and mdn.signer == pinned
    assert mdn.message_id == "<mendelson_opensource_AS2-1483093497174-1@mecas2_pyas2mac>"
    report = mdn.report
    assert report.original_message_id == "<20161230102456.10748.40759@imac.local>"
    assert report.disposition.text() == "processed" and report.disposition.ok
    assert report.mic == Mic("O4bvrm5t2YunRfwvZicNdEUmPaPZ9vUslX8loVLDck0=", "sha-256")
    assert report.reporting_ua == "mendelson opensource AS2"
    assert "AS2 message has been received" in mdn.text


def test_the_sterling_mdn_verifies_with_sha1_against_its_expired_certificate() -> None:
    mdn = recorded("sb2bi_signed.mdn", certificate("cert_sb2bi_public.pem"))
    assert mdn.signed and mdn.verified is not None
    assert mdn.verified.signer.digest_algorithm == "sha1"
    assert mdn.report.disposition.ok
    assert mdn.report.original_message_id == (
        "<151694007918.24690.7052273208458909245@ip-172-31-14-209.ec2.internal>")
    assert mdn.report.mic is not None
    assert mdn.report.mic.matches(Mic("wNh76aEicfBurg/et2wio4zk/2I=", "sha-1"))
    assert "successfully received" in mdn.text or mdn.text == ""


def test_the_sterling_mdn_is_refused_with_the_time_check_on() -> None:
    with pytest.raises(As2AuthenticationFailed, match="valid from"):
        recorded("sb2bi_signed.mdn", certificate("cert_sb2bi_public.pem"),
                 check_validity=True)


def test_a_recorded_mdn_checked_against_another_certificate_is_refused() -> None:
    with pytest.raises(As2AuthenticationFailed, match="not one of the partner's"):
        recorded("sb2bi_signed.mdn", certificate("cert_mecas2_public.pem"))


def test_a_changed_sterling_mdn_is_authentication_failed() -> None:
    """Sterling signs without signed attributes (RFC 5652 section 5.4: the signature is over
    the content), so a changed report cannot be told from a wrong signer."""
    headers, body = request("sb2bi_signed.mdn")
    changed = body.replace(b"wNh76aEicfBurg", b"xNh76aEicfBurg")
    assert changed != body
    with pytest.raises(As2AuthenticationFailed, match="does not verify"):
        read_mdn(headers, changed, partner_certificates=[certificate("cert_sb2bi_public.pem")],
                 check_validity=False)


def test_a_changed_mendelson_mdn_is_integrity_check_failed() -> None:
    """Mendelson signs a message-digest attribute: a changed report is told apart."""
    headers, body = request("mecas2_signed.mdn")
    changed = body.replace(b"O4bvrm5t2YunRfwvZicNdEUmPaPZ9vUslX8loVLDck0=",
                           b"P4bvrm5t2YunRfwvZicNdEUmPaPZ9vUslX8loVLDck0=")
    assert changed != body
    with pytest.raises(As2IntegrityCheckFailed) as caught:
        read_mdn(headers, changed,
                 partner_certificates=[_embedded_certificate("mecas2_signed.mdn")],
                 check_validity=False)
    assert caught.value.disposition == "integrity-check-failed"


def test_the_unsigned_mendelson_mdn_reports_authentication_failed() -> None:
    mdn = recorded("mecas2_unsigned.mdn", certificate("cert_mecas2_public.pem"))
    assert not mdn.signed and mdn.signer is None and mdn.verified is None
    disposition = mdn.report.disposition
    assert (disposition.kind, disposition.modifier, disposition.detail) == (
        "processed", "error", "authentication-failed")
    assert not disposition.ok and mdn.report.mic is None
    assert mdn.report.original_message_id == "<20161230102316.10728.85252@imac.local>"
    assert "Verification failed" in mdn.text


def test_an_mdn_signed_here_verifies_and_reads_a_warning() -> None:
    content_type, body = signed_multipart(REPORT, sign(REPORT, PARTNER))
    mdn = read_mdn({"Content-Type": content_type, "Message-ID": "<mdn-1@partner>"}, body,
                   partner_certificates=[PARTNER.certificate])
    assert mdn.signed and mdn.message_id == "<mdn-1@partner>"
    assert mdn.report.disposition.text() == "processed/warning: duplicate-document"
    assert mdn.report.disposition.ok
    assert mdn.report.final_recipient == "rfc822; SWGATEWAY"


def test_an_unsigned_mdn_from_its_entity_reads_too() -> None:
    top = parse_entity(REPORT)
    mdn = read_mdn(dict(top.headers.fields), top.body, partner_certificates=[])
    assert not mdn.signed and mdn.report.original_message_id == "<42@demovan>"


@pytest.mark.parametrize(("value", "parsed"), [
    ("automatic-action/MDN-sent-automatically; processed", ("processed", None, None)),
    ("Automatic-action/mdn-sent-automatically;processed/Error: integrity-check-failed",
     ("processed", "error", "integrity-check-failed")),
    ("automatic-action/MDN-sent-automatically; failed/Failure: unsupported format",
     ("failed", "failure", "unsupported format")),
    ("automatic-action/MDN-sent-automatically; processed/warning: duplicate-document",
     ("processed", "warning", "duplicate-document")),
])
def test_dispositions_in_their_as2_forms(value: str, parsed: tuple[str, str | None, str | None]
                                         ) -> None:
    found = parse_disposition(value)
    assert (found.kind, found.modifier, found.detail) == parsed
    assert found.mode == "automatic-action/mdn-sent-automatically"


@pytest.mark.parametrize("value", ["processed", "auto; exploded", "auto; processed/oops: x"])
def test_a_disposition_that_is_not_one_is_refused(value: str) -> None:
    with pytest.raises(As2ProcessingError):
        parse_disposition(value)


def test_a_report_without_a_disposition_notification_is_refused() -> None:
    body = b"--r\r\nContent-Type: text/plain\r\n\r\nhello\r\n--r--\r\n"
    with pytest.raises(As2ProcessingError, match="no message/disposition-notification"):
        read_mdn({"Content-Type": "multipart/report; boundary=r"}, body,
                 partner_certificates=[])


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(REPORT) - 1), st.binary(min_size=1, max_size=8),
       st.integers(0, 16))
def test_mutated_mdns_raise_only_as2_rejected(at: int, insert: bytes, cut: int) -> None:
    data = REPORT[:at] + insert + REPORT[at + cut:]
    with contextlib.suppress(As2Rejected):
        top = parse_entity(data)
        read_mdn(dict(top.headers.fields), top.body, partner_certificates=[])
