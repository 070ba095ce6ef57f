"""Configuration errors name file, line and field; nothing falls back silently."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from types import FrameType

import asyncssh
import pytest

from gateway.config import partners
from gateway.config.load import load_config
from gateway.config.partners import PartnersFile
from gateway.config.yamlfile import load_model_text
from gateway.errors import ConfigError

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "demo"
ROUTING = Path(__file__).resolve().parents[2] / "routing.yaml"
PUBLIC_KEY = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return demo_config(tmp_path)


def demo_config(tmp_path: Path) -> Path:
    """The demo configuration in ``tmp_path``, with routing.yaml beside it and a real key."""
    for name in ("gateway.yaml", "partners.yaml", "agencies.yaml"):
        shutil.copy(DEMO / name, tmp_path / name)
    shutil.copy(ROUTING, tmp_path / "routing.yaml")
    text = (tmp_path / "gateway.yaml").read_text().replace("../../routing.yaml", "routing.yaml")
    (tmp_path / "gateway.yaml").write_text(text)
    partners = (tmp_path / "partners.yaml").read_text().replace(
        "- file: ../../var/demo/demo-van.key.pub", f'- key: "{PUBLIC_KEY}"')
    (tmp_path / "partners.yaml").write_text(partners)
    return tmp_path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path / "gateway.yaml", environ={})
    return str(caught.value)


def test_the_shipped_configuration_loads(config_dir: Path) -> None:
    config = load_config(config_dir / "gateway.yaml", environ={})
    assert config.agency_codes == ("customs", "quarantine", "port", "trade", "bank", "tax")
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


def test_the_payments_agency_must_be_an_agency(config_dir: Path) -> None:
    config = load_config(config_dir / "gateway.yaml", environ={})
    assert config.settings.payments is not None
    assert (config.settings.payments.agency, config.settings.payments.release_waits_for_payment
            ) == ("bank", True)
    path = config_dir / "gateway.yaml"
    path.write_text(path.read_text().replace("  agency: bank", "  agency: piggy-bank"))
    message = error_of(config_dir)
    line = int(message.split("gateway.yaml:")[1].split(":")[0])
    assert "payments.agency: agency 'piggy-bank' is not in agencies.yaml" in message
    assert "piggy-bank" in path.read_text().splitlines()[line - 1]
    path.write_text(path.read_text().replace("release_waits_for_payment: true",
                                             "release_waits_for_payment: yes-please"))
    assert "payments.release_waits_for_payment" in error_of(config_dir)


def test_unknown_keys_are_refused(config_dir: Path) -> None:
    path = config_dir / "gateway.yaml"
    path.write_text(path.read_text().replace("log_level: INFO", "log_level: INFO\nlog_levle: X"))
    message = error_of(config_dir)
    assert "gateway.yaml:" in message and "log_levle" in message and "unknown field" in message


def test_the_mailbox_store_is_disk_or_database(config_dir: Path) -> None:
    path = config_dir / "gateway.yaml"
    assert load_config(path, environ={}).settings.sftp.mailbox_store == "disk"  # the demo's
    text = path.read_text()
    path.write_text(text.replace("mailbox_store: disk", "mailbox_store: database"))
    assert load_config(path, environ={}).settings.sftp.mailbox_store == "database"
    path.write_text(text.replace("mailbox_store: disk", "mailbox_store: s3"))
    message = error_of(config_dir)
    assert "gateway.yaml:" in message and "sftp.mailbox_store" in message
    assert "'disk' or 'database'" in message
    path.write_text(text.replace("mailbox_store: disk",
                                 "mailbox_store: database\n  mailbox_retention_days: 0"))
    assert "sftp.mailbox_retention_days" in error_of(config_dir)


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


# Partners: a partner only acts as itself (DESIGN rule 5), and what names a mailbox or a login
# is exactly what it looks like.

SECOND_PARTNER = """  - id: other-van
    name: Other
    edifact_ids:
      - id: {sender}
    ssh_keys:
      - key: "{key}"
