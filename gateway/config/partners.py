"""Trading partners (VAN operators): who they are, which EDIFACT sender IDs they may use and
which SSH keys let them in."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_PARTNER_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EdifactId(Strict):
    """A UNB sender identification (S002 0004) and, when given, its code qualifier (0007)."""

    id: str = Field(min_length=1, max_length=35)
    qualifier: str | None = Field(default=None, max_length=4)

    def allows(self, sender_id: str, qualifier: str) -> bool:
        return sender_id == self.id and (self.qualifier is None or qualifier == self.qualifier)


class SshKey(Strict):
    """An OpenSSH public key, inline (``key``) or in a file (``file``, relative to this file)."""

    key: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SshKey:
        if (self.key is None) == (self.file is None):
            raise ValueError("give exactly one of 'key' or 'file'")
        return self


class Partner(Strict):
    id: str
    name: str
    sftp_user: str | None = None
    edifact_ids: tuple[EdifactId, ...] = Field(min_length=1)
    ssh_keys: tuple[SshKey, ...] = ()
    #: A value outside its UN code list: reject the message, only warn, or ignore.
    code_lists: Literal["error", "warning", "off"] = "error"

    @field_validator("id")
    @classmethod
    def _safe_id(cls, value: str) -> str:
        if not _PARTNER_ID.match(value):
            raise ValueError("use lower-case letters, digits, '-' and '_' (it names a mailbox)")
        return value

    @property
    def login(self) -> str:
        return self.sftp_user or self.id

    def may_send_as(self, sender_id: str, qualifier: str) -> bool:
        return any(e.allows(sender_id, qualifier) for e in self.edifact_ids)


class PartnersFile(Strict):
    partners: tuple[Partner, ...]

    @field_validator("partners")
    @classmethod
    def _unique(cls, partners: tuple[Partner, ...]) -> tuple[Partner, ...]:
        for attribute in ("id", "login"):
            values = [getattr(p, attribute) for p in partners]
            twice = {v for v in values if values.count(v) > 1}
            if twice:
                raise ValueError(f"partner {attribute} used twice: {', '.join(sorted(twice))}")
        return partners


class Agency(Strict):
    code: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    name: str


class AgenciesFile(Strict):
    agencies: tuple[Agency, ...] = Field(min_length=1)

    @field_validator("agencies")
    @classmethod
    def _unique(cls, agencies: tuple[Agency, ...]) -> tuple[Agency, ...]:
        codes = [a.code for a in agencies]
        twice = {c for c in codes if codes.count(c) > 1}
        if twice:
            raise ValueError(f"agency code used twice: {', '.join(sorted(twice))}")
        return agencies
