"""gateway.yaml's settings an operator sets per node or keeps secret, taken from the environment.

Precedence: a variable that is set (and not empty) wins over gateway.yaml; an empty variable
counts as unset.  The two URLs hold passwords, so each may instead name a file holding it,
``<NAME>_FILE`` (the convention of the official postgres and rabbitmq images, and what compose
secrets, Kubernetes Secret volumes and systemd's LoadCredential= give): the file's text, its
final line break taken off, is the value.  Setting both ``NAME`` and ``NAME_FILE`` is an error.

Every other secret is a file already, named in gateway.yaml (the SFTP host key, signing and
TLS keys and their ``key_password_file``, the console users file, agencies' ``password_file``):
mount those, never bake them into an image.

Strict: a value that does not parse is a ConfigError naming the variable and the reason (a
secret's value is never repeated in it), and a variable for a section gateway.yaml does not
have (``GATEWAY_AS2_PORT`` without ``as2:``) is refused rather than ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from gateway.config.files import read_text
from gateway.config.settings import Settings
from gateway.errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)

DATABASE_URL_VARIABLE = "GATEWAY_DATABASE_URL"
AMQP_URL_VARIABLE = "GATEWAY_AMQP_URL"
FILE_SUFFIX = "_FILE"

#: Secret variable -> (section of gateway.yaml or None for the top level, field, URL schemes).
SECRETS: dict[str, tuple[str | None, str, tuple[str, ...]]] = {
    DATABASE_URL_VARIABLE: (None, "database_url", ("postgresql://", "postgres://")),
    AMQP_URL_VARIABLE: ("amqp", "url", ("amqp://", "amqps://")),
}

#: Per-node variable -> (section of gateway.yaml or None for the top level, field).
NODE_SETTINGS: dict[str, tuple[str | None, str]] = {
    "GATEWAY_LOG_LEVEL": (None, "log_level"),
    "GATEWAY_SFTP_HOST": ("sftp", "host"),
    "GATEWAY_SFTP_PORT": ("sftp", "port"),
    "GATEWAY_AS2_HOST": ("as2", "host"),
    "GATEWAY_AS2_PORT": ("as2", "port"),
    "GATEWAY_AS2_PUBLIC_URL": ("as2", "public_url"),
    "GATEWAY_CONSOLE_HOST": ("console", "host"),
    "GATEWAY_CONSOLE_PORT": ("console", "port"),
    "GATEWAY_CONSOLE_PUBLIC_ORIGIN": ("console", "public_origin"),
}


def secret_value(environ: Mapping[str, str], name: str) -> str | None:
    """``name``'s value, from the variable or from the file ``name_FILE`` names; None when
    neither is set."""
    value = environ.get(name) or None
    file_name = environ.get(name + FILE_SUFFIX) or None
    if value is not None and file_name is not None:
        raise ConfigError(f"{name} and {name}{FILE_SUFFIX} are both set: set one")
    if file_name is None:
        return value
    try:
        text = read_text(Path(file_name))
    except ConfigError as exc:
        raise ConfigError(f"{name}{FILE_SUFFIX}: {exc}") from exc
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise ConfigError(f"{name}{FILE_SUFFIX}: {file_name} is empty")
    return text


def apply_environment(settings: Settings, environ: Mapping[str, str]) -> Settings:
    """``settings`` with every variable of SECRETS and NODE_SETTINGS that is set applied."""
    for name, (section, field, schemes) in SECRETS.items():
        value = secret_value(environ, name)
        if value is None:
            continue
        where = name if environ.get(name) else name + FILE_SUFFIX
        if not value.startswith(schemes) or any(c in value for c in "\r\n\t "):
            raise ConfigError(f"{where}: not a {' or '.join(schemes)} URL without spaces "
                              "(the value is not shown: it may hold a password)")
        settings = _with(settings, section, field, value, where, secret=True)
    for name, (section, field) in NODE_SETTINGS.items():
        value = environ.get(name) or None
        if value is not None:
            settings = _with(settings, section, field, value, name, secret=False)
    return settings


def _with(settings: Settings, section: str | None, field: str, value: str, name: str, *,
          secret: bool) -> Settings:
    """``settings`` with ``section.field`` set to ``value``, validated by the section's own
    model (the same bounds and patterns as in gateway.yaml)."""
    if section is None:
        return _replaced(settings, field, value, name, secret)
    part: BaseModel | None = getattr(settings, section)
    if part is None:
        raise ConfigError(f"{name}: gateway.yaml has no {section}: section to set "
                          f"{section}.{field} in; add the section or unset {name}")
    return settings.model_copy(update={section: _replaced(part, field, value, name, secret)})


def _replaced(model: Model, field: str, value: str, name: str, secret: bool) -> Model:
    data = {key: getattr(model, key) for key in type(model).model_fields}
    data[field] = value
    try:
        return type(model).model_validate(data)
    except ValidationError as exc:
        reasons = "; ".join(error["msg"] for error in exc.errors() if field in error["loc"])
        shown = "" if secret else f"={value!r}"
        raise ConfigError(f"{name}{shown}: {reasons or exc.errors()[0]['msg']}") from exc
