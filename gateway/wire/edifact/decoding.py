"""Turn interchange bytes into text: BOM, UNA, the UNB syntax identifier and its charset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

from gateway.errors import EnvelopeError
from gateway.model.edifact import Delimiters
from gateway.model.findings import Finding, SyntaxErrorCode
from gateway.wire.edifact import syntax


@dataclass(frozen=True, slots=True)
class DecodedInterchange:
    """Text from UNB on, with the delimiters and the name of its character set.

    A byte the declared character set does not hold stands in ``text`` as U+DC80-U+DCFF
    (``syntax.UNDECODABLE``); the envelope reader finds and places it with the other characters
    no repertoire holds, then replaces it."""

    text: str
    delimiters: Delimiters
    syntax_identifier: str
    findings: tuple[Finding, ...]
    #: The Python codec the text was decoded with (the declared one, or Latin-1 when the
    #: syntax identifier is unknown).
    codec: str = "latin-1"


def decode(data: bytes) -> DecodedInterchange:
    """Find UNA/UNB, pick the delimiters and the charset, and decode.

    Raises EnvelopeError when there is no UNB to read: then no CONTRL can be addressed.
    """
    if data.startswith(syntax.BYTE_ORDER_MARK):
        data = data[len(syntax.BYTE_ORDER_MARK) :]
    data = data.lstrip(b"\r\n\t ")
    advice, data = _service_string_advice(data)
    if not data.startswith(b"UNB"):
        raise EnvelopeError(
            "the file does not start with an EDIFACT interchange header (UNA or UNB)",
            syntax_error_code=SyntaxErrorCode.SERVICE_SEGMENT_MISSING_OR_INVALID,
            segment_position=1,
        )
    delimiters = (syntax.parse_una(advice.decode("latin-1")) if advice is not None
                  else syntax.default_delimiters(data[3:4].decode("latin-1")))
    identifier, version = _syntax_identifier(data, delimiters)
    codec = syntax.CODECS.get(identifier)
    findings: list[Finding] = []
    if codec is None:
        findings.append(
            Finding(
                SyntaxErrorCode.SYNTAX_VERSION_NOT_SUPPORTED,
                f"syntax identifier {identifier!r} is not supported",
                segment_tag="UNB",
                segment_position=1,
                element=1,
                component=1,
            )
        )
        codec = "latin-1"
    if advice is not None:
        delimiters = _in_charset(advice, codec)
    delimiters = syntax.for_syntax_version(delimiters, version)
    return DecodedInterchange(
        text=data.decode(codec, errors=syntax.DECODING_ERRORS),
        delimiters=delimiters,
        syntax_identifier=identifier,
        findings=tuple(findings),
        codec=codec,
    )


def _service_string_advice(data: bytes) -> tuple[bytes | None, bytes]:
    """The UNA's nine bytes (checked) and the data after it."""
    if not data.startswith(b"UNA"):
        return None, data
    if len(data) < syntax.UNA_LENGTH:
        raise EnvelopeError(
            "UNA service string advice is cut short",
            syntax_error_code=SyntaxErrorCode.UNA_NOT_SUPPORTED,
            segment_position=0,
        )
    advice = data[: syntax.UNA_LENGTH]
    problem = syntax.una_problem(advice.decode("latin-1"))
    if problem is not None:
        _refuse_una(advice, problem)
    return advice, data[syntax.UNA_LENGTH :].lstrip(b"\r\n\t ")


def _in_charset(advice: bytes, codec: str) -> Delimiters:
    """The UNA's service characters as the declared character set reads them: the lexer finds
    them in text decoded with it (a UTF-8 or ASCII interchange cannot name a byte above 0x7F,
    and ISO 8859-5 reads 0xC0 as a Cyrillic letter)."""
    try:
        text = advice.decode(codec)
    except UnicodeDecodeError:
        text = ""
    if len(text) != syntax.UNA_LENGTH:
        _refuse_una(advice, f"its service characters are not characters of {codec}")
    return syntax.parse_una(text)


def _refuse_una(advice: bytes, problem: str) -> NoReturn:
    raise EnvelopeError(
        f"UNA {advice.decode('latin-1')!r} cannot be used: {problem}",
        syntax_error_code=SyntaxErrorCode.CHARACTER_INVALID_AS_SERVICE_CHARACTER,
        segment_position=0,
    )


def _syntax_identifier(data: bytes, delimiters: Delimiters) -> tuple[str, str]:
    """UNB S001: syntax identifier (0001) and version (0002), read before the charset is known
    (every supported charset spells them in ASCII)."""
    head = data[: 64].decode("latin-1")
    fields = head[4:].split(delimiters.element, 1)[0].split(delimiters.terminator, 1)[0]
    identifier, _, rest = fields.partition(delimiters.component)
    version = rest.split(delimiters.component, 1)[0]
    if head[3:4] != delimiters.element or not identifier:
        raise EnvelopeError(
            "UNB has no syntax identifier (S001)",
            syntax_error_code=SyntaxErrorCode.SERVICE_SEGMENT_MISSING_OR_INVALID,
            segment_position=1,
        )
    return identifier.upper(), version
