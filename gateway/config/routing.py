"""The routing table (``routing.yaml``): which agencies receive which canonical messages.

Every rule whose ``match`` holds adds its agencies; each agency gets a message once.  A message
no rule matches is parked as unroutable (never dropped).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

_CHAPTERS = re.compile(r"^(\d{2})(?:-(\d{2}))?$")


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChapterRange(Strict):
    """Harmonized System chapters ``first``..``last`` inclusive, written "03" or "01-24"."""

    first: int
    last: int

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        found = _CHAPTERS.match(value.strip())
        if not found:
            raise ValueError(f"{value!r} is not an HS chapter (\"03\") or range (\"01-24\")")
        first = int(found.group(1))
        last = int(found.group(2) or first)
        if not 1 <= first <= last <= 99:
            raise ValueError(f"{value!r} is not a range of HS chapters 01..99")
        return {"first": first, "last": last}

    def contains(self, chapter: str) -> bool:
        return chapter.isdigit() and self.first <= int(chapter) <= self.last


class Match(Strict):
    """Conditions that must all hold; an absent condition holds for every message."""

    kind: Literal["CustomsDeclaration", "CargoReport", "TransportInstruction", "ContainerEvent",
                  "CertificateOfOrigin"] | None = None
    message_type: str | None = None
    partners: tuple[str, ...] | None = None
    hs_chapters: tuple[ChapterRange, ...] | None = Field(
        default=None, description="any goods item's commodity code is in one of these chapters"
    )


class Rule(Strict):
    name: str = Field(min_length=1)
    match: Match = Match()
    deliver: tuple[str, ...] = Field(min_length=1)

    @field_validator("deliver")
    @classmethod
    def _known_agencies(cls, deliver: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        known = (info.context or {}).get("agencies")
        if known is not None:
            for agency in deliver:
                if agency not in known:
                    raise ValueError(
                        f"unknown agency {agency!r} (known: {', '.join(sorted(known))})"
                    )
        return deliver


class RoutingTable(Strict):
    version: Literal[1] = 1
    rules: tuple[Rule, ...] = Field(min_length=1)

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        seen: set[str] = set()
        for rule in rules:
            if rule.name in seen:
                raise ValueError(f"two rules are named {rule.name!r}")
            seen.add(rule.name)
        return rules
