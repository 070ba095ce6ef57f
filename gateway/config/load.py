"""Load gateway.yaml and every file it names into one checked, immutable GatewayConfig."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from gateway.config.environment import apply_environment
from gateway.config.files import read_text
from gateway.config.partners import (
    AgenciesFile,
    Agency,
    Partner,
    PartnersFile,
    authorized_keys_problem,
)
from gateway.config.routing import RoutingTable
from gateway.config.settings import Settings
from gateway.config.yamlfile import load_model, load_model_text, parse, place
from gateway.errors import ConfigError


@dataclass(frozen=True)
class GatewayConfig:
    source: Path
    settings: Settings
    partners: tuple[Partner, ...]
    agencies: tuple[Agency, ...]
    #: routing.yaml as loaded at start; None in a worker process of ``gateway serve
    #: --workers N``, which routes with the table the main process applied (routing_follow).
    routing_table: RoutingTable | None
    database_url: str
    amqp_url: str
    host_key_path: Path
    mailboxes_path: Path
    #: partner id -> its authorized OpenSSH public keys, as text.
    ssh_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def partner(self, partner_id: str) -> Partner | None:
        return next((p for p in self.partners if p.id == partner_id), None)

    def answer_channel(self, partner_id: str) -> str:
        """Where a partner's answers go: by AS2 when it gave an AS2 url (and this gateway
        speaks AS2), otherwise to its SFTP outbox."""
        partner = self.partner(partner_id)
        if self.settings.as2 is not None and partner is not None and \
                partner.as2 is not None and partner.as2.url is not None:
            return "as2"
        return "mailbox"

    @property
    def routing(self) -> RoutingTable:
        if self.routing_table is None:
            raise ConfigError(f"{self.routing_path}: not loaded in a worker process")
        return self.routing_table

    def partner_by_login(self, login: str) -> Partner | None:
        return next((p for p in self.partners if p.login == login), None)

    @property
    def routing_path(self) -> Path:
        return (self.source.parent / self.settings.routing).resolve()

    @property
    def partners_path(self) -> Path:
        return self.source.parent / self.settings.partners

    @property
    def xml_schemas_path(self) -> Path | None:
        xml = self.settings.xml
        return None if xml is None else self.source.parent / xml.schemas

    @property
    def mappings_path(self) -> Path | None:
        folder = self.settings.mappings
        return None if folder is None else (self.source.parent / folder).resolve()

    @property
    def agency_codes(self) -> tuple[str, ...]:
        return tuple(a.code for a in self.agencies)

    def agency(self, code: str) -> Agency | None:
        return next((a for a in self.agencies if a.code == code), None)

    @property
    def agencies_path(self) -> Path:
        return (self.source.parent / self.settings.agencies).resolve()

    def password_path(self, agency: Agency) -> Path | None:
        """Where the agency's broker password is kept (relative to agencies.yaml)."""
        if agency.password_file is None:
            return None
        return (self.agencies_path.parent / agency.password_file).resolve()

    @property
    def console_users_path(self) -> Path | None:
        """The console's users file (docs/console.md), when gateway.yaml names one."""
        console = self.settings.console
        if console is None or console.users is None:
            return None
        return (self.source.parent / console.users).resolve()

    @property
    def ca_path(self) -> Path:
        return (self.source.parent / self.settings.signing.ca).resolve()

    @property
    def signing_key_paths(self) -> tuple[tuple[Path, Path, Path | None], ...]:
        """(certificate, private key, key password file) of each signing key, in order."""
        base = self.source.parent
        return tuple(
            ((base / k.certificate).resolve(), (base / k.key).resolve(),
             None if k.key_password_file is None else (base / k.key_password_file).resolve())
            for k in self.settings.signing.keys)


def load_config(path: Path, environ: dict[str, str] | None = None, *,
                with_routing: bool = True) -> GatewayConfig:
    """gateway.yaml and the files it names.  A worker process loads it ``with_routing=False``:
    it routes with the table the main process applied, so a routing.yaml the main process
    refused after its start (and routes on without) cannot keep a worker from starting.
    The environment's settings (config.environment) take precedence over the file's."""
    env = os.environ if environ is None else environ
    path = path.resolve()
    settings = apply_environment(load_model(path, Settings), env)
    base = path.parent
    partners_path = base / settings.partners
    partners = load_model(partners_path, PartnersFile).partners
    amqp_url = settings.amqp.url
    agencies = load_agencies(base / settings.agencies, amqp_url)
    _payments_agency_known(settings, agencies, path)
    routing = load_routing(base / settings.routing, tuple(a.code for a in agencies),
                           tuple(p.id for p in partners)) if with_routing else None
    _single_windows_answerable(path, settings, partners, agencies)
    return GatewayConfig(
        source=path,
        settings=settings,
        partners=partners,
        agencies=agencies,
        routing_table=routing,
        database_url=settings.database_url,
        amqp_url=amqp_url,
        host_key_path=base / settings.sftp.host_key,
        mailboxes_path=base / settings.sftp.mailboxes,
        ssh_keys={p.id: _read_keys(p, partners_path) for p in partners},
    )


