"""One exception tree for the whole gateway.

Every error says whose fault it is (``retryable``: ours, try again; not retryable: the partner's
data or an operator's file is wrong) and carries a stable ``code``.  Inbound rejections also carry
the ISO 9735 syntax error code (data element 0085) the CONTRL will report.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""

    code = "gateway_error"
    retryable = False


class ConfigError(GatewayError):
    """A configuration or routing file is wrong; the message names file, line and field."""

    code = "config_error"


class InboundRejected(GatewayError):
    """The partner's data is wrong: answer with a negative acknowledgement, never retry."""

    code = "inbound_rejected"
    #: ISO 9735 data element 0085 "Syntax error, coded"; 18 is "Unspecified error".
    syntax_error_code = 18


class EnvelopeError(InboundRejected):
    """The interchange envelope cannot be read (no UNB, unreadable UNA/UNB)."""

    code = "envelope_error"

    def __init__(
        self,
        message: str,
        *,
        syntax_error_code: int = 18,
        segment_position: int | None = None,
    ) -> None:
        super().__init__(message)
        self.syntax_error_code = syntax_error_code
        self.segment_position = segment_position


class XmlRejected(InboundRejected):
    """An XML submission the hardened reader refuses: not well-formed, a DOCTYPE, something
    outside the document it refers to, or over a size, depth or element-count limit."""

    code = "xml_rejected"

    def __init__(self, message: str, *, line: int | None = None,
                 root: tuple[str | None, str] | None = None) -> None:
        super().__init__(message if line is None else f"line {line}: {message}")
        #: What is wrong, without the line (a Finding carries the line apart).
        self.reason = message
        self.line = line
        #: The root element's (namespace, local name) when the reader got that far: the
        #: answer is then written in the document's own standard.
        self.root = root


class AgreementError(InboundRejected):
    """Unknown partner, sender ID not theirs, bad signature."""

    code = "agreement_error"
    syntax_error_code = 23  # 0085: Unknown interchange sender


class SignatureInvalid(AgreementError):
    """A CMS signature (RFC 5652) that does not verify: the message says exactly which check
    failed (structure, digest, signature, certificate, chain to the trust anchors)."""

    code = "signature_invalid"


class DigestMismatch(SignatureInvalid):
    """The signed message-digest is not the content's digest (RFC 5652 section 11.2): the
    content was altered after signing, told apart so that AS2 can answer
    integrity-check-failed rather than authentication-failed.  Its code stays
    signature_invalid: to everything but AS2 it is one more way a signature fails."""


class As2Rejected(InboundRejected):
    """An AS2 message (RFC 4130) or MDN the gateway refuses.  ``disposition`` is the
    processed/error modifier its MDN reports (RFC 4130 section 7.4.3), so the endpoint picks
    the answer from the class alone."""

    code = "as2_rejected"
    disposition = "unexpected-processing-error"

    @property
    def mdn_disposition(self) -> str:
        """The MDN's disposition after its action modes (RFC 4130 section 7.4.3)."""
        return f"processed/error: {self.disposition}"


class As2AuthenticationFailed(As2Rejected):
    """The signature does not verify, or its signer is not the partner's certificate."""

    code = "as2_authentication_failed"
    disposition = "authentication-failed"


class As2DecryptionFailed(As2Rejected):
    """The enveloped data cannot be decrypted; says no more than that (RFC 3218)."""

    code = "as2_decryption_failed"
    disposition = "decryption-failed"


class As2IntegrityCheckFailed(As2Rejected):
    """The signed content's digest is not the one signed: the content was altered."""

    code = "as2_integrity_check_failed"
    disposition = "integrity-check-failed"


class As2DecompressionFailed(As2Rejected):
    """The compressed data cannot be decompressed, or is over the size allowed (RFC 5402
    section 5 names this modifier)."""

    code = "as2_decompression_failed"
    disposition = "decompression-failed"


