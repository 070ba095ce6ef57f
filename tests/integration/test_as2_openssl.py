"""OpenSSL and curl as an independent AS2 peer (issue 12, RFC 4130): a CUSDEC signed and
encrypted by ``openssl cms`` and POSTed by ``curl`` is taken, routed and answered with a
signed MDN that ``openssl cms -verify`` accepts against the demo CA, carrying the MIC we
compute ourselves; what is tampered with, signed or encrypted with the wrong key, or comes
from an unknown partner gets its negative MDN, equally verifiable, and routes nothing.

Nothing of the gateway's code builds or reads the messages here (tests/support/openssl_as2.py):
a test that passes shows the gateway reads what OpenSSL writes, and OpenSSL reads what it
answers."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import openssl_as2 as ossl
from tests.support.as2_peer import as2_url
from tests.support.edifact import cusdec
from tests.support.harness import Gateway, demo_pki, gateway_fixture

pytestmark = pytest.mark.skipif(ossl.missing_tools() is not None,
                                reason=ossl.missing_tools() or "")

#: Content-Type of a DER body (RFC 8551 section 3.2.2 names the smime-types).
ENVELOPED = 'application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"'
AUTH_ENVELOPED = 'application/pkcs7-mime; smime-type=authEnveloped-data; name="smime.p7m"'


@dataclass(frozen=True)
class Keys:
    ca: Path
    gateway: Path
    vana: ossl.PeerFiles
    #: Issued by the same CA, but not VANA's configured certificate (and a partner of no one).
    stranger: ossl.PeerFiles


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    folder = tmp_path_factory.mktemp("openssl-peer")
    pki = demo_pki()
    return Keys(pki / "ca.crt", pki / "gateway.crt",
                ossl.make_peer(folder, "VANA", pki / "ca.crt", pki / "ca.key"),
                ossl.make_peer(folder, "STRANGER", pki / "ca.crt", pki / "ca.key"))


@pytest.fixture
async def gateway(tmp_path: Path, keys: Keys) -> AsyncIterator[Gateway]:
    shutil.copy(keys.vana.certificate, tmp_path / "vana-openssl.crt")
    async for running in gateway_fixture(
            tmp_path, settings={"as2": json.dumps({"id": "SWGATEWAY", "port": 0})},
            partner_as2={"van-a": {"id": "VANA", "certificates": ["vana-openssl.crt"]}}):
        yield running


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "curl"
    folder.mkdir()
    return folder


url = as2_url


async def interchanges(gateway: Gateway) -> list[Any]:
    return await gateway.fetch("SELECT partner_id, transport, file_name FROM interchanges")


async def signed_entity(work: Path, signer: ossl.PeerFiles, digest: str,
                        filename: str = "decl.edi") -> tuple[bytes, bytes]:
    """openssl's multipart/signed over the CUSDEC's entity, and that entity (what the MIC
    is computed over)."""
    content = ossl.entity(cusdec(sender="VANA"), filename)
    return await ossl.sign(work, content, signer, digest), content


async def answered(work: Path, keys: Keys, answer: ossl.Answer) -> ossl.Report:
    """The MDN of a 200, verified by openssl against the demo CA, then read."""
    assert answer.status == 200, answer.body[:500]
    assert answer.headers["content-type"].startswith("multipart/signed"), answer.headers
    return ossl.read_report(await ossl.verify_mdn(work, answer, keys.ca))


# --- accepted ---------------------------------------------------------------------------------

#: (digest, openssl cipher option, more -encrypt options, DER body?, expected encryption)
ACCEPTED = {
    "sha256 aes256-cbc": ("sha256", "-aes256", (), True, "aes256-cbc"),
    "sha384 aes128-cbc": ("sha384", "-aes128", (), True, "aes128-cbc"),
    "sha512 3des-cbc": ("sha512", "-des3", (), True, "3des-cbc"),
    "sha256 aes256-cbc rsa-oaep": ("sha256", "-aes256", (
        "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"), True,
        "aes256-cbc"),
    "sha256 aes192-cbc as openssl's S/MIME": ("sha256", "-aes192", (), False, "aes192-cbc"),
    # AuthEnvelopedData (RFC 5083) labelled as the gateway labels it when it sends one
    "sha256 aes256-gcm as enveloped-data": ("sha256", "-aes-256-gcm", (), True,
                                            "aes256-gcm"),
    "sha256 aes256-gcm": ("sha256", "-aes-256-gcm", (), True, "aes256-gcm"),
    "sha256 aes128-gcm as openssl's S/MIME": ("sha256", "-aes-128-gcm", (), False,
                                              "aes128-gcm"),
}

def accepted_cases() -> list[Any]:
    return [pytest.param(case, id=case) for case in ACCEPTED]


@pytest.mark.parametrize("case", accepted_cases())
async def test_an_openssl_message_posted_by_curl_is_taken_and_answered(
        gateway: Gateway, keys: Keys, work: Path, case: str) -> None:
    digest, cipher, options, der, encryption = ACCEPTED[case]
    signed, content = await signed_entity(work, keys.vana, digest)
    encrypted = await ossl.encrypt(work, signed, keys.gateway, cipher, *options, der=der)
    more: list[tuple[str, str]] = []
    if der:
        body = encrypted
        content_type = AUTH_ENVELOPED if case == "sha256 aes256-gcm" else ENVELOPED
    else:  # openssl's own headers travel as the HTTP headers (Content-Transfer-Encoding:
        # base64 among them), its base64 as the body
        headers, body = ossl.split(encrypted)
        content_type = dict(headers)["Content-Type"]
        more = [h for h in headers if h[0].lower() not in ("content-type", "mime-version")]
    message_id = f"<{uuid.uuid4().hex}@openssl.VANA>"
    request = ossl.as2_headers("VANA", content_type, digest, message_id) + more

    report = await answered(work, keys, await ossl.post(work, url(gateway), request, body))

    assert report.disposition == "automatic-action/MDN-sent-automatically; processed"
    assert report.original_message_id == message_id
    assert report.mic == ossl.mic(content, digest)
    assert [tuple(r) for r in await interchanges(gateway)] == [("van-a", "as2", "decl.edi")]
    assert len(await gateway.queue("customs", expect=1)) == 1
    (detail,) = await gateway.fetch("SELECT detail FROM events WHERE kind = 'as2_received'")
    assert json.loads(detail["detail"])["encryption"] == encryption


async def test_an_openssl_message_signed_only_is_taken(
        gateway: Gateway, keys: Keys, work: Path) -> None:
    signed, content = await signed_entity(work, keys.vana, "sha256")
    headers, body = ossl.split(signed)
    request = ossl.as2_headers("VANA", dict(headers)["Content-Type"], "sha256")
    answer = await ossl.post(work, url(gateway), request, body)
    report = await answered(work, keys, answer)
    assert report.disposition == "automatic-action/MDN-sent-automatically; processed"
    assert report.mic == ossl.mic(content, "sha256")
    assert len(await gateway.queue("customs", expect=1)) == 1
    # the verification is not vacuous: openssl refuses the MDN once a byte of it changed
    forged = ossl.Answer(answer.status, answer.headers,
                         answer.body.replace(b"processed", b"processeD", 1))
    assert forged.body != answer.body
    with pytest.raises(ossl.CommandFailed):
        await ossl.verify_mdn(work, forged, keys.ca)


# --- refused ----------------------------------------------------------------------------------

REFUSED = {
    "tampered": "integrity-check-failed",
    "signed by a certificate not VANA's": "authentication-failed",
    "encrypted to another certificate": "decryption-failed",
    "from an unknown partner": "authentication-failed",
}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_what_openssl_got_wrong_gets_its_negative_mdn_and_routes_nothing(
        gateway: Gateway, keys: Keys, work: Path, case: str) -> None:
    signer = keys.stranger if case == "signed by a certificate not VANA's" else keys.vana
    signed, _ = await signed_entity(work, signer, "sha256")
    if case == "tampered":
        # a byte of the signed CUSDEC changed after openssl signed it (sent unencrypted:
        # encrypted, the change would be the envelope's, a decryption failure)
        tampered = signed.replace(b"UNH+", b"UNH-", 1)
        assert tampered != signed
        headers, body = ossl.split(tampered)
        content_type = dict(headers)["Content-Type"]
    else:
        recipient = keys.stranger.certificate if case.startswith("encrypted") \
            else keys.gateway
        body = await ossl.encrypt(work, signed, recipient, "-aes256")
        content_type = ENVELOPED
    as2_from = "STRANGER" if case == "from an unknown partner" else "VANA"
    request = ossl.as2_headers(as2_from, content_type, "sha256")

    report = await answered(work, keys, await ossl.post(work, url(gateway), request, body))

    assert report.disposition == ("automatic-action/MDN-sent-automatically; "
                                  f"processed/error: {REFUSED[case]}")
    assert report.mic is None
    assert (await gateway.fetch("SELECT count(*) AS n FROM interchanges"))[0]["n"] == 0
    assert await gateway.queue("customs", expect=0) == []
