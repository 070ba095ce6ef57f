"""Writing an AS2 message (RFC 4130) and an MDN: the MIME layers put on, signed with our key,
encrypted to the partner's certificates, and the MIC the partner's MDN must report.  Pure:
values in, bytes and headers out, no I/O.  The reading side is security.as2; what is built
here reads back with read_as2 and read_mdn to the same payload and MIC.

Layers, innermost first (RFC 4130 section 2.4.2, RFC 5402 section 3): the payload entity,
then optionally compressed (RFC 3274), signed (multipart/signed, RFC 1847 and RFC 5751
section 3.5) and encrypted (application/pkcs7-mime, RFC 5751 section 3.3).  The outermost
layer's MIME headers become HTTP headers and its body the HTTP body (RFC 4130 section 5.2).

Header values never span lines: a CR or LF in a value would let its author add header fields
(RFC 5322 section 2.2).  What comes from our configuration is refused (ConfigError) when it
holds a control character; what may come from a partner (in an MDN: the original Message-ID,
its AS2 name, the text) is made printable ASCII and cut to RFC 5322's 998-character line."""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from gateway.errors import ConfigError
from gateway.security.compressed import compress_data
from gateway.security.envelope_write import encrypt_enveloped
from gateway.security.signing import SigningKey
from gateway.wire.as2.mic import DEFAULT_MICALG, MIC_ALGORITHMS, Mic, compute_mic

AS2_VERSION = "1.2"
#: RFC 5322 section 2.1.1: a line is at most 998 characters without its CRLF.
MAX_LINE = 998
#: RFC 4130 section 6.2: an AS2 name is 1 to 128 printable ASCII characters.
MAX_AS2_NAME = 128
#: Filenames longer than this are cut (file systems keep 255 bytes).
MAX_FILENAME = 255
#: hashlib name -> (cryptography hash, micalg spelling of RFC 5751 section 3.4.3.2).  No
#: SHA-1: cryptography's PKCS7SignatureBuilder refuses it (RFC 8551 section 2.1 too).
_DIGESTS: dict[str, tuple[hashes.SHA224 | hashes.SHA256 | hashes.SHA384 | hashes.SHA512,
                          str]] = {
    "sha224": (hashes.SHA224(), "sha-224"),
    "sha256": (hashes.SHA256(), "sha-256"),
    "sha384": (hashes.SHA384(), "sha-384"),
    "sha512": (hashes.SHA512(), "sha-512"),
}
#: RFC 2231 section 7 attribute-char: what a filename* value keeps as it is.
_ATTRIBUTE_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                             b"0123456789!#$&+-.^_`|~")
_SIGN_OPTIONS = (pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary)
#: RFC 5322 section 3.2.3 atext: an AS2 name of these alone needs no quotes.
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.@]+")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_NOT_PRINTABLE = re.compile(r"[^\x20-\x7e]")
_MDN_MODE = "automatic-action/MDN-sent-automatically"

Fields = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class HttpMessage:
    """An AS2 message or MDN as HTTP carries it."""

    #: HTTP headers to send, in order.
    headers: Fields
    body: bytes


@dataclass(frozen=True, slots=True)
class ReceiptRequest:
    """What we ask of the partner's MDN (RFC 4130 section 7.3)."""

    signed: bool = True
    micalg: str = "sha256"
    #: Receipt-Delivery-Option: the URL of an asynchronous MDN; None = synchronous.
    async_url: str | None = None
    #: Disposition-Notification-To value.
    to: str = "as2@gateway"


@dataclass(frozen=True, slots=True)
class _Part:
    """A MIME entity: its header fields and its body, transfer-encoded."""

    headers: Fields
    body: bytes

    def raw(self) -> bytes:
        head = "".join(f"{name}: {value}\r\n" for name, value in self.headers)
        return head.encode("ascii") + b"\r\n" + self.body


