"""MIME entities as AS2 sends them (RFC 2045, 2046; multipart/signed from RFC 1847): headers,
Content-Type parameters, the parts of a multipart, transfer decoding.

Each part keeps its bytes exactly as received (``Entity.raw``): a detached signature covers
them (RFC 1847 section 2.1, RFC 4130 section 7.3.1), so nothing is re-encoded.  Partners'
bytes are hostile: every limit below is checked and every failure is an As2ProcessingError
(unexpected-processing-error), never another exception."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.errors import As2ProcessingError

#: The largest header block read (RFC 5322 lines are at most 998 characters; a few dozen).
MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 256
#: A multipart/signed has two parts, a multipart/report two or three (RFC 3462).
MAX_PARTS = 16
#: RFC 2046 section 5.1.1: a boundary is 1 to 70 characters.
MAX_BOUNDARY = 70
_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z|~]+")
_BARE_LF = re.compile(rb"(?<!\r)\n")
_IDENTITY_ENCODINGS = frozenset({"7bit", "8bit", "binary"})


@dataclass(frozen=True, slots=True)
class Headers:
    """Header fields in order, names lower-cased, folded lines joined (RFC 5322 2.2.3)."""

    fields: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str | None:
        """The first field of that name (case-insensitive), None when absent."""
        wanted = name.lower()
        for key, value in self.fields:
            if key == wanted:
                return value
        return None

    @classmethod
    def of(cls, mapping: Mapping[str, str]) -> Headers:
        """Headers from an HTTP request's (the outermost entity of AS2 is the request)."""
        if len(mapping) > MAX_HEADERS:
            raise As2ProcessingError(f"{len(mapping)} header fields; at most {MAX_HEADERS}")
        return cls(tuple((str(k).lower(), str(v).strip()) for k, v in mapping.items()))


@dataclass(frozen=True, slots=True)
class ContentType:
    """A Content-Type (or Content-Disposition) value: the first token and its parameters."""

    value: str
    parameters: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.parameters:
            if key == wanted:
                return value
        return None


@dataclass(frozen=True, slots=True)
class Entity:
    """One MIME entity: its headers, its body still transfer-encoded, and ``raw``, the
    header block, blank line and body exactly as received."""

    headers: Headers
    body: bytes
    raw: bytes

    @property
    def content_type(self) -> ContentType:
        """RFC 2045 section 5.2: without a Content-Type, text/plain."""
        value = self.headers.get("content-type")
        return parameters(value) if value else ContentType("text/plain", ())

    @property
    def filename(self) -> str | None:
        """The Content-Disposition filename parameter (RFC 2183), when there is one."""
        value = self.headers.get("content-disposition")
        return None if value is None else parameters(value).get("filename")

    def decoded(self) -> bytes:
        """The body with its Content-Transfer-Encoding undone."""
        return decode_body(self.body, self.headers.get("content-transfer-encoding"))


def parse_entity(data: bytes) -> Entity:
    """An entity from its bytes: the header block ends at the first empty line (CRLF as
    RFC 5322 says, or a bare LF as some tools write)."""
    end, body_start = _header_end(data)
    return Entity(parse_headers(data[:end]), data[body_start:], data)


def _header_end(data: bytes) -> tuple[int, int]:
    position = 0
    limit = min(len(data), MAX_HEADER_BYTES)
    while position <= limit:
        newline = data.find(b"\n", position)
        if newline < 0 or newline > MAX_HEADER_BYTES:
            break
        line = data[position:newline]
        if line in (b"", b"\r"):
            return position, newline + 1
        position = newline + 1
    if len(data) > MAX_HEADER_BYTES:
        raise As2ProcessingError(f"no end of the MIME headers within {MAX_HEADER_BYTES} bytes")
    raise As2ProcessingError("a MIME entity without the empty line that ends its headers "
                             "(RFC 2045 section 3)")


def parse_headers(block: bytes) -> Headers:
    """A header block (without its ending empty line)."""
    if len(block) > MAX_HEADER_BYTES:
        raise As2ProcessingError(f"MIME headers over {MAX_HEADER_BYTES} bytes")
    fields: list[tuple[str, str]] = []
    for raw_line in block.split(b"\n"):
        line = raw_line.removesuffix(b"\r").decode("latin-1")
        if not line:
            continue
        if line[0] in " \t":
            if not fields:
                raise As2ProcessingError("the MIME headers begin with a continuation line")
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name.strip()):
            raise As2ProcessingError(f"not a MIME header field: {line[:80]!r}")
        fields.append((name.strip().lower(), value.strip()))
        if len(fields) > MAX_HEADERS:
            raise As2ProcessingError(f"more than {MAX_HEADERS} MIME header fields")
    return Headers(tuple(fields))


