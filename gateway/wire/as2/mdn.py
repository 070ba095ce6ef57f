"""The fields of an MDN's message/disposition-notification part (RFC 3798 section 3, with
the AS2 additions of RFC 4130 section 7.4.3): who reports, for which message, what became of
it, and the MIC of what was received.

The Disposition field: ``action-mode/sending-mode; type[/modifier: detail]``, e.g.
``automatic-action/MDN-sent-automatically; processed/error: authentication-failed``; AS2
also sends ``failed/Failure: unsupported format`` (RFC 4130 section 7.5.3).  Names are read
case-insensitively (IBM Sterling writes ``Automatic-action/mdn-sent-automatically``)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import As2ProcessingError
from gateway.wire.as2.mic import Mic, parse_mic
from gateway.wire.as2.mime import parse_headers

#: Types and modifiers an AS2 MDN uses (RFC 4130 section 7.4.3, RFC 3798 section 3.2.6).
DISPOSITION_TYPES = frozenset({"processed", "failed", "displayed", "deleted", "dispatched"})
MODIFIER_KINDS = frozenset({"error", "warning", "failure"})


@dataclass(frozen=True, slots=True)
class Disposition:
    """``processed``, ``processed/error: X``, ``processed/warning: X`` or ``failed/failure: X``."""

    #: "automatic-action/mdn-sent-automatically", lower-cased.
    mode: str
    #: "processed" or "failed" (lower-cased).
    kind: str
    #: "error", "warning" or "failure"; None for a plain disposition.
    modifier: str | None
    #: The text after the colon (e.g. "authentication-failed"), lower-cased.
    detail: str | None

    @property
    def ok(self) -> bool:
        """Processed without error or failure (a warning, e.g. duplicate-document, is ok)."""
        return self.kind == "processed" and self.modifier in (None, "warning")

    def text(self) -> str:
        if self.modifier is None:
            return self.kind
        return f"{self.kind}/{self.modifier}: {self.detail}"


@dataclass(frozen=True, slots=True)
class DispositionReport:
    """The fields of one message/disposition-notification."""

    original_message_id: str | None
    disposition: Disposition
    #: Received-Content-MIC, None when the MDN gives none (an error MDN may not).
    mic: Mic | None
    reporting_ua: str | None
    original_recipient: str | None
    final_recipient: str | None


def parse_disposition(value: str) -> Disposition:
    """One Disposition field's value (RFC 3798 section 3.2.6)."""
    mode, semicolon, rest = value.partition(";")
    if not semicolon:
        raise As2ProcessingError(f"a Disposition without its type: {value[:80]!r}")
    kind, slash, modifier_text = rest.strip().partition("/")
    kind = kind.strip().lower()
    if kind not in DISPOSITION_TYPES:
        raise As2ProcessingError(f"unknown disposition type {kind[:40]!r}")
    if not slash:
        return Disposition(mode.strip().lower(), kind, None, None)
    modifier, colon, detail = modifier_text.partition(":")
    modifier = modifier.strip().lower()
    if modifier not in MODIFIER_KINDS:
        raise As2ProcessingError(f"unknown disposition modifier {modifier[:40]!r}")
    return Disposition(mode.strip().lower(), kind, modifier,
                       detail.strip().lower() if colon else "")


def parse_report_fields(data: bytes) -> DispositionReport:
    """The body of a message/disposition-notification part: header-like fields, per-message
    then per-recipient, maybe with an empty line between (RFC 3798 section 3.1)."""
    lines = [line for line in data.split(b"\n") if line.strip(b"\r")]
    headers = parse_headers(b"\n".join(lines))
    disposition = headers.get("disposition")
    if disposition is None:
        raise As2ProcessingError("the disposition notification has no Disposition field")
    mic = headers.get("received-content-mic")
    return DispositionReport(
        original_message_id=headers.get("original-message-id"),
        disposition=parse_disposition(disposition),
        mic=None if mic is None else parse_mic(mic),
        reporting_ua=headers.get("reporting-ua"),
        original_recipient=headers.get("original-recipient"),
        final_recipient=headers.get("final-recipient"))
