"""Trading partners (VAN operators): who they are, which EDIFACT sender IDs they may use and
which SSH keys let them in."""

from __future__ import annotations

import re
from typing import Annotated, Literal

import asyncssh
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

# Checked with fullmatch: with re.match, "$" also matches before a final newline, and
# "van-a\n" would name a mailbox directory with a newline in it.
_PARTNER_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
#: SFTP login names: the characters OpenSSH and every SFTP client accept without quoting.
_LOGIN = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]{0,63}")


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EdifactId(Strict):
    """A UNB sender identification (S002 0004) and, when given, its code qualifier (0007)."""

    id: str = Field(min_length=1, max_length=35)
    qualifier: str | None = Field(default=None, min_length=1, max_length=4)

    @field_validator("id", "qualifier", mode="before")
    @classmethod
    def _quoted(cls, value: object) -> object:
        # YAML reads unquoted digits as a number, and 0412 as the octal 266: guessing the
        # text back could name another sender, so ask for quotes.
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError("a number: write the identification in quotes, e.g. '14'")
        return value

    @field_validator("id", "qualifier")
    @classmethod
    def _exact(cls, value: str | None) -> str | None:
        # The UNB value is compared as it is: " VANA" or "VANA\t" would never match, and the
        # partner would be refused as an unknown sender with nothing in the file looking wrong.
        if value is not None and (value != value.strip() or not value.isprintable()):
            raise ValueError(f"{value!r}: no spaces at either end and no control characters")
        return value

    def allows(self, sender_id: str, qualifier: str) -> bool:
        return sender_id == self.id and (self.qualifier is None or qualifier == self.qualifier)

    def __str__(self) -> str:
        return self.id if self.qualifier is None else f"{self.id}:{self.qualifier}"


class SshKey(Strict):
    """An OpenSSH public key, inline (``key``) or in a file (``file``, relative to this file)."""

    key: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SshKey:
        if (self.key is None) == (self.file is None):
            raise ValueError("give exactly one of 'key' or 'file'")
        return self

    @field_validator("key")
    @classmethod
    def _readable(cls, key: str | None) -> str | None:
        problem = None if key is None else authorized_keys_problem(key)
        if problem is not None:
            raise ValueError(f"line {problem[0]} of the key: {problem[1]}")
        return key


def authorized_keys_problem(text: str) -> tuple[int, str] | None:
    """(line, what is wrong) with OpenSSH ``authorized_keys`` text, or None.  asyncssh skips
    a line it cannot read when another line is good, so a mangled key would only show as a
    partner locked out; and text with no key at all would fail each of its logins."""
    entries = 0
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if "PRIVATE KEY" in entry:
            return number, "this is a private key; give the partner's public key"
        try:
            asyncssh.import_authorized_keys(entry)
        except ValueError:
            return number, f"not an OpenSSH public key ({_short(entry)})"
        entries += 1
    return None if entries else (1, "no public key in it")


def _short(text: str) -> str:
    return text if len(text) <= 30 else text[:27] + "..."