def build_message(payload: bytes, *, filename: str, content_type: str, as2_from: str,
                  as2_to: str, message_id: str, subject: str, signer: SigningKey | None,
                  digest: str, recipients: Sequence[x509.Certificate],
                  encryption: str | None, compress: bool = False,
                  receipt: ReceiptRequest | None = ReceiptRequest(),
                  now: dt.datetime | None = None) -> tuple[HttpMessage, Mic]:
    """The HTTP request carrying ``payload`` to a partner, and the MIC its MDN must report.
    ``digest`` signs ("sha256", ...); ``encryption`` is an envelope_write.CIPHERS name, or
    None to send in clear.  ConfigError for a value our configuration got wrong."""
    part = _Part((("Content-Type", _strict("Content-Type", content_type)),
                  ("Content-Transfer-Encoding", "binary"),
                  ("Content-Disposition", f"attachment; {_filename(filename)}")), payload)
    if compress:
        part = _pkcs7_mime(compress_data(part.raw()), "compressed-data", "smime.p7z",
                           base64_body=True)
    mic_source: bytes | None = None
    if signer is not None:
        # RFC 4130 section 7.3.1: a signed message's MIC covers the signed entity.
        mic_source = part.raw()
        part = _signed(mic_source, signer, digest)
    if encryption is not None:
        inner = part.raw()
        # Encrypted but unsigned: the MIC covers the entity that was encrypted.
        mic_source = inner if mic_source is None else mic_source
        # RFC 8551 section 3.2.2: AES-GCM makes AuthEnvelopedData, labelled as such.
        label = "authEnveloped-data" if encryption.endswith("-gcm") else "enveloped-data"
        part = _pkcs7_mime(encrypt_enveloped(inner, recipients, encryption),
                           label, "smime.p7m", base64_body=False)
    if mic_source is None:
        # Neither: the body alone, as read_as2 computes it (for a compressed-only message
        # that is the base64 of the CompressedData).
        mic_source = part.body
    headers = (*_as2_headers(as2_from, as2_to, message_id, now, strict=True),
               ("Subject", _subject(subject)),
               *_receipt_headers(receipt), *part.headers)
    micalg = _receipt_micalg(receipt)
    return HttpMessage(_checked(headers), part.body), compute_mic(mic_source, micalg)


def build_mdn(*, original_message_id: str, original_recipient: str | None, as2_from: str,
              as2_to: str, message_id: str, disposition: str, mic: Mic | None, text: str,
              signer: SigningKey | None, micalg: str,
              reporting_ua: str = "Single Window Gateway",
              now: dt.datetime | None = None) -> HttpMessage:
    """An MDN (RFC 4130 section 7.4.2): multipart/report with the ``text`` and the
    message/disposition-notification fields, signed with ``micalg`` when ``signer`` is given.
    ``disposition`` follows "automatic-action/MDN-sent-automatically; ", e.g. "processed" or
    "processed/error: decryption-failed".  Inputs that may come from the partner are made
    printable and cut, never refused: an MDN is owed even for a hostile message."""
    fields: list[tuple[str, str]] = [("Reporting-UA", reporting_ua)]
    if original_recipient is not None:
        fields.append(("Original-Recipient", f"rfc822; {_as2_name(original_recipient)}"))
    fields += [("Final-Recipient", f"rfc822; {_as2_name(as2_from)}"),
               ("Original-Message-ID", original_message_id),
               ("Disposition", f"{_MDN_MODE}; {disposition}")]
    if mic is not None:
        fields.append(("Received-Content-MIC", mic.header()))
    notification = "".join(f"{name}: {_lenient(name, value)}\r\n" for name, value in fields)
    report = _report(_text(text), notification.encode("ascii"))
    part = report if signer is None else _signed(report.raw(), signer, _mdn_digest(micalg))
    headers = (*_as2_headers(as2_from, as2_to, message_id, now, strict=False),
               *part.headers)
    return HttpMessage(_checked(headers), part.body)


# --- layers -------------------------------------------------------------------------------


def _pkcs7_mime(der: bytes, smime_type: str, name: str, *, base64_body: bool) -> _Part:
    """application/pkcs7-mime (RFC 5751 section 3.2; compressed-data RFC 3274 section 3).
    Enveloped data goes binary as AS2 over HTTP sends it (RFC 4130 section 5.2)."""
    body = _base64_lines(der) if base64_body else der
    return _Part((
        ("Content-Type", f"application/pkcs7-mime; smime-type={smime_type}; name={name}"),
        ("Content-Transfer-Encoding", "base64" if base64_body else "binary"),
        ("Content-Disposition", f'attachment; filename="{name}"')), body)


def _signed(entity: bytes, signer: SigningKey, digest: str) -> _Part:
    """multipart/signed (RFC 1847 section 2.1, RFC 5751 section 3.5): ``entity`` exactly as
    given, then a detached CMS signature over those bytes (Binary: no canonicalisation, the
    entity is already in CRLFs and its body is binary)."""
    algorithm, micalg = _digest(digest)
    signature = (pkcs7.PKCS7SignatureBuilder().set_data(entity)
                 .add_signer(signer.certificate, signer.private_key, algorithm)
                 .sign(serialization.Encoding.DER, _SIGN_OPTIONS))
    signature_part = _Part((
        ("Content-Type", "application/pkcs7-signature; name=smime.p7s"),
        ("Content-Transfer-Encoding", "base64"),
        ("Content-Disposition", 'attachment; filename="smime.p7s"')),
        _base64_lines(signature))
    boundary = _boundary(entity)
    body = _multipart(boundary, (entity, signature_part.raw()))
    content_type = (f'multipart/signed; protocol="application/pkcs7-signature"; '
                    f'micalg={micalg}; boundary="{boundary}"')
    return _Part((("Content-Type", content_type),), body)


