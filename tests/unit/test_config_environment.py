"""Configuration by environment (config/environment.py): the URLs from a variable or a mounted
file (*_FILE), per-node listener settings, env over gateway.yaml, and every bad value refused
naming the variable, never showing a secret."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.config.load import load_config
from gateway.errors import ConfigError
from tests.unit.test_config import demo_config

SECRET_URL = "postgresql://gateway:s3cret-pw@db.example:5432/gateway"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return demo_config(tmp_path) / "gateway.yaml"


def refused(config_file: Path, environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(config_file, environ=environ)
    return str(caught.value)


def test_without_variables_the_file_holds(config_file: Path) -> None:
    config = load_config(config_file, environ={})
    assert config.database_url == "postgresql://postgres:postgres@127.0.0.1:5432/gateway"
    assert config.settings.sftp.port == 2222 and config.settings.as2 is not None
    assert config.settings.as2.host == "127.0.0.1"


def test_urls_from_mounted_files_with_their_line_break_taken_off(
        config_file: Path, tmp_path: Path) -> None:
    (tmp_path / "db-url").write_text(SECRET_URL + "\n")
    (tmp_path / "amqp-url").write_text("amqps://gw:pw@mq-0.example:5671/\r\n")
    config = load_config(config_file, environ={
        "GATEWAY_DATABASE_URL_FILE": str(tmp_path / "db-url"),
        "GATEWAY_AMQP_URL_FILE": str(tmp_path / "amqp-url")})
    assert config.database_url == SECRET_URL
    assert config.amqp_url == "amqps://gw:pw@mq-0.example:5671/"
    assert config.settings.database_url == config.database_url  # one value everywhere
    assert config.settings.amqp.url == config.amqp_url


def test_a_variable_and_its_file_together_are_refused(config_file: Path, tmp_path: Path) -> None:
    (tmp_path / "db-url").write_text(SECRET_URL)
    message = refused(config_file, {"GATEWAY_DATABASE_URL": SECRET_URL,
                                    "GATEWAY_DATABASE_URL_FILE": str(tmp_path / "db-url")})
    assert "GATEWAY_DATABASE_URL and GATEWAY_DATABASE_URL_FILE are both set" in message


@pytest.mark.parametrize("content", ["", "\n"])
def test_an_empty_secret_file_is_refused(config_file: Path, tmp_path: Path,
                                         content: str) -> None:
    (tmp_path / "amqp-url").write_text(content)
    message = refused(config_file, {"GATEWAY_AMQP_URL_FILE": str(tmp_path / "amqp-url")})
    assert message.startswith("GATEWAY_AMQP_URL_FILE: ") and "is empty" in message


def test_a_missing_secret_file_names_the_variable_and_the_path(
        config_file: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "db-url"
    message = refused(config_file, {"GATEWAY_DATABASE_URL_FILE": str(missing)})
    assert message.startswith("GATEWAY_DATABASE_URL_FILE: ") and str(missing) in message


def test_a_fifo_is_refused_not_waited_on(config_file: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "db-url"
    os.mkfifo(fifo)
    message = refused(config_file, {"GATEWAY_DATABASE_URL_FILE": str(fifo)})
    assert message.startswith("GATEWAY_DATABASE_URL_FILE: ")


@pytest.mark.parametrize(("variable", "value"), [
    ("GATEWAY_DATABASE_URL", "mysql://gateway:s3cret-pw@db/gateway"),
    ("GATEWAY_DATABASE_URL", "postgresql://gateway:s3cret-pw@db/gateway\nx"),
    ("GATEWAY_AMQP_URL", "http://gateway:s3cret-pw@mq/"),
])
def test_a_url_that_is_not_one_is_refused_without_showing_it(
        config_file: Path, variable: str, value: str) -> None:
    message = refused(config_file, {variable: value})
    assert message.startswith(f"{variable}: not a ") and "s3cret" not in message


def test_a_bad_url_in_a_file_names_the_file_variable(config_file: Path, tmp_path: Path) -> None:
    (tmp_path / "db-url").write_text("gateway:s3cret-pw@db")
    message = refused(config_file, {"GATEWAY_DATABASE_URL_FILE": str(tmp_path / "db-url")})
    assert message.startswith("GATEWAY_DATABASE_URL_FILE: not a ") and "s3cret" not in message


def test_node_settings_override_the_file(config_file: Path) -> None:
    settings = load_config(config_file, environ={
        "GATEWAY_SFTP_HOST": "0.0.0.0", "GATEWAY_SFTP_PORT": "2022",
        "GATEWAY_AS2_HOST": "0.0.0.0", "GATEWAY_AS2_PORT": "8090",
        "GATEWAY_AS2_PUBLIC_URL": "https://as2.example/as2",
        "GATEWAY_CONSOLE_HOST": "0.0.0.0", "GATEWAY_CONSOLE_PORT": "9081",
        "GATEWAY_CONSOLE_PUBLIC_ORIGIN": "https://console.example",
        "GATEWAY_LOG_LEVEL": "WARNING"}).settings
    assert (settings.sftp.host, settings.sftp.port) == ("0.0.0.0", 2022)
    assert settings.sftp.mailboxes == "../../var/mailboxes"  # the rest of the section stays
    assert settings.as2 is not None and settings.console is not None
    assert (settings.as2.host, settings.as2.port, settings.as2.public_url) == (
        "0.0.0.0", 8090, "https://as2.example/as2")
    assert settings.as2.id == "SWGATEWAY"
    assert (settings.console.host, settings.console.port) == ("0.0.0.0", 9081)
    assert settings.console.public_origin == "https://console.example"
    assert settings.console.users == "../../var/demo/console-users.yaml"
    assert settings.log_level == "WARNING"


def test_an_empty_variable_counts_as_unset(config_file: Path) -> None:
    settings = load_config(config_file, environ={"GATEWAY_SFTP_PORT": "",
                                                 "GATEWAY_DATABASE_URL": ""}).settings
    assert settings.sftp.port == 2222 and settings.database_url.startswith("postgresql://")


@pytest.mark.parametrize(("variable", "value", "reason"), [
    ("GATEWAY_SFTP_PORT", "twenty-two", "valid integer"),
    ("GATEWAY_SFTP_PORT", "70000", "less than or equal to 65535"),
    ("GATEWAY_AS2_PUBLIC_URL", "ftp://as2.example", "should match pattern"),
    ("GATEWAY_CONSOLE_PUBLIC_ORIGIN", "https://console.example/path", "should match pattern"),
    ("GATEWAY_LOG_LEVEL", "LOUD", "'DEBUG', 'INFO', 'WARNING' or 'ERROR'"),
])
def test_a_node_setting_that_does_not_parse_names_the_variable(
        config_file: Path, variable: str, value: str, reason: str) -> None:
    message = refused(config_file, {variable: value})
    assert message.startswith(f"{variable}={value!r}: ") and reason in message


def test_a_setting_for_a_missing_section_is_refused(config_file: Path) -> None:
    text = config_file.read_text()
    start = text.index("\nas2:\n")
    end = text.index("\n# The ops console")
    config_file.write_text(text[:start] + text[end:])
    assert load_config(config_file, environ={}).settings.as2 is None
    message = refused(config_file, {"GATEWAY_AS2_PORT": "8090"})
    assert message.startswith("GATEWAY_AS2_PORT: ") and "no as2: section" in message
