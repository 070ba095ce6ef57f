"""Turn interchange bytes into text: BOM, UNA, the UNB syntax identifier and its charset."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import EnvelopeError
from gateway.model.edifact import Delimiters
from gateway.model.findings import Finding, SyntaxErrorCode
from gateway.wire.edifact import syntax

#: Stop listing undecodable bytes after this many; the rest are still replaced.
MAX_CHARACTER_FINDINGS = 20


@dataclass(frozen=True, slots=True)
class DecodedInterchange:
    """Text from UNB on, with the delimiters and any charset findings (with byte offsets
    already turned into segment positions)."""

    text: str
    delimiters: Delimiters
    syntax_identifier: str
    findings: tuple[Finding, ...]


def decode(data: bytes) -> DecodedInterchange:
    """Find UNA/UNB, pick the delimiters and the charset, and decode.

    Raises EnvelopeError when there is no UNB to read: then no CONTRL can be addressed.
    """
    if data.startswith(syntax.BYTE_ORDER_MARK):
        data = data[len(syntax.BYTE_ORDER_MARK) :]
    data = data.lstrip(b"\r\n\t ")
    delimiters, data = _service_string_advice(data)
    if not data.startswith(b"UNB"):
        raise EnvelopeError(
            "the file does not start with an EDIFACT interchange header (UNA or UNB)",
            syntax_error_code=SyntaxErrorCode.SERVICE_SEGMENT_MISSING_OR_INVALID,
            segment_position=1,
        )
    if delimiters is None:
        delimiters = syntax.default_delimiters(data[3:4].decode("latin-1"))
    identifier, version = _syntax_identifier(data, delimiters)
    delimiters = syntax.for_syntax_version(delimiters, version)
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
    findings += _undecodable(data, codec, delimiters)
    return DecodedInterchange(
        text=data.decode(codec, errors="replace"),
        delimiters=delimiters,
        syntax_identifier=identifier,
        findings=tuple(findings),
    )


def _service_string_advice(data: bytes) -> tuple[Delimiters | None, bytes]:
    if not data.startswith(b"UNA"):
        return None, data
    if len(data) < syntax.UNA_LENGTH:
        raise EnvelopeError(
            "UNA service string advice is cut short",
            syntax_error_code=SyntaxErrorCode.UNA_NOT_SUPPORTED,
            segment_position=0,
        )
    advice = data[: syntax.UNA_LENGTH].decode("latin-1")
    delimiters = syntax.parse_una(advice)
    if len({delimiters.component, delimiters.element, delimiters.terminator}) < 3:
        raise EnvelopeError(
            f"UNA {advice!r} uses one character for two separators",
            syntax_error_code=SyntaxErrorCode.UNA_NOT_SUPPORTED,
            segment_position=0,
        )
    return delimiters, data[syntax.UNA_LENGTH :].lstrip(b"\r\n\t ")


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


def _undecodable(data: bytes, codec: str, delimiters: Delimiters) -> list[Finding]:
    """A finding (0085 = 21) for each byte the declared charset cannot hold, placed at the
    segment it stands in."""
    findings: list[Finding] = []
    terminator = delimiters.terminator.encode("latin-1", errors="replace")
    offset = 0
    while len(findings) < MAX_CHARACTER_FINDINGS:
        try:
            data[offset:].decode(codec)
            break
        except UnicodeDecodeError as exc:
            bad = offset + exc.start
            position = data.count(terminator, 0, bad) + 1
            findings.append(
                Finding(
                    SyntaxErrorCode.INVALID_CHARACTERS,
                    f"byte 0x{data[bad]:02x} at offset {bad} is not in the declared "
                    f"character set ({codec})",
                    segment_position=position,
                )
            )
            offset = offset + exc.end
    return findings