def _report(text: bytes, notification: bytes) -> _Part:
    """multipart/report (RFC 6522) with the human-readable part and the notification
    (RFC 3798 section 3); RFC 4130 section 7.4.2 leaves out the third, optional part."""
    text_part = _Part((("Content-Type", "text/plain; charset=utf-8"),
                       ("Content-Transfer-Encoding", "8bit")), text)
    notification_part = _Part((("Content-Type", "message/disposition-notification"),
                               ("Content-Transfer-Encoding", "7bit")), notification)
    boundary = _boundary(text + notification)
    body = _multipart(boundary, (text_part.raw(), notification_part.raw()))
    return _Part((("Content-Type", "multipart/report; report-type=disposition-notification; "
                   f'boundary="{boundary}"'),), body)


def _multipart(boundary: str, parts: Sequence[bytes]) -> bytes:
    """RFC 2046 section 5.1.1: the CRLF before each delimiter belongs to the delimiter,
    so each part's bytes are exactly what is given (what a signature covers)."""
    marker = boundary.encode("ascii")
    out = b"".join(b"--" + marker + b"\r\n" + part + b"\r\n" for part in parts)
    return out + b"--" + marker + b"--\r\n"


def _boundary(content: bytes) -> str:
    """A random boundary that occurs nowhere in ``content`` (RFC 2046 section 5.1.1)."""
    while True:
        boundary = f"----=_swg_{secrets.token_hex(16)}"
        if boundary.encode("ascii") not in content:
            return boundary


def _base64_lines(data: bytes) -> bytes:
    """Base64 in lines of 76 characters ending in CRLF (RFC 2045 section 6.8)."""
    encoded = base64.b64encode(data)
    return b"".join(encoded[i:i + 76] + b"\r\n" for i in range(0, len(encoded), 76))


def _digest(name: str) -> tuple[hashes.SHA224 | hashes.SHA256 | hashes.SHA384 |
                                hashes.SHA512, str]:
    found = _DIGESTS.get(MIC_ALGORITHMS.get(name.lower(), ""))
    if found is None:
        raise ConfigError(f"signing digest {name[:40]!r}: one of sha224, sha256, sha384 or "
                          "sha512")
    return found


def _mdn_digest(micalg: str) -> str:
    """The digest an MDN is signed with: the micalg the partner asked for when we can sign
    with it, else SHA-256.  Its options are "optional" in practice and the signature's micalg
    says what was used; an MDN refused over SHA-1 would leave the partner with none."""
    return micalg if MIC_ALGORITHMS.get(micalg.lower(), "") in _DIGESTS else "sha256"


def _text(text: str) -> bytes:
    """The human-readable part in CRLFs, without control characters but tab."""
    lines = re.split(r"\r\n|\r|\n", text)
    cleaned = (re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "", line) for line in lines)
    return ("\r\n".join(cleaned) + "\r\n").encode("utf-8", "replace")


# --- HTTP headers -------------------------------------------------------------------------


def _as2_headers(as2_from: str, as2_to: str, message_id: str, now: dt.datetime | None,
                 *, strict: bool) -> Fields:
    if strict:
        from_name, to_name = _strict_as2_name(as2_from), _strict_as2_name(as2_to)
        identifier = _strict("Message-ID", _bracketed(message_id))
    else:
        from_name, to_name = _as2_name(as2_from), _as2_name(as2_to)
        identifier = _lenient("Message-ID", _bracketed(message_id))
    when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return (("AS2-Version", AS2_VERSION), ("AS2-From", from_name), ("AS2-To", to_name),
            ("Message-ID", identifier),
            ("Date", email.utils.format_datetime(when, usegmt=True)),
            ("MIME-Version", "1.0"))


def _receipt_headers(receipt: ReceiptRequest | None) -> Fields:
    """Disposition-Notification-To and -Options, Receipt-Delivery-Option (RFC 4130
    sections 7.3 and 7.3.2)."""
    if receipt is None:
        return ()
    headers = [("Disposition-Notification-To",
                _strict("Disposition-Notification-To", receipt.to))]
    if receipt.signed:
        headers.append(("Disposition-Notification-Options",
                        "signed-receipt-protocol=optional, pkcs7-signature; "
                        f"signed-receipt-micalg=optional, {_receipt_micalg(receipt)}"))
    if receipt.async_url is not None:
        headers.append(("Receipt-Delivery-Option",
                        _strict("Receipt-Delivery-Option", receipt.async_url)))
    return tuple(headers)


