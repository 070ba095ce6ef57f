"""``gateway agencies provision``: one RabbitMQ user per agency, allowed to act only as itself.

For each agency of agencies.yaml: its password file is created when missing (random, 0600,
synced), its broker user (``broker_user``, default the code) is created or given that
password, and on the virtual host of the gateway's ``amqp.url`` it may

- configure nothing (``^$``): the gateway declares every exchange and queue;
- write only to the responses exchange, and there (topic permissions) only with its own code
  as the routing key: it cannot answer as another agency, nor publish to a queue directly;
- read only its own queue (``<queue_prefix><code>``), and bind nothing to the exchange.

RabbitMQ also checks every answer's ``user_id`` against the connection's user, which is how
the gateway knows who answered (docs/answers.md).

It runs ``rabbitmqctl`` when that is on the PATH and works (root on the broker's host), with
each password on its standard input (``add_user`` and ``change_password`` read it there when
it is left off the command line, where ``ps`` would show it); else the management HTTP API,
with the gateway's own AMQP credentials; else it says what to run by hand.  Running it again
sets the same state.  Each agency's login is tried over AMQP afterwards: a password the broker
at ``amqp.url`` does not take (rabbitmqctl managing another node) is an error, never a silent
success."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

import aio_pika
import aiormq

from gateway.agency.credentials import (
    agency_url,
    ensure_password_file,
    password_of,
    user_of,
    vhost_of,
)
from gateway.app.broker_admin import BrokerAdmin, Grants, ManagementApi, RabbitmqCtl
from gateway.bus.topology import BROKER_ERRORS
from gateway.config.broker_urls import broker_urls
from gateway.config.load import GatewayConfig
from gateway.errors import BusError, ConfigError
from gateway.logs import redact

MANAGEMENT_PORT = 15672


@dataclass(frozen=True, slots=True)
class Account:
    """An agency's broker user and the password it logs in with."""

    code: str
    user: str
    password: str | None
    #: Where the password is kept, and whether the file was made now.
    password_path: Path | None = None
    new_password: bool = False


def _pcre(text: str) -> str:
    """``text`` as a literal in a RabbitMQ permission pattern (Erlang ``re``, PCRE): every
    character that is not a letter, digit or underscore escaped."""
    return re.sub(r"(\W)", r"\\\1", text)


def grants_for(config: GatewayConfig, code: str) -> Grants:
    amqp = config.settings.amqp
    exchange = amqp.responses_exchange
    # Answers, and licences (docs/licences.md): on both only with its own code as the key.
    write = f"^{_pcre(exchange)}$" if amqp.licences_exchange == exchange else (
        f"^(?:{_pcre(exchange)}|{_pcre(amqp.licences_exchange)})$")
    return Grants(vhost=vhost_of(config.amqp_url), configure="^$", write=write,
                  read=f"^{_pcre(amqp.queue_prefix + code)}$",
                  exchange=exchange, topic_write=f"^{_pcre(code)}$", topic_read="^$",
                  more_exchanges=(amqp.licences_exchange,)
                  if amqp.licences_exchange != exchange else ())


def accounts_of(config: GatewayConfig) -> list[Account]:
    """Every agency's account, its password file created when missing."""
    accounts = []
    for agency in config.agencies:
        path = config.password_path(agency)
        if path is None:
            accounts.append(Account(agency.code, agency.user, None))
            continue
        password, new = ensure_password_file(path)
        accounts.append(Account(agency.code, agency.user, password, path, new))
    return accounts


async def provision(config: GatewayConfig, out: TextIO, err: TextIO, *,
                    management_url: str | None = None, node: str | None = None,
                    rabbitmqctl: str = "rabbitmqctl") -> int:
    """The command: 0 when every agency is provisioned, 1 (with what to run by hand) when no
    way to manage the broker works or the broker refused."""
    accounts = accounts_of(config)
    management = management_url or default_management_url(config.amqp_url)
    tried: list[str] = []
    for admin in (RabbitmqCtl(rabbitmqctl, node),
                  ManagementApi(management, user_of(config.amqp_url),
                                password_of(config.amqp_url))):
        if isinstance(admin, RabbitmqCtl) and not admin.available():
            tried.append(f"{rabbitmqctl}: not on the PATH")
            continue
        try:
            users = await admin.users()
        except BusError as exc:
            tried.append(str(exc))
            continue
        try:
            for line in await provision_accounts(config, accounts, admin, users):
                out.write(line + "\n")
        except BusError as exc:
            err.write(f"gateway: provisioning through {admin.name} failed: {exc}\n")
            err.write(manual_steps(config, accounts))
            return 1
        return 0
    err.write("gateway: cannot manage RabbitMQ's users here:\n"
              + "".join(f"  - {why}\n" for why in tried))
    err.write(manual_steps(config, accounts))
    return 1


