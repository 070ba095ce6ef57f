"""The way back for agencies' answers, pure: where a declaration stands once its agencies
have spoken, and an answer written in the syntax and release of what it answers (an answer
to an XML document in the XML standard its sender speaks: render_xml_decision).

The answer is rendered in the release of the declaration (a D96B CUSDEC is answered with a
D96B CUSRES), from the gateway to whom the CONTRL went, under a control reference of its own
(UNB 0020)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from pydantic import ValidationError

from gateway.config.xml_schemas import AnswerStandard
from gateway.errors import RenderError
from gateway.model.canonical import (
    CANONICAL_ADAPTER,
    ApplicationError,
    CustomsResponse,
    Source,
)
from gateway.model.canonical.payments import PaymentConfirmation
from gateway.model.canonical.responses import FINAL_DECISIONS
from gateway.model.edifact import Delimiters, PartyId
from gateway.model.outcome import ACK_SUFFIXES
from gateway.pipeline.mapping.mapping import Mappings
from gateway.pipeline.render import SYNTAX_IDENTIFIER, render_interchange
from gateway.pipeline.xml_answer import (
    RES_ACCEPTED,
    RES_CANCELLED,
    RES_CONTROL,
    RES_DOCUMENTS,
    RES_MANUAL,
    RES_REGISTERED,
    RES_REJECTED,
    RES_RELEASED,
    UBL_ACCEPTED,
    UBL_IN_PROCESS,
    UBL_REJECTED,
    UBL_UNDER_QUERY,
    XmlAnswerFacts,
    render_xml_answer,
)
from gateway.wire.edifact.syntax import CODECS, invalid_characters

#: The EDIFACT message each kind of answer is written as.
ANSWER_MESSAGES: dict[str, str] = {"CustomsResponse": "CUSRES", "ApplicationError": "APERAK"}
AWAITING = "awaiting"
#: An agency's decisions that stop the declaration whatever the others decide.
STOPPING = frozenset({"rejected", "licence_failed"})


def clearance(states: Mapping[str, str]) -> str:
    """The declaration's overall state from each agency's: "released" only once every agency
    it went to released it; "rejected" as soon as one refused it; "cancelled" once one
    cancelled it; "awaiting" while none has decided; otherwise "in_progress"."""
    values = set(states.values())
    if values & STOPPING:
        return "rejected"
    if "cancelled" in values:
        return "cancelled"
    if values and values == {"released"}:
        return "released"
    if not values or values == {AWAITING}:
        return AWAITING
    return "in_progress"


def is_final(answer: CustomsResponse | ApplicationError) -> bool:
    """Whether the agency has nothing more to say after this answer (an application error
    says the agency could not act on the message: it waits for a corrected one)."""
    if isinstance(answer, ApplicationError):
        return True
    return answer.decision in FINAL_DECISIONS


def state_of(answer: CustomsResponse | ApplicationError | PaymentConfirmation) -> str:
    if isinstance(answer, PaymentConfirmation):
        return answer.status
    return answer.decision if isinstance(answer, CustomsResponse) else "application_error"


def answer_tail(position: int, agency: str, sequence: int, kind: str, *,
                syntax: str = "EDIFACT", message_type: str = "",
                mappings: Mappings | None = None) -> str:
    """The end of an answer's outbox name after the submission id: the message's position
    in the interchange, the agency, the answer's number from that agency, its suffix."""
    suffix = ACK_SUFFIXES[answer_message(kind, syntax, message_type, mappings)]
    return f"{position}.{agency}.{sequence}.{suffix}"


def xml_answer_standard(message_type: str, mappings: Mappings | None = None) -> AnswerStandard:
    """The standard an XML document's sender speaks: the registry's ``answer`` for the kind
    (``mappings`` holds the kinds in force); for a kind taken out of the registry since the
    document came, by its name: a UBL document (``UBL-...``) is answered with a UBL
    ApplicationResponse, a WCO declaration (``DEC-DMS``) with RES-DMS."""
    mapping = mappings.xml_mapping(message_type) if mappings is not None else None
    if mapping is not None:
        return mapping.answer
    return "UBL-ApplicationResponse" if message_type.upper().startswith("UBL") else "RES-DMS"


def answer_message(kind: str, syntax: str = "EDIFACT", message_type: str = "",
                   mappings: Mappings | None = None) -> str:
    """What an answer of ``kind`` is written as, for a message in ``syntax`` of
    ``message_type`` (its canonical source): CUSRES or APERAK to EDIFACT, RES-DMS or a UBL
    ApplicationResponse to XML."""
    if syntax == "XML":
        return xml_answer_standard(message_type, mappings)
    return ANSWER_MESSAGES[kind]


