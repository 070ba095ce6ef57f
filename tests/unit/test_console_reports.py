"""The pure parts of the console's operations pages (issue 14): SVG charts (escaped, one bar per
value, parse as XML, no script), CSV cells escaped against formula injection (OWASP), SSH
fingerprints as OpenSSH prints them, certificate states at certificate_watch's thresholds,
ages and chart buckets."""

from __future__ import annotations

import csv
import datetime as dt
import io
import xml.etree.ElementTree as ET
from pathlib import Path

import asyncssh
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.console.attention_pages import age
from gateway.console.charts import Bar, column_chart, range_chart
from gateway.console.exports import csv_cell, csv_text
from gateway.console.partners_page import certificate_view, ssh_fingerprint
from gateway.console.report_pages import buckets, stage_title
from gateway.security.partner_certificates import PartnerCertificate

SVG = "{http://www.w3.org/2000/svg}"
NOW = dt.datetime(2026, 12, 4, 15, 30, tzinfo=dt.UTC)


def test_column_chart_draws_one_bar_per_value_and_escapes_labels() -> None:
    svg = column_chart("Rejections <b>", [Bar("<script>", 3), Bar("b", 0), Bar("c", 1.5)])
    root = ET.fromstring(str(svg))  # well-formed: every text escaped
    bars = root.findall(f"{SVG}rect")
    assert len(bars) == 3
    assert [float(b.get("height", "")) for b in bars][:2] == [150.0, 0.0]
    assert "<script" not in str(svg) and "&lt;script&gt;: 3" in str(svg)
    assert root.get("aria-label") == "Rejections <b>"
    assert column_chart("empty", []) == ""


def test_range_chart_puts_p50_inside_p90() -> None:
    svg = range_chart("t", [("customs", 20.0, 28.0), ("port", None, 40.0), ("x&y", None, None)])
    root = ET.fromstring(str(svg))
    rects = root.findall(f"{SVG}rect")
    assert [r.get("class") for r in rects] == ["p90", "p50", "p90"]
    p90, p50 = (float(r.get("width", "")) for r in rects[:2])
    assert p50 == pytest.approx(p90 * 20 / 28, rel=0.01)
    assert "x&amp;y" in str(svg)


@pytest.mark.parametrize(("value", "written"), [
    ("=1+1", "'=1+1"), ("+SUM(A1)", "'+SUM(A1)"), ("-2+3", "'-2+3"), ("@cmd", "'@cmd"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("van-a", "van-a"), ("a=b", "a=b"), (None, ""),
    (12, 12), (-1.5, -1.5), (True, "true")])
def test_csv_cells_that_look_like_formulas_are_escaped(value: object, written: object) -> None:
    assert csv_cell(value) == written


def test_csv_text_round_trips_with_crlf() -> None:
    text = csv_text(("a", "b"), [("=x", 1.5), ('quote "q", comma', None)])
    assert text.endswith("\r\n")
    assert list(csv.reader(io.StringIO(text))) == [
        ["a", "b"], ["'=x", "1.5"], ['quote "q", comma', ""]]


def test_ssh_fingerprints_are_openssh_s() -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    line = key.export_public_key().decode().strip()
    expected = key.get_fingerprint("sha256")
    assert ssh_fingerprint(line) == f"ssh-ed25519 {expected}"
    assert ssh_fingerprint(f'from="10.0.0.1",no-pty {line}') == f"ssh-ed25519 {expected}"
    assert ssh_fingerprint("# a comment") is None
    assert ssh_fingerprint("ssh-ed25519 not*base64") is None


def _certificate(not_after: dt.datetime) -> PartnerCertificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "van-a")])
    built = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
             .public_key(key.public_key()).serial_number(0xABC)
             .not_valid_before(not_after - dt.timedelta(days=400)).not_valid_after(not_after)
             .sign(key, hashes.SHA256()))
    return PartnerCertificate("van-a", Path("van-a.crt"), built)


@pytest.mark.parametrize(("left", "state"), [
    (dt.timedelta(days=90), "valid"), (dt.timedelta(days=29), "expiring"),
    (dt.timedelta(days=-1), "expired")])
def test_certificate_states_follow_the_watch(left: dt.timedelta, state: str) -> None:
    view = certificate_view(_certificate(NOW + left), NOW)
    assert view.state == state and view.serial == "abc" and view.subject == "CN=van-a"
    assert view.days_left == left.days and len(view.sha256.split(":")) == 32


def test_ages_and_buckets() -> None:
    assert [age(s) for s in (5, 90, 7200, 3 * 86400)] == ["5 s", "2 min", "2 h", "3 d"]
    hours = buckets(NOW - dt.timedelta(hours=24), NOW, "hour")
    assert len(hours) == 25 and hours[0] == dt.datetime(2026, 12, 3, 15, tzinfo=dt.UTC)
    days = buckets(NOW - dt.timedelta(days=30), NOW, "day")
    assert len(days) == 31 and days[0].hour == 0
    assert stage_title("lodged_to_accepted") == "lodged → accepted"