def parameters(value: str) -> ContentType:
    """``type/subtype; name=value; name="quoted \\"value\\""`` (RFC 2045 section 5.1).
    Parameter names are lower-cased; the first of a repeated name counts."""
    head, _, rest = value.partition(";")
    found: list[tuple[str, str]] = []
    position = 0
    while position < len(rest):
        equals = rest.find("=", position)
        semicolon = rest.find(";", position)
        if equals < 0:
            break
        if 0 <= semicolon < equals:  # a parameter without a value: passed over
            position = semicolon + 1
            continue
        name = rest[position:equals].strip().lower()
        position = equals + 1
        while position < len(rest) and rest[position] in " \t":
            position += 1
        if position < len(rest) and rest[position] == '"':
            text, position = _quoted(rest, position + 1)
            semicolon = rest.find(";", position)
            position = len(rest) if semicolon < 0 else semicolon + 1
        else:
            semicolon = rest.find(";", position)
            end = len(rest) if semicolon < 0 else semicolon
            text, position = rest[position:end].strip(), end + 1
        if name and all(name != known for known, _ in found):
            found.append((name, text))
    return ContentType(head.strip().lower(), tuple(found))


def _quoted(text: str, position: int) -> tuple[str, int]:
    """A quoted-string's content from just after its opening quote (RFC 5322 3.2.4)."""
    out: list[str] = []
    while position < len(text):
        char = text[position]
        if char == "\\" and position + 1 < len(text):
            out.append(text[position + 1])
            position += 2
            continue
        if char == '"':
            return "".join(out), position + 1
        out.append(char)
        position += 1
    raise As2ProcessingError("a quoted parameter value without its closing quote")


def split_multipart(body: bytes, boundary: str | None) -> tuple[bytes, ...]:
    """The body parts of a multipart, each exactly as received, without the line break that
    belongs to the next delimiter (RFC 2046 section 5.1.1); preamble and epilogue dropped."""
    if not boundary or len(boundary) > MAX_BOUNDARY:
        raise As2ProcessingError(f"a multipart boundary of {len(boundary or '')} characters "
                                 f"(RFC 2046 section 5.1.1: 1 to {MAX_BOUNDARY})")
    try:
        marker = boundary.encode("ascii")
    except UnicodeEncodeError as exc:  # an HTTP header decoded as UTF-8 by the server
        raise As2ProcessingError("a multipart boundary that is not ASCII (RFC 2046 "
                                 "section 5.1.1)") from exc
    delimiter = re.compile(rb"(?:\A|\r?\n)--" + re.escape(marker)
                           + rb"(--)?[ \t]*(?:\r?\n|\Z)")
    parts: list[bytes] = []
    start: int | None = None
    for match in delimiter.finditer(body):
        if start is not None:
            parts.append(body[start:match.start()])
            if len(parts) > MAX_PARTS:
                raise As2ProcessingError(f"a multipart with more than {MAX_PARTS} parts")
        if match.group(1):
            if not parts:
                raise As2ProcessingError("a multipart without a body part")
            return tuple(parts)
        start = match.end()
    raise As2ProcessingError("a multipart without its closing boundary "
                             "(RFC 2046 section 5.1.1)")


def decode_body(body: bytes, encoding: str | None) -> bytes:
    """Undo a Content-Transfer-Encoding (RFC 2045 section 6): binary, 7bit and 8bit are the
    bytes themselves; base64 ignores line breaks; quoted-printable is read too."""
    name = (encoding or "binary").strip().lower()
    if name in _IDENTITY_ENCODINGS:
        return body
    if name == "base64":
        try:
            return base64.b64decode(b"".join(body.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise As2ProcessingError(f"the base64 body cannot be decoded: {exc}") from exc
    if name == "quoted-printable":
        try:
            return binascii.a2b_qp(body)
        except (binascii.Error, ValueError) as exc:
            raise As2ProcessingError(f"the quoted-printable body cannot be decoded: "
                                     f"{exc}") from exc
    raise As2ProcessingError(f"unknown Content-Transfer-Encoding {name[:40]!r}")


def canonical(data: bytes) -> bytes:
    """Line breaks as CRLF (RFC 5751 section 3.1.1: the canonical form that is signed)."""
    return _BARE_LF.sub(b"\r\n", data)