def default_management_url(amqp_url: str) -> str:
    host = urlsplit(broker_urls(amqp_url)[0]).hostname or "localhost"  # a cluster: its first
    return f"http://{f'[{host}]' if ':' in host else host}:{MANAGEMENT_PORT}"


async def provision_accounts(config: GatewayConfig, accounts: list[Account],
                             admin: BrokerAdmin,
                             users: dict[str, tuple[str, ...]] | None = None) -> list[str]:
    """Create or update each account's user and permissions; one line per account saying
    what it may do.  BusError when the broker refuses."""
    known = await admin.users() if users is None else users
    return [await _provision_one(config, account, admin, known) for account in accounts]


async def _provision_one(config: GatewayConfig, account: Account, admin: BrokerAdmin,
                         known: dict[str, tuple[str, ...]]) -> str:
    if account.user not in known:
        if account.password is None:
            raise ConfigError(f"{config.agencies_path}: agency {account.code!r} has no "
                              f"password_file and broker user {account.user!r} does not "
                              "exist: give it a password_file")
        created = await admin.add_user(account.user, account.password)
    else:
        created = False
        if known[account.user]:  # e.g. administrator: an agency is nobody's administrator
            await admin.clear_tags(account.user)
    grants = grants_for(config, account.code)
    await admin.grant(account.user, grants)
    if account.password is not None:
        await _password_in_force(config, account, admin, fresh=created)
    return _described(account, grants, created)


async def _password_in_force(config: GatewayConfig, account: Account, admin: BrokerAdmin,
                             fresh: bool) -> None:
    """The broker the gateway uses takes the account's password (set it when not)."""
    assert account.password is not None
    url = agency_url(config.amqp_url, account.user, account.password)
    if not fresh:
        if await logs_in(url) is True:
            return
        await admin.change_password(account.user, account.password)
    if await logs_in(url) is False:
        raise BusError(f"{admin.name} set the password of {account.user!r}, but RabbitMQ at "
                       f"{redact(url)} refuses it: does {admin.name} manage another broker? "
                       "(rabbitmqctl: --node NAME)")


async def logs_in(url: str) -> bool | None:
    """Whether the broker takes the URL's user and password; None when it cannot be told
    (the broker is unreachable)."""
    for broker in broker_urls(url):  # the first broker of a cluster that answers tells
        try:
            connection = await aio_pika.connect(broker, timeout=10)
        except aiormq.exceptions.ProbableAuthenticationError:
            return False
        except BROKER_ERRORS:
            continue
        await connection.close()
        return True
    return None


def _described(account: Account, grants: Grants, created: bool) -> str:
    password = "" if account.password_path is None else (
        f"; password {'created in' if account.new_password else 'from'} "
        f"{account.password_path}")
    return (f"{account.code}: user {account.user!r} {'created' if created else 'updated'}"
            f"{password}; on vhost {grants.vhost!r} may read {grants.read}, write "
            f"{grants.write}, configure {grants.configure}; on {grants.exchange!r} publish "
            f"with routing keys {grants.topic_write} only")


def manual_steps(config: GatewayConfig, accounts: list[Account]) -> str:
    """What an administrator of the broker runs to do the same by hand."""
    lines = [f"Run these as root on the host of RabbitMQ at {redact(config.amqp_url)} (each "
             "password is read from its file, never shown), or enable the management plugin "
             "(rabbitmq-plugins enable rabbitmq_management) and run `gateway agencies "
             "provision --management-url URL`:"]
    for account in accounts:
        grants = grants_for(config, account.code)
        if account.password_path is not None:
            lines.append(f"  rabbitmqctl add_user {shlex.quote(account.user)} < "
                         f"{shlex.quote(str(account.password_path))}"
                         "   # change_password when the user exists")
        lines.append("  rabbitmqctl set_permissions -p " + " ".join(shlex.quote(a) for a in (
            grants.vhost, account.user, grants.configure, grants.write, grants.read)))
        lines += ["  rabbitmqctl set_topic_permissions -p " + " ".join(
            shlex.quote(a) for a in (grants.vhost, account.user, exchange,
                                     grants.topic_write, grants.topic_read))
            for exchange in grants.exchanges]
    return "\n".join(lines) + "\n"