#: RES-DMS Response/FunctionCode of each decision, in the codes of the schema's publisher
#: (pipeline.xml_answer: HMRC CDS notifications).  "held" without a named check is manual
#: handling (DMSEXT); a licence check passed or failed accepts or rejects.
RES_DMS_DECISIONS: dict[str, str] = {
    "accepted": RES_ACCEPTED, "rejected": RES_REJECTED, "released": RES_RELEASED,
    "held": RES_MANUAL, "inspection": RES_CONTROL, "pending": RES_REGISTERED,
    "cancelled": RES_CANCELLED, "documents_required": RES_DOCUMENTS,
    "licence_passed": RES_ACCEPTED, "licence_failed": RES_REJECTED}
#: The UBL cbc:ResponseCode (UN/CEFACT 4343 response type) of each decision: a hold, an
#: inspection or documents asked for put the document "under query"; 4343 has no
#: cancellation, and a cancelled document is no longer accepted.
UBL_DECISIONS: dict[str, str] = {
    "accepted": UBL_ACCEPTED, "rejected": UBL_REJECTED, "released": UBL_ACCEPTED,
    "held": UBL_UNDER_QUERY, "inspection": UBL_UNDER_QUERY, "pending": UBL_IN_PROCESS,
    "cancelled": UBL_REJECTED, "documents_required": UBL_UNDER_QUERY,
    "licence_passed": UBL_ACCEPTED, "licence_failed": UBL_REJECTED}


def render_xml_decision(answer: CustomsResponse | ApplicationError, *, message_type: str,
                        gateway_id: str, reply_to: str, response_id: str,
                        prepared: dt.datetime, mappings: Mappings | None = None) -> bytes:
    """An agency's answer to a message that came as XML of ``message_type``, in the standard
    its sender speaks (RES-DMS for a DEC-DMS declaration).  An application error (APERAK in
    EDIFACT) is a rejection with the agency's errors.  Every value is written so that the
    answer stays valid: nothing an agency says can make it unwritable."""
    standard = xml_answer_standard(message_type, mappings)
    decisions = RES_DMS_DECISIONS if standard == "RES-DMS" else UBL_DECISIONS
    if isinstance(answer, CustomsResponse):
        code = decisions[answer.decision]
        accepted = answer.decision not in STOPPING and answer.decision != "cancelled"
        reasons = answer.reasons
        agency_reference = answer.agency_reference or ""
        decided = answer.decided_at
    else:
        code = decisions["rejected"]
        accepted = False
        reasons = answer.errors
        agency_reference = ""
        decided = answer.reported_at
    facts = XmlAnswerFacts(
        standard=standard, response_id=response_id, issued=prepared, gateway_id=gateway_id,
        sender_id=reply_to, document_reference=answer.answers.document_reference,
        document_type=message_type, accepted=accepted, findings=(), decision_code=code,
        reasons=tuple((reason.code, reason.text) for reason in reasons),
        agency_reference=agency_reference, decided=decided)
    return render_xml_answer(facts)


def render_answer(answer: CustomsResponse | ApplicationError, mappings: Mappings, *,
                  release: str, gateway: PartyId, reply_to: PartyId, syntax_version: str,
                  control_reference: str, prepared: dt.datetime) -> bytes:
    """The answer as an EDIFACT interchange of its own (RenderError when its mapping cannot
    write it: the agency's data is wrong)."""
    problem = _unwritable(answer.model_dump(mode="json", exclude={"source"}), "")
    if problem is not None:
        raise RenderError(problem)
    message_type = ANSWER_MESSAGES[answer.kind]
    source = Source(syntax="EDIFACT", message_type=message_type, release=release,
                    sender=gateway.id, recipient=reply_to.id,
                    interchange_reference=control_reference, message_reference="1")
    return render_interchange(answer.model_copy(update={"source": source}), mappings, prepared,
                              syntax_version, sender=gateway, recipient=reply_to)


#: Characters no EDIFACT interchange carries (controls such as NUL, noncharacters).
_INVALID = invalid_characters(Delimiters()).pattern


