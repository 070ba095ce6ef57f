"""What agencies answer: a decision on a declaration (rendered as CUSRES), or an application
error (rendered as APERAK)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from gateway.model.canonical.common import Amount, Canonical, Frozen, coded

#: What an agency decided.  "accepted" is registered (with the agency's own reference);
#: "inspection" is held for a physical examination, "documents_required" for a documentary
#: check; "licence_passed" and "licence_failed" answer a licence (permit) check.
Decision = Literal["accepted", "rejected", "released", "held", "inspection", "pending",
                   "cancelled", "documents_required", "licence_passed", "licence_failed"]

#: The decisions after which an agency has nothing more to say about a declaration.
FINAL_DECISIONS: frozenset[str] = frozenset({"released", "rejected", "cancelled",
                                             "licence_failed"})


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
    agency_reference: str | None = Field(
        default=None, max_length=35, description="the agency's own registration of the "
        "declaration (CUSRES RFF AFM: secondary customs reference)")
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