def _single_windows_answerable(path: Path, settings: Settings, partners: tuple[Partner, ...],
                               agencies: tuple[Agency, ...]) -> None:
    """With single windows to send certificates to, the agency that approves them must be one
    (docs/n2n.md): otherwise no certificate would ever go, and nothing would say why."""
    windows = [p.id for p in partners if p.single_window]
    approving = settings.n2n.approving_agency
    if windows and approving not in {a.code for a in agencies}:
        raise ConfigError(f"{path}: n2n.approving_agency: {approving!r} is no agency of "
                          f"{settings.agencies}, and partners {', '.join(windows)} are single "
                          "windows: no certificate of origin would ever be sent to them")
    if windows and settings.as2 is None:
        raise ConfigError(f"{path}: as2: partners {', '.join(windows)} are single windows, "
                          "reached by AS2: give the gateway an as2 section (docs/as2.md)")


def load_routing(path: Path, agencies: tuple[str, ...],
                 partners: tuple[str, ...] | None = None) -> RoutingTable:
    return parse_routing(read_text(path), str(path), agencies, partners)


def parse_routing(text: str, name: str, agencies: tuple[str, ...],
                  partners: tuple[str, ...] | None = None) -> RoutingTable:
    """The table's own ``lists`` go into the validation context, so that a condition naming
    "@list" is expanded (or refused) at its own line.  With ``partners``, a rule naming a
    partner that is not configured is refused (it could never match)."""
    return load_model_text(text, name, RoutingTable, context_of=lambda data: {
        "agencies": set(agencies),
        "partners": None if partners is None else set(partners),
        "lists": data.get("lists") if isinstance(data, dict) else None,
    })


def load_agencies(path: Path, amqp_url: str) -> tuple[Agency, ...]:
    """agencies.yaml, none of whose broker users is the gateway's own (``amqp_url``'s): at
    start, and whenever the answer desk reads it again."""
    agencies = load_model(path, AgenciesFile).agencies
    _gateway_user_is_no_agency(amqp_url, agencies, path)
    return agencies


def _gateway_user_is_no_agency(amqp_url: str, agencies: tuple[Agency, ...],
                               agencies_path: Path) -> None:
    """The gateway's own broker user may not be an agency's: answers are told apart by the
    user RabbitMQ validated, and the gateway's would pass for that agency's."""
    user = unquote(urlsplit(amqp_url).username or "guest")
    for agency in agencies:
        if agency.user == user:
            raise ConfigError(f"{agencies_path}: agency {agency.code!r}: broker user {user!r} "
                              "is the gateway's own (amqp.url); give the agency its own user")


def _payments_agency_known(settings: Settings, agencies: tuple[Agency, ...],
                           path: Path) -> None:
    """``payments.agency`` names an agency of agencies.yaml (the bank the instructions go to)."""
    payments = settings.payments
    if payments is None or any(a.code == payments.agency for a in agencies):
        return
    _, where = parse(read_text(path), str(path))
    raise ConfigError(f"{place(where, ('payments', 'agency'), str(path))}: agency "
                      f"{payments.agency!r} is not in {settings.agencies} (known: "
                      f"{', '.join(a.code for a in agencies)})")


def _read_keys(partner: Partner, partners_path: Path) -> tuple[str, ...]:
    keys: list[str] = []
    for index, entry in enumerate(partner.ssh_keys):
        if entry.key is not None:
            keys.append(entry.key)
            continue
        key_path = partners_path.parent / str(entry.file)
        where = f"{partners_path}: partner {partner.id!r} ssh_keys[{index}].file"
        try:
            text = read_text(key_path)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        problem = authorized_keys_problem(text)
        if problem is not None:
            raise ConfigError(f"{where}: {key_path}:{problem[0]}: {problem[1]}")
        keys.append(text.strip())
    return tuple(keys)
