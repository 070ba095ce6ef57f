"""``gateway.yaml``: where the gateway listens, what it talks to and where its files are.

Relative paths are taken from the directory of the file that names them.  Two environment
variables override the URLs: GATEWAY_DATABASE_URL and GATEWAY_AMQP_URL.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SftpSettings(Strict):
    """Where the SFTP listener is, and what one partner (or anyone who reaches the port) may
    hold of it at once; beyond a limit the request is refused with a message naming it."""

    host: str = "127.0.0.1"
    port: int = Field(default=2222, ge=0, le=65535)
    host_key: str = Field(description="generated on first start when missing, then kept")
    mailboxes: str = Field(description="one directory per partner with inbox/ and outbox/")
    login_timeout_seconds: float = Field(
        default=30, gt=0, le=600, description="a connection that has not logged in by then "
        "is closed")
    max_unauthenticated: int = Field(
        default=64, ge=1, description="connections still logging in at once, whoever makes "
        "them; more are disconnected at once (SSH disconnect reason 12)")
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
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
