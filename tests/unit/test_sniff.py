"""Sniffing by content (XML 1.0 Appendix F): BOMs, declarations, whitespace, UNA/UNB."""

from __future__ import annotations

import codecs

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.pipeline.sniff import Sniffed, Syntax, inspect, sniff

DECL16 = '<?xml version="1.0" encoding="UTF-16"?>\n<Declaration/>'


@pytest.mark.parametrize("data", [
    b"UNA:+.? 'UNB+UNOC:3+X+Y+200101:1200+1'",
    b"UNB+UNOC:3+X+Y+200101:1200+1'",
    b"\xef\xbb\xbfUNB+UNOC:3+X'",
    b"\r\n  UNB+UNOC:3+X'",
    b"\xef\xbb\xbf\n UNA:+.? '",
])
def test_edifact_with_or_without_a_utf8_bom(data: bytes) -> None:
    assert sniff(data) is Syntax.EDIFACT
    assert inspect(data).encoding == "utf-8"


@pytest.mark.parametrize(("data", "encoding", "bom"), [
    (b"<?xml version='1.0'?><Declaration/>", "utf-8", 0),
    (b"<Declaration/>", "utf-8", 0),
    (b" \r\n\t<Declaration/>", "utf-8", 0),
    (b"\xef\xbb\xbf<?xml version='1.0'?><a/>", "utf-8", 3),
    (codecs.BOM_UTF16_LE + DECL16.encode("utf-16-le"), "utf-16-le", 2),
    (codecs.BOM_UTF16_BE + DECL16.encode("utf-16-be"), "utf-16-be", 2),
    (DECL16.encode("utf-16-le"), "utf-16-le", 0),
    (DECL16.encode("utf-16-be"), "utf-16-be", 0),
    ("\n  <a/>".encode("utf-16-le"), "utf-16-le", 0),
    (codecs.BOM_UTF32_LE + "<a/>".encode("utf-32-le"), "utf-32-le", 4),
    (codecs.BOM_UTF32_BE + "<a/>".encode("utf-32-be"), "utf-32-be", 4),
    ("<a/>".encode("utf-32-le"), "utf-32-le", 0),
    ("<a/>".encode("utf-32-be"), "utf-32-be", 0),
    (b'<?xml version="1.0" encoding="ISO-8859-1"?><a>\xe9</a>', "iso8859-1", 0),
    (b"<?xml version='1.0' encoding='windows-1252'?><a/>", "cp1252", 0),
])
def test_xml_and_its_encoding(data: bytes, encoding: str, bom: int) -> None:
    assert inspect(data) == Sniffed(Syntax.XML, encoding, bom)


def test_a_bom_outweighs_the_declaration() -> None:
    # XML 1.0 Appendix F.1: the byte-order mark is authoritative.
    data = b"\xef\xbb\xbf<?xml version='1.0' encoding='ISO-8859-1'?><a/>"
    assert inspect(data).encoding == "utf-8"


@pytest.mark.parametrize("data", [
    b"", b"   ", b"\xef\xbb\xbf", b"hello", b"%PDF-1.7", b"\x00\x00", b"\xff\xfe",
    b"U", b"UN", "UNB+UNOC:3+X'".encode("utf-16-le"),  # EDIFACT is never read in UTF-16
])
def test_anything_else_is_unknown(data: bytes) -> None:
    assert inspect(data) == Sniffed(Syntax.UNKNOWN, None)


def test_a_code_unit_cut_at_the_head_does_not_matter() -> None:
    data = codecs.BOM_UTF16_LE + ("<a>" + "\u00e9" * 2000 + "</a>").encode("utf-16-le")
    assert inspect(data[:1025]).syntax is Syntax.XML


@given(st.binary(max_size=64))
def test_any_bytes_are_sniffed_without_error(data: bytes) -> None:
    assert inspect(data).syntax in set(Syntax)