"""


def add_partner(config_dir: Path, sender: str, **replace: str) -> Path:
    partners = config_dir / "partners.yaml"
    entry = SECOND_PARTNER.format(sender=sender, key=PUBLIC_KEY)
    for old, new in replace.items():
        entry = entry.replace(old, new)
    partners.write_text(partners.read_text() + entry)
    return partners


def line_of(message: str, name: str) -> int:
    return int(message.split(f"{name}:")[1].split(":")[0])


def test_two_partners_claiming_one_sender_are_refused_at_the_second(config_dir: Path) -> None:
    partners = add_partner(config_dir, "DEMOVAN")
    message = error_of(config_dir)
    assert "partners[1]" in message
    assert "UNB sender DEMOVAN is already claimed by partner 'demo-van'" in message
    assert partners.read_text().splitlines()[line_of(message, "partners.yaml") - 1] \
        == "  - id: other-van"


@pytest.mark.parametrize(("first", "second", "clash"), [
    ("", "\n        qualifier: ZZ", True),  # no qualifier: every qualifier
    ("\n        qualifier: ZZ", "", True),
    ("\n        qualifier: ZZ", "\n        qualifier: ZZ", True),
    ("\n        qualifier: '14'", "\n        qualifier: ZZ", False),
])
def test_qualifiers_decide_whether_two_senders_overlap(config_dir: Path, first: str,
                                                       second: str, clash: bool) -> None:
    partners = config_dir / "partners.yaml"
    partners.write_text(partners.read_text().replace("- id: DEMOVAN", "- id: DEMOVAN" + first))
    add_partner(config_dir, "DEMOVAN" + second)
    if clash:
        assert "is already claimed by partner 'demo-van'" in error_of(config_dir)
    else:
        assert len(load_config(config_dir / "gateway.yaml", environ={}).partners) == 2


def test_a_login_or_id_used_twice_is_refused_at_its_partner(config_dir: Path) -> None:
    add_partner(config_dir, "OTHER", **{"name: Other": "name: Other\n    sftp_user: demo-van"})
    message = error_of(config_dir)
    assert "partners[1]" in message
    assert "login 'demo-van' is already used by partner 'demo-van'" in message
    partners = config_dir / "partners.yaml"
    partners.write_text(partners.read_text().replace("sftp_user: demo-van\n    edifact_ids:\n"
                                                     "      - id: OTHER", "edifact_ids:\n"
                                                     "      - id: OTHER").replace(
        "id: other-van", "id: demo-van"))
    assert "partner id 'demo-van' is already used" in error_of(config_dir)


def partner_checks(count: int) -> int:
    """Python calls made in config/partners.py while ``count`` partners are validated."""
    text = "partners:\n" + "".join(f"  - id: p{n}\n    name: P{n}\n    edifact_ids: "
                                   f"[{{id: S{n}}}, {{id: T{n}, qualifier: ZZ}}]\n"
                                   for n in range(count))
    calls = 0

    def profile(frame: FrameType, event: str, arg: object) -> None:
        nonlocal calls
        if event == "call" and frame.f_code.co_filename == partners.__file__:
            calls += 1

    sys.setprofile(profile)
    try:
        assert len(load_model_text(text, "partners.yaml", PartnersFile).partners) == count
    finally:
        sys.setprofile(None)
    return calls


def test_partners_are_checked_against_each_other_in_linear_work() -> None:
    """Each partner was compared with every earlier one: 4,000 partners took 20 s to load.
    Four times the partners is four times the checks (it was sixteen)."""
    assert partner_checks(200) <= 5 * partner_checks(50)


@pytest.mark.parametrize(("old", "new", "field"), [
    ("id: demo-van", 'id: "demo-van\\n"', "partners[0].id"),  # re.match + "$" took it
    ("sftp_user: demo-van", 'sftp_user: "demo van"', "partners[0].sftp_user"),
    ("sftp_user: demo-van", 'sftp_user: "demo-van\\n"', "partners[0].sftp_user"),
    ("- id: DEMOVAN", '- id: " DEMOVAN"', "partners[0].edifact_ids[0].id"),
    ("- id: DEMOVAN", '- id: "DEMOVAN\\t"', "partners[0].edifact_ids[0].id"),
])
def test_names_are_exactly_what_they_look_like(config_dir: Path, old: str, new: str,
                                               field: str) -> None:
    partners = config_dir / "partners.yaml"
    partners.write_text(partners.read_text().replace(old, new))
    assert "partners.yaml:" in error_of(config_dir) and field in error_of(config_dir)


def test_a_number_for_a_sender_asks_for_quotes(config_dir: Path) -> None:
    partners = config_dir / "partners.yaml"
    partners.write_text(partners.read_text().replace("- id: DEMOVAN", "- id: 0412"))
    message = error_of(config_dir)  # 0412 is the octal 266 to YAML 1.1
    assert "partners.yaml:8:" in message and "write the identification in quotes" in message


def test_a_key_that_does_not_parse_is_refused_at_its_line(config_dir: Path) -> None:
    partners = config_dir / "partners.yaml"
    partners.write_text(partners.read_text().replace(PUBLIC_KEY, PUBLIC_KEY[:-12]))
    message = error_of(config_dir)
    assert "partners.yaml:13:" in message and "ssh_keys[0].key" in message
    assert "not an OpenSSH public key" in message


def test_a_private_key_is_not_taken_for_a_public_one(config_dir: Path) -> None:
    private = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    (config_dir / "van.key").write_text(private)
    partners = config_dir / "partners.yaml"
    partners.write_text(partners.read_text().replace(f'- key: "{PUBLIC_KEY}"', "- file: van.key"))
    message = error_of(config_dir)
    assert "ssh_keys[0].file" in message and "van.key:1: this is a private key" in message


def test_a_mangled_line_in_a_key_file_is_named(config_dir: Path) -> None:
    """asyncssh skips a line it cannot read when another line is good: the partner's second
    key was silently ignored."""
    (config_dir / "van.pub").write_text(f"{PUBLIC_KEY}\n# a comment\n{PUBLIC_KEY[:-12]}\n")
    partners = config_dir / "partners.yaml"
    partners.write_text(partners.read_text().replace(f'- key: "{PUBLIC_KEY}"', "- file: van.pub"))
    assert "van.pub:3: not an OpenSSH public key" in error_of(config_dir)
    (config_dir / "van.pub").write_bytes(b"\xff\xfe" + PUBLIC_KEY.encode("utf-16-le"))
    assert "van.pub:1:1: not UTF-8" in error_of(config_dir)  # was a UnicodeDecodeError
    (config_dir / "van.pub").write_text("  \n")
    assert "van.pub:1: no public key in it" in error_of(config_dir)


# gateway.yaml


@pytest.mark.parametrize(("line", "field"), [
    ("gateway_id: SWGATEWAY ", None),  # YAML strips a plain scalar: fine
    ('gateway_id: "SWGATEWAY "', "gateway_id"),  # the partner's recipient would never match
    ('gateway_id: ""', "gateway_id"),
    ('gateway_id: "SWGATEWAY\\n"', "gateway_id"),
    ("gateway_id: swgateway", "gateway_id"),  # not level A: a UNOA partner could not read it
    ('gateway_id_qualifier: "ZZ\\n"', "gateway_id_qualifier"),
    ("routing_reload_seconds: 0.000001", "routing_reload_seconds"),  # a busy loop
    ("routing_reload_seconds: .inf", "routing_reload_seconds"),  # never looks again
    ("routing_settle_seconds: -1", "routing_settle_seconds"),
])
def test_gateway_settings_that_would_fool_the_gateway(config_dir: Path, line: str,
                                                      field: str | None) -> None:
    path = config_dir / "gateway.yaml"
    key = line.split(":")[0]
    text = "\n".join(x for x in path.read_text().splitlines() if not x.startswith(key + ":"))
    path.write_text(text + "\n" + line + "\n")
    if field is None:
        load_config(path, environ={})
    else:
        message = error_of(config_dir)
        assert "gateway.yaml:" in message and field in message


# Other patterns of gateway/config: each matched whole, ASCII digits only.


@pytest.mark.parametrize(("field", "value"), [
    ("release", "D96B\n"), ("release", "D٩٦B"),
    ("format_default", "102\n"), ("format_default", "١٠٢"),
])
def test_mapping_patterns_are_matched_whole(field: str, value: str) -> None:
    from pydantic import ValidationError

    from gateway.config.mappings import FieldRule, MappingFile

    with pytest.raises(ValidationError):
        if field == "release":
            MappingFile(syntax="EDIFACT", message="CUSDEC", release=value, kind="x", fields={})
        else:
            FieldRule(path="DTM/C507/2380", format_default=value)
