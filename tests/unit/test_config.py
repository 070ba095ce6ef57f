"""Configuration errors name file, line and field; nothing falls back silently."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.config.load import load_config
from gateway.errors import ConfigError

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "demo"
ROUTING = Path(__file__).resolve().parents[2] / "routing.yaml"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    for name in ("gateway.yaml", "partners.yaml", "agencies.yaml"):
        shutil.copy(DEMO / name, tmp_path / name)
    shutil.copy(ROUTING, tmp_path / "routing.yaml")
    text = (tmp_path / "gateway.yaml").read_text().replace("../../routing.yaml", "routing.yaml")
    (tmp_path / "gateway.yaml").write_text(text)
    partners = (tmp_path / "partners.yaml").read_text().replace(
        "- file: ../../var/demo/demo-van.key.pub",
        '- key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForConfigTestsOnly0000000000 t"')
    (tmp_path / "partners.yaml").write_text(partners)
    return tmp_path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path / "gateway.yaml", environ={})
    return str(caught.value)


def test_the_shipped_configuration_loads(config_dir: Path) -> None:
    config = load_config(config_dir / "gateway.yaml", environ={})
    assert config.agency_codes == ("customs", "quarantine", "port")
    assert config.partner("demo-van").may_send_as("DEMOVAN", "ZZZ")
    assert next(r.name for r in config.routing.rules) == "customs-receives-every-declaration"


def test_environment_overrides_the_urls(config_dir: Path) -> None:
    config = load_config(config_dir / "gateway.yaml", environ={
        "GATEWAY_DATABASE_URL": "postgresql://x@h/db", "GATEWAY_AMQP_URL": "amqp://y@h/"})
    assert (config.database_url, config.amqp_url) == ("postgresql://x@h/db", "amqp://y@h/")


def test_unknown_agency_in_routing_names_file_line_and_field(config_dir: Path) -> None:
    routing = config_dir / "routing.yaml"
    routing.write_text(routing.read_text().replace("deliver: [quarantine]",
                                                   "deliver: [quarantine, pest-control]"))
    message = error_of(config_dir)
    assert "routing.yaml:" in message and "rules[1].deliver" in message
    assert "unknown agency 'pest-control'" in message
    line = int(message.split("routing.yaml:")[1].split(":")[0])
    assert "pest-control" in routing.read_text().splitlines()[line - 1]


def test_unknown_keys_are_refused(config_dir: Path) -> None:
    path = config_dir / "gateway.yaml"
    path.write_text(path.read_text().replace("log_level: INFO", "log_level: INFO\nlog_levle: X"))
    message = error_of(config_dir)
    assert "gateway.yaml:" in message and "log_levle" in message and "unknown field" in message


def test_bad_hs_chapter_range(config_dir: Path) -> None:
    routing = config_dir / "routing.yaml"
    routing.write_text(routing.read_text().replace('"01-24"', '"24-01"'))
    assert "not a range of HS chapters" in error_of(config_dir)


def test_duplicate_keys_and_broken_yaml(config_dir: Path) -> None:
    agencies = config_dir / "agencies.yaml"
    agencies.write_text("agencies:\n  - code: customs\n    code: again\n    name: x\n")
    assert "agencies.yaml:3:5 agencies[0].code: key given twice" in error_of(config_dir)
    agencies.write_text("agencies: [\n")
    assert "agencies.yaml:" in error_of(config_dir) and "not valid YAML" in error_of(config_dir)


def test_missing_key_file_is_named(config_dir: Path) -> None:
    partners = config_dir / "partners.yaml"
    text = partners.read_text()
    start = text.index("- key:")
    partners.write_text(text[:start] + "- file: nowhere.pub\n")
    message = error_of(config_dir)
    assert "partners.yaml" in message and "nowhere.pub" in message


def test_partner_ids_must_name_a_mailbox(config_dir: Path) -> None:
    partners = config_dir / "partners.yaml"
    partners.write_text(partners.read_text().replace("id: demo-van", "id: ../etc"))
    assert "partners[0].id" in error_of(config_dir)


def test_country_codes_are_not_booleans() -> None:
    """YAML 1.1 reads NO, yes, on and off as booleans; our files read them as text."""
    from gateway.config.yamlfile import parse

    data, _ = parse("countries: [NO, ON, YES, off]\nflag: true\nother: False\n", "x.yaml")
    assert data == {"countries": ["NO", "ON", "YES", "off"], "flag": True, "other": False}
