"""``gateway.yaml``: where the gateway listens, what it talks to and where its files are.

Relative paths are taken from the directory of the file that names them.  Environment
variables override the URLs (GATEWAY_DATABASE_URL, GATEWAY_AMQP_URL, or their *_FILE) and the
listeners' addresses per node: config/environment.py.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.config.partners import AS2_NAME


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SftpSettings(Strict):
    """Where the SFTP listener is, and what one partner (or anyone who reaches the port) may
    hold of it at once; beyond a limit the request is refused with a message naming it."""

    host: str = "127.0.0.1"
    port: int = Field(default=2222, ge=0, le=65535)
    host_key: str = Field(description="generated on first start when missing, then kept")
    mailboxes: str = Field(description="one directory per partner with inbox/ and outbox/")
    mailbox_store: Literal["disk", "database"] = Field(
        default="disk", description="where the answers in outbox/ are kept: disk (in the "
        "mailboxes directory, this node's own) or database (table mailbox_files, which every "
        "node on the database serves: several nodes, any one answering any partner)")
    mailbox_retention_days: float = Field(
        default=30, gt=0, description="mailbox_store database: a file the partner deleted is "
        "purged from the database this many days later")
    login_timeout_seconds: float = Field(
        default=30, gt=0, le=600, description="a connection that has not logged in by then "
        "is closed")
    max_unauthenticated: int = Field(
        default=64, ge=1, description="connections still logging in at once, whoever makes "
        "them; beyond it one is always dropped (SSH disconnect reason 12): the newest of the "
        "address that holds the most, the new one when that is its own address (OpenSSH's "
        "MaxStartups full)")
    unauthenticated_drop_start: int = Field(
        default=16, ge=1, description="from this many connections logging in on (at most "
        "max_unauthenticated), each new one drops one, as above, with a chance that grows "
        "from unauthenticated_drop_rate percent to 100 at max_unauthenticated: random early "
        "drop (OpenSSH's MaxStartups start)")
    unauthenticated_drop_rate: int = Field(
        default=30, ge=0, le=100, description="the chance in percent of a drop at "
        "unauthenticated_drop_start (OpenSSH's MaxStartups rate)")
    max_unauthenticated_per_source: int = Field(
        default=16, ge=1, description="connections logging in at once from one address "
        "block (see the prefixes); more from it are disconnected at once "
        "(OpenSSH's PerSourceMaxStartups)")
    per_source_prefix_ipv4: int = Field(
        default=32, ge=0, le=32, description="the IPv4 block counted as one source")
    per_source_prefix_ipv6: int = Field(
        default=64, ge=0, le=128, description="the IPv6 block counted as one source: a /64, "
        "the smallest subnet (RFC 4291 section 2.5.4), is often one host's (RFC 8981)")
    banner_timeout_seconds: float = Field(
        default=10, gt=0, le=600, description="a connection that has not sent its SSH "
        "identification string by then (RFC 4253 section 4.2: sent as soon as it connects) "
        "is closed")
    max_connections_per_partner: int = Field(
        default=8, ge=1, description="SSH connections of one partner at once")
    max_sessions_per_partner: int = Field(
        default=8, ge=1, description="SFTP sessions of one partner at once, over all its "
        "connections (OpenSSH's ControlMaster runs several on one)")
    max_open_files: int = Field(
        default=16, ge=1, le=1024, description="per SFTP session: files and folders open, "
        "and temporary uploads waiting for their rename")
    keepalive_seconds: float = Field(
        default=30, ge=0, description="how often a silent client is asked whether it is "
        "still there; after 3 unanswered asks its connection is closed, so a partner whose "
        "network vanished gets its connections back (0: never ask)")


class AmqpSettings(Strict):
    url: str = "amqp://guest:guest@127.0.0.1:5672/"
    exchange: str = "gateway.deliveries"
    queue_prefix: str = "agency."
    responses_exchange: str = Field(
        default="gateway.responses", description="the durable topic exchange agencies publish "
        "their answers to, each with its own code as the routing key")
    responses_queue: str = Field(
        default="gateway.responses", description="the gateway's queue on the responses "
        "exchange; what cannot be read as an answer goes to <queue>.dead")
    licences_exchange: str = Field(
        default="gateway.licences", description="the durable topic exchange licensing "
        "agencies publish licences to (issue, amend, revoke), each with its own code as the "
        "routing key (docs/licences.md)")
    licences_queue: str = Field(
        default="gateway.licences", description="the gateway's queue on the licences "
        "exchange; a licence refused goes to <queue>.dead")


class SigningKeySettings(Strict):
    """One certificate and its private key (PEM files).  Several may be listed: the gateway
    signs with the valid one that became valid last, so a new certificate is added beside the
    old one, takes over on its notBefore date, and the old one is removed once it expires."""

    certificate: str
    key: str
    key_password_file: str | None = Field(
        default=None, description="a file holding the private key's password, when it has one")


class SigningSettings(Strict):
    """Every answer the gateway sends is signed (detached CMS SignedData, RFC 5652)."""

    ca: str = Field(description="the certificates partners verify our signatures against "
                    "(PEM; `gateway verify` trusts these)")
    keys: tuple[SigningKeySettings, ...] = Field(min_length=1)


class XmlSettings(Strict):
    """XML submissions: the schema registry (docs/xml.md) and what one document may cost."""

    schemas: str = Field(description="the schema registry file (xml-schemas.yaml), relative "
                         "to this file")
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1, description="larger XML "
                           "documents are refused before parsing")
    max_depth: int = Field(default=64, ge=1, le=10_000, description="deeper nesting is "
                           "refused at the element that goes too deep")
    max_elements: int = Field(default=250_000, ge=1, description="more elements are refused "
                              "while parsing, before the tree grows further")
    max_namespaces: int = Field(default=256, ge=1, description="more namespace declarations "
                                "in one document are refused while parsing")
    max_findings: int = Field(default=100, ge=1, le=10_000, description="schema violations "
                              "told one by one in an answer; the rest as a count")


class N2nSettings(Strict):
    """Certificates of origin sent to foreign single windows (docs/n2n.md)."""

    approving_agency: str = Field(default="trade", pattern=r"^[a-z][a-z0-9_-]{0,31}$",
                                  description="the agency whose decision approves a "
                                  "certificate of origin (agencies.yaml code)")
    approving_decisions: tuple[Literal["released", "accepted"], ...] = Field(
        default=("released",), min_length=1, description="its decisions that approve one: "
        "released (final); accepted only registers, so it is not one by default")
    max_attempts: int = Field(default=8, ge=1, le=1000, description="sends without a "
                              "confirming MDN before a certificate is failed (retried with "
                              "backoff 2, 4 ... 60 s until then; alarm GW-A021)")


class HttpsSettings(Strict):
    """A TLS listener beside the plain one (production: partners reach AS2 over HTTPS, RFC
    4130 section 4.2; docs/as2.md)."""

    host: str = "0.0.0.0"
    port: int = Field(default=8443, ge=0, le=65535)
    certificate: str = Field(description="PEM server certificate (chain), relative to this file")
    key: str = Field(description="its PEM private key")


class As2ServerSettings(Strict):
    """The gateway's AS2 endpoint (RFC 4130; docs/as2.md).  Messages are decrypted with, and
    MDNs and outgoing messages signed with, the ``signing`` keys (RSA keys decrypt)."""

    id: str = Field(default="SWGATEWAY", pattern=AS2_NAME,
                    description="our AS2 name: AS2-To on what partners send us")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    path: str = Field(default="/as2", pattern=r"^/[A-Za-z0-9._~/-]*$")
    https: HttpsSettings | None = None
    public_url: str | None = Field(
        default=None, pattern=r"^https?://", description="where partners reach this endpoint "
        "(asynchronous MDNs to our messages are asked for there); http://host:port/path "
        "when not given")
    receipt: Literal["sync", "async"] = Field(
        default="sync", description="the MDN we ask partners for on what we send them")
    send_timeout_seconds: float = Field(
        default=60, gt=0, le=3600, description="one POST of ours, its synchronous MDN "
        "included; longer counts as a failed send (retried with backoff)")
    async_mdn_wait_seconds: float = Field(
        default=3600, gt=0, description="how long an asynchronous MDN may take before the "
        "send is alarmed as unconfirmed")
    max_unknown_bytes: int = Field(
        default=1024 * 1024, gt=0, description="the largest request read from a sender that "
        "names no partner of ours (theirs is their partners.yaml max_bytes)")
    unwrap_processes: int = Field(
        default=2, ge=0, le=64, description="processes that decrypt, verify and decompress "
        "messages and sign MDNs, beside one for bodies over 256 KiB (docs/as2.md, Speed); "
        "0: threads of the gateway's own process, which give the crypto no second core")

    def url(self, port: int) -> str:
        """Where partners reach the endpoint (``port``: the one bound)."""
        return self.public_url or f"http://{self.host}:{port}{self.path}"


class PasswordHashingSettings(Strict):
    """argon2id's cost for the hashes the gateway writes (RFC 9106 section 4, second
    recommended option by default).  Tests lower it here, in their configuration, where it
    shows; a cost below the recommended one is logged at start."""

    time_cost: int = Field(default=3, ge=1, le=100)
    memory_kib: int = Field(default=64 * 1024, ge=8, le=4 * 1024 * 1024)
    parallelism: int = Field(default=4, ge=1, le=64)


class ConsoleSettings(Strict):
    """The ops console's listener (docs/observability.md, docs/console.md): /health, /ready
    and /metrics, and the pages for the users of the ``users`` file, apart from partner
    traffic.  Plain HTTP on loopback by default: put it behind a TLS proxy (and set
    ``public_origin``) before opening it further."""

    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=0, le=65535)
    users: str | None = Field(
        default=None, description="the console users file (name, role, argon2id hash), "
        "relative to this file; without it, no pages are served (only /health, /ready, "
        "/metrics)")
    public_origin: str | None = Field(
        default=None, pattern=r"^https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?$",
        description="scheme://host[:port] browsers reach the console at, when a proxy stands "
        "in front (the Origin every change must come from; https here makes cookies Secure)")
    secure_cookies: bool = Field(
        default=False, description="mark cookies Secure even when this listener is plain "
        "HTTP (a TLS proxy in front); always so when served over HTTPS")
    session_idle_seconds: float = Field(default=30 * 60, gt=0, le=7 * 24 * 3600)
    session_absolute_seconds: float = Field(default=12 * 3600, gt=0, le=30 * 24 * 3600)
    login_window_seconds: float = Field(
        default=15 * 60, gt=0, le=24 * 3600, description="failed logins counted over this "
        "window for the two limits below")
    login_failures_per_user: int = Field(default=5, ge=1, le=1000)
    login_failures_per_address: int = Field(default=20, ge=1, le=100_000)
    password_hashing: PasswordHashingSettings = PasswordHashingSettings()
    trusted_proxies: list[str] = Field(
        default_factory=list, max_length=64, description="addresses or networks (CIDR) of "
        "the proxies in front of the console: from them alone, the client's address is read "
        "from X-Forwarded-For (the nearest address not of such a proxy), so that login "
        "limits and the audit log see clients, not the proxy")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for text in value:
            try:
                ipaddress.ip_network(text, strict=False)
            except ValueError as exc:
                raise ValueError(f"{text!r} is not an address or a network: {exc}") from exc
        return value

    def proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(t, strict=False) for t in self.trusted_proxies)


class PaymentsSettings(Strict):
    """Duties an agency assesses are paid through a bank agency (docs/payments.md)."""

    agency: str = Field(min_length=1, description="the agency (agencies.yaml code) the "
                        "payment instructions go to, and whose PaymentConfirmation is taken")
    release_waits_for_payment: bool = Field(
        default=True, description="true: a declaration with duties instructed and unpaid is "
        "`awaiting_payment`, not released, and the trader's release (CUSRES) waits for the "
        "bank's confirmation; false: payment is a milestone only")


class Settings(Strict):
    #: The UNB recipient partners address and the sender of every answer: level A characters
    #: (ISO 9735 annex A), which every syntax identifier carries, without spaces at either
    #: end (a partner's recipient is compared exactly: " SWGATEWAY" would refuse them all).
    gateway_id: str = Field(default="SWGATEWAY", max_length=35,
                            pattern=r"^[A-Z0-9.,()/=-](?:[A-Z0-9 .,()/=-]*[A-Z0-9.,()/=-])?$")
    gateway_id_qualifier: str | None = Field(default=None, pattern=r"^[A-Z0-9]{1,4}$")
    database_url: str
    amqp: AmqpSettings = AmqpSettings()
    sftp: SftpSettings
    signing: SigningSettings
    partners: str
    agencies: str
    routing: str
    mappings: str | None = Field(
        default=None, description="folder of mapping files (edifact/*.yaml); the mappings "
        "shipped with the gateway when not given")
    routing_reload_seconds: float = Field(
        default=2.0, ge=0.1, le=3600, description="how often routing.yaml and agencies.yaml "
        "are looked at for changes (SIGHUP looks at once)")
    routing_settle_seconds: float = Field(
        default=2.0, ge=0, le=3600, description="how long a changed routing.yaml or "
        "agencies.yaml must stay unchanged before it is applied, so that a file a tool is "
        "still writing is never taken half way (on SIGHUP and at start two agreeing looks "
        "this long or one poll apart, whichever is shorter, suffice)")
    processor_workers: int = Field(
        default=4, ge=2, le=64, description="submissions decided at once; one of the workers "
        "only takes small submissions, so a large or slow one never stalls the others")
    small_submission_bytes: int = Field(
        default=256 * 1024, gt=0, description="what the small-submission worker takes")
    max_submission_bytes: int = Field(
        default=64 * 1024 * 1024, gt=0,
        description="larger uploads are refused at the transport, before anything is stored")
    overdue_check_seconds: float = Field(
        default=10.0, gt=0, le=3600, description="how often agencies' deadlines for a "
        "decision (agencies.yaml answer_within_seconds) are checked")
    xml: XmlSettings | None = Field(default=None, description="without it, XML submissions "
                                    "are refused, saying so")
    as2: As2ServerSettings | None = Field(default=None, description="the AS2 endpoint; "
                                          "without it, no AS2 listener is started")
    n2n: N2nSettings = Field(default_factory=N2nSettings, description="certificates of "
                             "origin sent to foreign single windows (docs/n2n.md)")
    console: ConsoleSettings | None = Field(
        default=None, description="the ops console's listener (/health, /ready, /metrics); "
        "without it, none is started")
    port_alarms: str | None = Field(
        default=None, description="the cargo trail's alarm rules (docs/port-alarms.md), "
        "relative to this file; without it, no trail is kept and no port alarm raised")
    payments: PaymentsSettings | None = Field(
        default=None, description="without it, no payment instruction is sent")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