def _receipt_micalg(receipt: ReceiptRequest | None) -> str:
    """The micalg the partner computes the MIC with: the one asked for in the options, or,
    with no options, the default a reader takes (RFC 4130bis: SHA-256)."""
    if receipt is None or not receipt.signed:
        return DEFAULT_MICALG
    name = MIC_ALGORITHMS.get(receipt.micalg.lower())
    if name is None:
        raise ConfigError(f"receipt micalg {receipt.micalg[:40]!r}: one of "
                          f"{', '.join(sorted(set(MIC_ALGORITHMS.values())))}")
    return name.replace("sha", "sha-")  # the RFC 5751 section 3.4.3.2 spelling


def _strict(name: str, value: str) -> str:
    """A header value from our configuration: printable ASCII on one line, or ConfigError."""
    if not value or not _PRINTABLE.fullmatch(value):
        raise ConfigError(f"{name} {value[:80]!r}: printable ASCII on one line is needed "
                          "(RFC 5322 section 2.2)")
    if len(name) + 2 + len(value) > MAX_LINE:
        raise ConfigError(f"{name} of {len(value)} characters: a header line is at most "
                          f"{MAX_LINE} (RFC 5322 section 2.1.1)")
    return value


def _lenient(name: str, value: str) -> str:
    """A header value that may come from a partner: other characters than printable ASCII
    become "?" and the line is cut to MAX_LINE."""
    return _NOT_PRINTABLE.sub("?", value)[:MAX_LINE - len(name) - 2]


def _bracketed(message_id: str) -> str:
    """RFC 5322 section 3.6.4 msg-id is "<" id ">"; brackets added when missing."""
    stripped = message_id.strip()
    return stripped if stripped.startswith("<") else f"<{stripped}>"


def _strict_as2_name(name: str) -> str:
    if not 1 <= len(name) <= MAX_AS2_NAME or not _PRINTABLE.fullmatch(name):
        raise ConfigError(f"AS2 name {name[:140]!r}: 1 to {MAX_AS2_NAME} printable ASCII "
                          "characters (RFC 4130 section 6.2)")
    return _quoted_as2_name(name)


def _as2_name(name: str) -> str:
    """A partner's AS2 name made printable and cut to 128 characters, then quoted."""
    return _quoted_as2_name(_NOT_PRINTABLE.sub("?", name)[:MAX_AS2_NAME] or "?")


def _quoted_as2_name(name: str) -> str:
    """RFC 4130 section 6.2: a name with characters outside atext (a space) is a
    quoted-string, its quotes and backslashes escaped."""
    if _ATEXT.fullmatch(name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _filename(filename: str) -> str:
    """The Content-Disposition filename parameter (RFC 2183 section 2.3) as a quoted-string:
    control characters dropped, quotes and backslashes escaped; a name that is not ASCII
    also goes as filename* in UTF-8 (RFC 2231 section 4) beside an ASCII fallback."""
    cleaned = re.sub(r"[\x00-\x1f\x7f]", "", filename)[:MAX_FILENAME] or "payload"
    ascii_name = _NOT_PRINTABLE.sub("_", cleaned)
    quoted = 'filename="' + ascii_name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if ascii_name == cleaned:
        return quoted
    encoded = "".join(chr(b) if b in _ATTRIBUTE_CHARS else f"%{b:02X}"
                      for b in cleaned.encode("utf-8", "replace"))
    return f"{quoted}; filename*=UTF-8''{encoded}"


def _subject(subject: str) -> str:
    """Printable ASCII as it is; otherwise RFC 2047 encoded-words (UTF-8, base64), each
    under 75 characters, on one line (never folded)."""
    cleaned = re.sub(r"[\x00-\x1f\x7f]", " ", subject)
    if _PRINTABLE.fullmatch(cleaned):
        return cleaned[:MAX_LINE - len("Subject: ")]
    words: list[str] = []
    length = len("Subject:")
    for start in range(0, len(cleaned), 10):  # 10 characters: at most 40 UTF-8 octets
        chunk = cleaned[start:start + 10].encode("utf-8", "replace")
        word = f"=?utf-8?b?{base64.b64encode(chunk).decode('ascii')}?="
        if length + 1 + len(word) > MAX_LINE:
            break
        words.append(word)
        length += 1 + len(word)
    return " ".join(words)


def _checked(headers: Fields) -> Fields:
    """The last guard: every value on one line within RFC 5322's limit, whatever the code
    above missed."""
    for name, value in headers:
        if not _PRINTABLE.fullmatch(value) or len(name) + 2 + len(value) > MAX_LINE:
            raise ConfigError(f"the {name} header would not be one printable line")
    return headers