class As2InsufficientSecurity(As2Rejected):
    """Unsigned or unencrypted where the partner's settings require it, or signed with a
    digest it may not use (RFC 4130 section 7.5.3: insufficient-message-security)."""

    code = "as2_insufficient_security"
    disposition = "insufficient-message-security"


class As2UnknownPartner(As2AuthenticationFailed):
    """AS2-From names no partner of ours, or AS2-To is not our AS2 name."""

    code = "as2_unknown_partner"


class As2UnsupportedMic(As2Rejected):
    """The sender requires a MIC algorithm we do not compute (RFC 4130 section 7.5.3: one of
    the two failures of the MDN request itself)."""

    code = "as2_unsupported_mic"
    disposition = "unsupported MIC-algorithms"

    @property
    def mdn_disposition(self) -> str:
        return f"failed/Failure: {self.disposition}"


class As2ProcessingError(As2Rejected):
    """Malformed MIME, a layer nested where RFC 4130 has none, too deep, too big."""

    code = "as2_processing_error"
    disposition = "unexpected-processing-error"


class DuplicateInterchange(InboundRejected):
    """The partner already sent this interchange; the original acknowledgement is repeated."""

    code = "duplicate_interchange"
    syntax_error_code = 26  # 0085: Duplicate detected


class ValidationFailed(InboundRejected):
    """The message breaks its directory structure; carries every finding."""

    code = "validation_failed"


class MappingError(InboundRejected):
    """The message is well formed but cannot be turned into its canonical form."""

    code = "mapping_error"
    syntax_error_code = 13  # 0085: Missing (a mandatory business element)


class DecryptionFailed(InboundRejected):
    """CMS enveloped data we cannot decrypt; the text never says why (RFC 3218)."""

    code = "decryption_failed"
    #: The only text it ever has: a padding failure and a wrong key must read alike.
    MESSAGE = "the message could not be decrypted"

    def __init__(self, reason: str = "") -> None:
        super().__init__(self.MESSAGE)
        #: For the operator's log only, never for the partner: set only for what is wrong
        #: before any private key is used (structure, size, algorithm, no recipient of ours).
        self.reason = reason


class DecompressionFailed(InboundRejected):
    """CMS compressed data (RFC 3274) that cannot be inflated, or inflates beyond the limit."""

    code = "decompression_failed"


class RenderError(GatewayError):
    """A canonical message (an agency's answer) that its mapping cannot write as EDIFACT: the
    agency's data is wrong (a value with no code in a table, a mandatory element empty)."""

    code = "render_error"


class QueryRefused(GatewayError):
    """An operator's search or report the console cannot run as asked (a reference too long, a
    time range ending before it starts, an unknown status, a page cursor that is not ours, a
    query over its time limit): the message says what to change; nothing is retried."""

    code = "query_refused"


class RoutingError(GatewayError):
    """No route for a message: park it and alarm ops; not the partner's fault."""

    code = "routing_error"


class DeliveryError(GatewayError):
    """Our infrastructure failed; the work is retried and ops are alarmed."""

    code = "delivery_error"
    retryable = True


class StoreError(DeliveryError):
    """PostgreSQL is unreachable or refused the write."""

    code = "store_error"


class StoreUnavailable(StoreError):
    """PostgreSQL is unreachable or dropped the connection: every piece of work waits alike, so
    workers pause and try again (nothing here is about one submission)."""

    code = "store_unavailable"


class StoreRefused(StoreError):
    """PostgreSQL refused a statement (a value it cannot hold, a constraint): a bug of ours
    about one piece of work, which is retried on its own and parked after a few attempts so
    that it never holds back the others (DESIGN rule 6)."""

    code = "store_refused"


class BusError(DeliveryError):
    """RabbitMQ is unreachable or did not confirm a publish."""

    code = "bus_error"


class TransportError(DeliveryError):
    """A file or network transport towards a partner failed."""

    code = "transport_error"


class PostFailed(TransportError):
    """A partner's AS2 server could not be reached, or did not answer in time."""

    code = "post_failed"
