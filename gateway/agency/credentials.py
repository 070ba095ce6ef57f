"""An agency's broker password, kept in its ``password_file`` (agencies.yaml), and the AMQP URL
it connects with: the host, port and virtual host of the gateway's ``amqp.url``, with the
agency's own user and password (never the gateway's: an answer is taken from the user
RabbitMQ validated, and the gateway's user is no agency's)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from gateway.config.broker_urls import with_credentials
from gateway.config.load import GatewayConfig
from gateway.config.partners import Agency
from gateway.errors import ConfigError
from gateway.logs import redact
from gateway.transports.durable import make_folder, write_file

#: Bytes of randomness in a new password (written as 32 URL-safe characters).
PASSWORD_BYTES = 24
#: A password file larger than this is no password file.
MAX_PASSWORD_FILE_BYTES = 4096


def read_password(path: Path) -> str:
    """The password in ``path``: its first line without the line end.  rabbitmqctl reads a
    password as one line from its standard input, so a password holding a line break or
    another control character could never be set: refused."""
    try:
        data = path.read_bytes()[:MAX_PASSWORD_FILE_BYTES + 1]
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the agency's password: {exc.strerror} "
                          "(`gateway agencies provision` creates it)") from exc
    if len(data) > MAX_PASSWORD_FILE_BYTES:
        raise ConfigError(f"{path}: larger than a password file may be")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: the password is not UTF-8") from exc
    password = text.removesuffix("\n").removesuffix("\r")
    if not password:
        raise ConfigError(f"{path}: the password file is empty")
    if not password.isprintable():
        raise ConfigError(f"{path}: the password holds a line break or control character")
    return password


def ensure_password_file(path: Path) -> tuple[str, bool]:
    """(the password in ``path``, whether it was created now).  A new one is random, written
    0600 and durably (synced, with its folder) before any broker user gets it: a password the
    broker has and the disk lost would lock the agency out."""
    if path.exists():
        return read_password(path), False
    make_folder(path.parent)
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    created = write_file(path, f"{password}\n".encode(), mode=0o600, keep_existing=True)
    if not created:  # another provisioning made it meanwhile: theirs wins
        return read_password(path), False
    return password, True


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where an agency connects and what it uses there."""

    url: str
    code: str
    #: The broker user (``Agency.user``): every answer's ``user_id``.
    user: str
    queue: str
    responses_exchange: str
    #: Where a licensing agency publishes its licences (docs/licences.md).
    licences_exchange: str = "gateway.licences"

    def __repr__(self) -> str:  # never the password (logs, tracebacks)
        return (f"Endpoint(url={redact(self.url)!r}, code={self.code!r}, user={self.user!r}, "
                f"queue={self.queue!r}, responses_exchange={self.responses_exchange!r})")


def endpoint_of(config: GatewayConfig, code: str, password: str | None = None) -> Endpoint:
    """Agency ``code``'s endpoint from the gateway configuration; the password is read from
    its ``password_file`` unless given."""
    agency = agency_of(config, code)
    if password is None:
        path = config.password_path(agency)
        if path is None:
            raise ConfigError(f"{config.agencies_path}: agency {code!r} has no password_file: "
                              "give it one and run `gateway agencies provision`")
        password = read_password(path)
    amqp = config.settings.amqp
    return Endpoint(url=agency_url(config.amqp_url, agency.user, password), code=code,
                    user=agency.user, queue=f"{amqp.queue_prefix}{code}",
                    responses_exchange=amqp.responses_exchange,
                    licences_exchange=amqp.licences_exchange)


def agency_of(config: GatewayConfig, code: str) -> Agency:
    agency = config.agency(code)
    if agency is None:
        known = ", ".join(config.agency_codes)
        raise ConfigError(f"unknown agency {code!r} (known: {known})")
    return agency


def agency_url(gateway_url: str, user: str, password: str) -> str:
    """``gateway_url`` (scheme, every broker it names, virtual host, query) with ``user`` and
    ``password`` instead of the gateway's credentials."""
    return with_credentials(gateway_url, f"{quote(user, safe='')}:{quote(password, safe='')}")


def vhost_of(url: str) -> str:
    """The virtual host an AMQP URL names, as aiormq reads it: "/" for no path or "/"."""
    path = urlsplit(url).path
    if path in ("", "/"):
        return "/"
    return unquote(path[1:])


def user_of(url: str) -> str:
    return unquote(urlsplit(url).username or "guest")


def password_of(url: str) -> str:
    return unquote(urlsplit(url).password or "guest")