def _unwritable(value: object, where: str) -> str | None:
    """Why a value of the answer cannot be written in the answer's character set, or None.
    The writer would put "." in place of such a character (right for the partner's values a
    CONTRL echoes, wrong for an agency's reference or reason: the trader would read another
    one), so the answer is refused, like a text too long for its element."""
    if isinstance(value, str):
        character = _first_unwritable(value)
        if character is None:
            return None
        return (f"{where}: {value[:40]!r} holds U+{ord(character):04X}, which an "
                f"{SYNTAX_IDENTIFIER} interchange cannot carry")
    if isinstance(value, dict):
        items = [(k, v) for k, v in value.items() if k != "correlation_id"]  # never written
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return None
    return next((problem for key, item in items
                 if (problem := _unwritable(item, f"{where}.{key}" if where else str(key)))
                 is not None), None)


def _first_unwritable(text: str) -> str | None:
    invalid = _INVALID.search(text)
    if invalid is not None:
        return invalid.group()
    try:
        text.encode(CODECS[SYNTAX_IDENTIFIER])
    except UnicodeEncodeError as exc:
        return text[exc.start]
    return None


#: The largest answer taken (an agency's decision is a few kilobytes).
MAX_ANSWER_BYTES = 1024 * 1024


#: What an agency may publish on the responses exchange: a decision, an application error, or
#: (the payments agency) a payment confirmation.
TakenAnswer = CustomsResponse | ApplicationError | PaymentConfirmation


def read_answer(body: bytes, declared_type: str | None) -> TakenAnswer | str:
    """The canonical answer in ``body``, or why it is not one (the agency's fault)."""
    if len(body) > MAX_ANSWER_BYTES:
        return f"{len(body)} bytes: an answer is at most {MAX_ANSWER_BYTES}"
    try:
        message = CANONICAL_ADAPTER.validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return (f"not a canonical answer: {exc.error_count()} problem(s), first at "
                f"{where or 'the top'}: {first['msg']}")
    if not isinstance(message, CustomsResponse | ApplicationError | PaymentConfirmation):
        return (f"a {message.kind} is not an answer (CustomsResponse, ApplicationError or "
                "PaymentConfirmation)")
    if declared_type and declared_type != message.kind:
        return f"its type property says {declared_type!r} but it is a {message.kind}"
    return message


def answer_problem(answer: TakenAnswer, agency: str,
                   correlation_id: str | None) -> str | None:
    """Why an answer ``agency`` published cannot be taken as it is, or None.  ``agency`` is
    the one RabbitMQ vouches for; what the answer says about itself only has to agree."""
    if not correlation_id:
        return "no correlation_id: an answer names the delivery it answers"
    if isinstance(answer, CustomsResponse) and answer.agency != agency:
        return (f"published by {agency!r} but claims to be {answer.agency!r}: an agency "
                "answers only as itself")
    amounts = answer.duties if isinstance(answer, CustomsResponse) else (
        answer.amounts if isinstance(answer, PaymentConfirmation) else ())
    if any(amount.value <= 0 for amount in amounts):
        what = "duties" if isinstance(answer, CustomsResponse) else "amounts paid"
        said = ", ".join(f"{a.value} {a.currency or ''}".strip() for a in amounts)
        return (f"its {what} are not all positive amounts ({said}): a bank collects a sum "
                "due, and a payment pays one")
    if any(amount.currency is None for amount in amounts):
        return ("each of its duties or amounts paid names its currency (ISO 4217): a bank "
                "cannot collect or pay a sum in no currency")
    named = answer.answers.correlation_id
    if named is not None and named != correlation_id:
        return (f"answers.correlation_id {named!r} is not the correlation_id "
                f"{correlation_id!r} it was published with")
    return None


#: What an answer says it answers (its CUSRES/APERAK's RFF ABT, ALL and AGO).
_REFERENCES = ("document_reference", "interchange_reference", "message_reference")


def tie_answer(answer: TakenAnswer, *,
               document_reference: str | None, interchange_reference: str | None,
               message_reference: str | None) -> TakenAnswer | str:
    """``answer`` with the references of the message its correlation_id names, as the gateway
    delivered it (what it leaves out filled in), or why not: it names another declaration or
    message, and the trader would read a decision on that one in the answer to this one."""
    ours = dict(zip(_REFERENCES, (document_reference, interchange_reference,
                                  message_reference), strict=True))
    said = answer.answers
    for field, value in ours.items():
        theirs = getattr(said, field)
        if value is not None and theirs is not None and theirs != value:
            return (f"answers.{field} {theirs!r} is not {value!r}, that of the message its "
                    "correlation_id names")
    missing = {f: v for f, v in ours.items() if v is not None and getattr(said, f) is None}
    if not missing:
        return answer
    return answer.model_copy(update={"answers": said.model_copy(update=missing)})
