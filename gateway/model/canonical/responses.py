"""What agencies answer: a decision on a declaration (rendered as CUSRES), or an application
error (rendered as APERAK)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from gateway.model.canonical.common import Amount, Canonical, Frozen, coded

Decision = Literal["accepted", "rejected", "released", "held", "inspection", "pending",
                   "cancelled"]


class Answered(Frozen):
    """What a response answers: the declaration and the message that carried it."""

    document_reference: str = Field(description="e.g. the declaration number")
    interchange_reference: str | None = None
    message_reference: str | None = None
    correlation_id: str | None = Field(default=None,
                                       description="the correlation_id of the delivery")


class Reason(Frozen):
    code: str | None = coded("UNTDID 9321 application error (or the agency's own list)")
    text: str


class CustomsResponse(Canonical):
    """An agency's decision on a declaration (AgencyDecision; customs: CUSRES)."""

    kind: Literal["CustomsResponse"] = "CustomsResponse"
    agency: str
    answers: Answered
    decision: Decision
    decided_at: dt.datetime
    reasons: tuple[Reason, ...] = ()
    duties: tuple[Amount, ...] = ()

    @property
    def document_reference(self) -> str | None:
        return self.answers.document_reference


AgencyDecision = CustomsResponse


class ApplicationError(Canonical):
    """An application-level rejection of a message (APERAK)."""

    kind: Literal["ApplicationError"] = "ApplicationError"
    answers: Answered
    errors: tuple[Reason, ...] = Field(min_length=1)
    reported_at: dt.datetime

    @property
    def document_reference(self) -> str | None:
        return self.answers.document_reference
