"""Partners' AS2 settings and certificates: what an operator gets wrong is refused at load with
the partner and the file, and certificates near their end raise an event, an alarm when no
other certificate of the partner lasts."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.app.certificate_watch import CertificateWatch
from gateway.config.load import load_config
from gateway.config.partners import PartnersFile
from gateway.config.yamlfile import load_model_text
from gateway.errors import ConfigError
from gateway.security.partner_certificates import (
    expiry_notes,
    load_partner_certificates,
)
from gateway.security.pki import create_ca, issue_signing_certificate
from tests.support.harness import write_files

NOW = dt.datetime(2026, 12, 3, 12, tzinfo=dt.UTC)
CA = create_ca("Partner CA", now=NOW - dt.timedelta(days=400))


def pem(days: int, start_days_ago: int = 10) -> bytes:
    issued = issue_signing_certificate(CA, "DEMOVAN AS2", days=days,
                                       now=NOW - dt.timedelta(days=start_days_ago))
    return issued.certificate.public_bytes(Encoding.PEM)


def with_as2(tmp_path: Path, as2: str) -> Path:
    files = write_files(tmp_path, "unused")
    partners = files.root / "partners.yaml"
    text = partners.read_text().replace("  - id: van-b\n", f"    as2: {as2}\n  - id: van-b\n", 1)
    partners.write_text(text)
    return files.config_path


def test_a_partner_with_two_certificates_during_a_rotation_loads_both(tmp_path: Path) -> None:
    (tmp_path / "old.crt").write_bytes(pem(60))
    (tmp_path / "new.crt").write_bytes(pem(700, start_days_ago=1))
    config = load_config(with_as2(tmp_path, '{id: VANA, certificates: [old.crt, new.crt]}'),
                         environ={})
    loaded = load_partner_certificates(config)
    assert [c.path.name for c in loaded["van-a"]] == ["old.crt", "new.crt"]
    assert "van-b" not in loaded


@pytest.mark.parametrize(("content", "reason"), [
    (None, "cannot read"),
    (b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n", "private key"),
    (b"not a certificate", "not a PEM certificate"),
])
def test_a_broken_certificate_file_is_refused_naming_partner_and_file(
        tmp_path: Path, content: bytes | None, reason: str) -> None:
    if content is not None:
        (tmp_path / "partner.crt").write_bytes(content)
    config = load_config(with_as2(tmp_path, "{id: VANA, certificates: [partner.crt]}"),
                         environ={})
    with pytest.raises(ConfigError) as caught:
        load_partner_certificates(config)
    message = str(caught.value)
    assert "partner 'van-a' as2.certificates[0]" in message and "partner.crt" in message
    assert reason in message


PARTNERS = """partners:
  - id: van-a
    name: A
    xml_ids: ["A"]
    as2: {{id: {first}, certificates: [a.crt]}}
  - id: van-b
    name: B
    xml_ids: ["B"]
    as2: {{id: {second}, certificates: [b.crt]}}
"""


def test_an_as2_name_belongs_to_one_partner() -> None:
    with pytest.raises(ConfigError, match=r"partners.yaml:6:.*AS2 name 'VANA' is already used "
                       r"by partner 'van-a'"):
        load_model_text(PARTNERS.format(first="VANA", second="VANA"), "partners.yaml",
                        PartnersFile)


@pytest.mark.parametrize(("name", "reason"), [
    ("1234", "quote the AS2 name"), ('"VAN A"', "String should match pattern"),
    ('"x"', None)])
def test_as2_names_are_printable_without_spaces(name: str, reason: str | None) -> None:
    text = PARTNERS.format(first=name, second="VANB")
    if reason is None:
        assert load_model_text(text, "partners.yaml", PartnersFile).partners[0].as2 is not None
        return
    with pytest.raises(ConfigError, match=reason):
        load_model_text(text, "partners.yaml", PartnersFile)


def test_expiring_certificates_are_told_an_alarm_only_without_a_successor(
        tmp_path: Path) -> None:
    (tmp_path / "old.crt").write_bytes(pem(20))       # expires in 10 days
    (tmp_path / "gone.crt").write_bytes(pem(5))       # expired 5 days ago
    config = load_config(with_as2(tmp_path, "{id: VANA, certificates: [old.crt, gone.crt]}"),
                         environ={})
    loaded = load_partner_certificates(config)
    notes = {n.certificate.path.name: n for n in expiry_notes(loaded, NOW)}
    assert set(notes) == {"old.crt", "gone.crt"}
    assert notes["gone.crt"].expired and not notes["old.crt"].expired
    assert not notes["old.crt"].replaced
    (tmp_path / "new.crt").write_bytes(pem(700, start_days_ago=1))
    (tmp_path / "r").mkdir()
    rotated = load_config(with_as2(tmp_path / "r", "{id: VANA, certificates: "
                                   f"[{tmp_path}/old.crt, {tmp_path}/new.crt]}}"), environ={})
    (note,) = expiry_notes(load_partner_certificates(rotated), NOW)
    assert note.replaced and note.certificate.path.name == "old.crt"


async def test_the_watch_raises_an_alarm_for_a_partner_left_without_a_valid_certificate(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "gone.crt").write_bytes(pem(5, start_days_ago=int(
        (dt.datetime.now(dt.UTC) - NOW).days) + 10))
    config = load_config(with_as2(tmp_path, "{id: VANA, certificates: [gone.crt]}"), environ={})
    with caplog.at_level(logging.WARNING, logger="gateway.certificates"):
        assert await CertificateWatch(load_partner_certificates(config)).check() is False
    (record,) = [r for r in caplog.records if "partner_certificate_expired" in r.getMessage()]
    fields = record.fields  # type: ignore[attr-defined]
    assert record.levelno == logging.ERROR and fields["partner"] == "van-a"
    assert "alarm" in fields["note"] and fields["certificate"].endswith("gone.crt")