def _xml_id(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("quote the identity: YAML reads digits as a number (0412 as 266)")
    if isinstance(value, str) and value != value.strip():
        raise ValueError("an XML identity has no spaces at either end (compared exactly)")
    return value


#: RFC 4130 section 6.2: an AS2 name is 1 to 128 printable ASCII characters; spaces would need
#: quoting in AS2-From, so a name with none is asked for (every VAN's we know has none).
AS2_NAME = r"^[!#-\[\]-~]{1,128}$"


class As2Settings(Strict):
    """How a partner speaks AS2 (RFC 4130); docs/as2.md."""

    id: str = Field(pattern=AS2_NAME, description="its AS2 name: AS2-From on what it sends, "
                    "AS2-To on what we send it")
    certificates: tuple[str, ...] = Field(min_length=1, description="PEM files (relative to "
                                          "this file) of the certificates it signs with and we "
                                          "encrypt to; two are valid at once during a rotation")
    max_bytes: int = Field(default=64 * 1024 * 1024, gt=0, description="larger messages are "
                           "refused before they are read")
    #: Digests it may sign with (RFC 4130 section 7.3.1 micalg names); SHA-1 only when asked.
    signature_digests: tuple[Literal["sha1", "sha224", "sha256", "sha384", "sha512"], ...] = (
        "sha256", "sha384", "sha512")
    #: What we encrypt to it with, and sign with, when we send it answers.
    encryption: Literal["aes128-cbc", "aes192-cbc", "aes256-cbc", "3des-cbc", "aes128-gcm",
                        "aes192-gcm", "aes256-gcm"] = "aes256-cbc"
    signing: Literal["sha256", "sha384", "sha512"] = "sha256"
    compress: bool = Field(default=False, description="compress what we send it (RFC 5402)")
    require_signature: bool = Field(
        default=True, description="refuse its unsigned messages (MDN processed/error: "
        "insufficient-message-security): only a signature shows a message is its own")
    require_encryption: bool = Field(
        default=False, description="refuse its unencrypted messages the same way (set it "
        "when it reaches us over plain HTTP)")
    url: str | None = Field(default=None, pattern=r"^https?://", description="where its "
                            "answers are POSTed; without it they stay in its SFTP outbox")
    receipt_urls: tuple[Annotated[str, Field(pattern=r"^https?://[^/]+/")], ...] = Field(
        default=(), description="URL prefixes its asynchronous MDNs (Receipt-Delivery-Option) "
        "may go to; without them, the origin of url; a message asking for another gets its "
        "MDN in the response instead")

    @field_validator("id", mode="before")
    @classmethod
    def _quoted_name(cls, value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError("quote the AS2 name: YAML reads digits as a number")
        return value


#: A WCO DM party ID is an..17 (an..35 in some versions), a UBL ID is free text: 70 leaves room.
XmlId = Annotated[str, BeforeValidator(_xml_id), Field(min_length=1, max_length=70)]


#: ISO 3166-1 alpha-2: two capital letters.
COUNTRY = r"^[A-Z]{2}$"


class Partner(Strict):
    id: str
    name: str
    #: A trader's VAN (the default), or a foreign single window (docs/n2n.md): the gateway of
    #: another country, which sends and receives certificates of origin by AS2.
    kind: Literal["van", "single_window"] = "van"
    #: A single window's country (ISO 3166-1 alpha-2): certificates for it go there, and the
    #: certificates it sends must be issued in it.
    country: str | None = Field(default=None, pattern=COUNTRY)
    sftp_user: str | None = None
    edifact_ids: tuple[EdifactId, ...] = ()
    #: The identities the partner may submit XML documents as: what the document's kind says
    #: submits it (xml-schemas.yaml ``senders``: a DEC-DMS Submitter or Declarant ID, a UBL
    #: exporter's PartyIdentification ID), compared exactly.  docs/xml.md.
    xml_ids: tuple[XmlId, ...] = ()
    as2: As2Settings | None = None
    ssh_keys: tuple[SshKey, ...] = ()
    #: A value outside its UN code list: reject the message, only warn, or ignore.
    code_lists: Literal["error", "warning", "off"] = "error"

    @field_validator("id")
    @classmethod
    def _safe_id(cls, value: str) -> str:
        if not _PARTNER_ID.fullmatch(value):
            raise ValueError("use lower-case letters, digits, '-' and '_' (it names a mailbox)")
        return value

    @field_validator("sftp_user")
    @classmethod
    def _safe_login(cls, value: str | None) -> str | None:
        if value is not None and not _LOGIN.fullmatch(value):
            raise ValueError("use letters, digits, '.', '-' and '_' (at most 64)")
        return value

    @model_validator(mode="after")
    def _some_identity(self) -> Partner:
        if self.kind == "single_window":
            return self._single_window()
        if self.country is not None:
            raise ValueError("country is a single window's (kind: single_window)")
        if not self.edifact_ids and not self.xml_ids:
            raise ValueError("give the identities the partner sends as: edifact_ids (UNB "
                             "senders), xml_ids (XML submitters), or both")
        return self

    def _single_window(self) -> Partner:
        """A single window acts as itself only by AS2 (its signature), sends certificates of
        origin issued in its country and nothing else: no UNB senders, no XML identities."""
        if self.country is None:
            raise ValueError("a single window needs its country (ISO 3166-1 alpha-2)")
        if self.as2 is None or self.as2.url is None:
            raise ValueError("a single window needs as2 settings with its url (certificates "
                             "are sent to it by AS2)")
        if self.edifact_ids or self.xml_ids:
            raise ValueError("a single window has no edifact_ids or xml_ids: what it sends "
                             "is checked against its country")
        return self

    @model_validator(mode="after")
    def _only_itself(self, info: ValidationInfo) -> Partner:
        """A partner only acts as itself (DESIGN rule 5): two partners with one id or login
        would share a mailbox or a login, and a UNB sender two partners may use would let each
        send as the other (and share its dedup, answers and registered traders)."""
        if info.context is not None:
            info.context.setdefault("claims", _Claims()).take(self)
        return self

    @property
    def login(self) -> str:
        return self.sftp_user or self.id

    def may_send_as(self, sender_id: str, qualifier: str) -> bool:
        return any(e.allows(sender_id, qualifier) for e in self.edifact_ids)

    def may_submit_xml_as(self, identity: str) -> bool:
        return identity in self.xml_ids

    @property
    def single_window(self) -> bool:
        return self.kind == "single_window"


class _Claims:
    """What the partners validated so far hold, indexed, so that each partner is checked in
    the same time however many came before (compared with each earlier one, a file of 4,000
    partners took 20 s to load): ids, logins, and UNB senders by id, then qualifier (None:
    every qualifier, see EdifactId.allows)."""

    def __init__(self) -> None:
        self._holders: dict[tuple[str, str], str] = {}  # (id or login, value) -> partner id
        self._senders: dict[str, dict[str | None, tuple[EdifactId, str]]] = {}

    def take(self, partner: Partner) -> None:
        """Record what ``partner`` holds, or raise ValueError naming who holds it already."""
        for attribute in ("id", "login"):
            value = getattr(partner, attribute)
            holder = self._holders.get((attribute, value))
            if holder is not None:
                raise ValueError(f"partner {attribute} {value!r} is already used by partner "
                                 f"{holder!r}")
        if partner.single_window:
            holder = self._holders.get(("country", partner.country or ""))
            if holder is not None:
                raise ValueError(f"country {partner.country} already has a single window, "
                                 f"partner {holder!r}: at most one per country")
        if partner.as2 is not None:
            holder = self._holders.get(("as2", partner.as2.id))
            if holder is not None:
                raise ValueError(f"AS2 name {partner.as2.id!r} is already used by partner "
                                 f"{holder!r}: an AS2 name belongs to one partner")
        for identity in partner.xml_ids:
            holder = self._holders.get(("xml", identity))
            if holder is not None:
                raise ValueError(f"XML identity {identity!r} is already claimed by partner "
                                 f"{holder!r}: an identity belongs to one partner")
        for sender in partner.edifact_ids:
            clash = self._claim_allowing(sender)
            if clash is not None:
                other, holder = clash
                raise ValueError(f"UNB sender {sender} is already claimed by partner "
                                 f"{holder!r} ({other}): a sender belongs to one partner")
        self._holders[("id", partner.id)] = partner.id
        self._holders[("login", partner.login)] = partner.id
        if partner.single_window:
            self._holders[("country", partner.country or "")] = partner.id
        for identity in partner.xml_ids:
            self._holders[("xml", identity)] = partner.id
        if partner.as2 is not None:
            self._holders[("as2", partner.as2.id)] = partner.id
        for sender in partner.edifact_ids:
            self._senders.setdefault(sender.id, {}).setdefault(sender.qualifier,
                                                               (sender, partner.id))

    def _claim_allowing(self, sender: EdifactId) -> tuple[EdifactId, str] | None:
        """The first claim that allows some UNB sender ``sender`` allows too: one of its id
        without a qualifier or with the same one; any of its id when it has no qualifier."""
        claims = self._senders.get(sender.id, {})
        if sender.qualifier is None:
            return next(iter(claims.values()), None)
        return claims.get(None) or claims.get(sender.qualifier)


class PartnersFile(Strict):
    """Validated with a context (yamlfile.load_model_text gives each document its own), so
    that a partner repeating another's id, login or UNB sender is refused at its own line."""

    partners: tuple[Partner, ...]


class Agency(Strict):
    code: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    name: str
    broker_user: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="the RabbitMQ user the agency connects as (default: its code); the "
        "gateway takes an answer's agency from the user RabbitMQ validated, nothing else")
    password_file: str | None = Field(
        default=None, description="the file holding that user's password (relative to this "
        "file); `gateway agencies provision` creates it when missing, `gateway agency run` "
        "reads it")
    answer_within_seconds: float | None = Field(
        default=None, gt=0, description="an agency that has not decided on a declaration "
        "this long after it was delivered is overdue: an event and an alarm (none: no "
        "deadline)")

    @property
    def user(self) -> str:
        return self.broker_user or self.code


class AgenciesFile(Strict):
    agencies: tuple[Agency, ...] = Field(min_length=1)

    @field_validator("agencies")
    @classmethod
    def _unique(cls, agencies: tuple[Agency, ...]) -> tuple[Agency, ...]:
        for what, names in (("agency code", [a.code for a in agencies]),
                            ("broker user", [a.user for a in agencies])):
            twice = {n for n in names if names.count(n) > 1}
            if twice:  # one broker user for two agencies: an answer could not say whose
                raise ValueError(f"{what} used twice: {', '.join(sorted(twice))}")
        return agencies
