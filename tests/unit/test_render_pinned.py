"""The bytes the gateway writes back are pinned: answers (CUSRES, APERAK) and CONTRLs, byte for
byte as the writer made them before it was made faster (issue 10, Speed).  A partner's
translator, an archive, a signature already given: each depends on the exact bytes.

Two kinds of pin: a few answers and CONTRLs written out in full (readable when one differs),
and the SHA-256 of many more made from a seeded generator, hostile values included (service
characters, characters outside the charset, controls, values too long, lower case in level
A), through ``render_interchange``, ``write_interchange``, ``build_contrl`` and ``Writer``.
Each digest was taken from the writer as it was; a change of any byte changes it."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import random
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.errors import GatewayError
from gateway.model.canonical import ApplicationError, Canonical, CustomsResponse
from gateway.model.edifact import (
    Delimiters,
    GroupHeader,
    InterchangeHeader,
    MessageIdentifier,
    PartyId,
)
from gateway.model.findings import Finding
from gateway.model.findings import SyntaxErrorCode as Code
from gateway.model.outcome import MessageOutcome
from gateway.pipeline.contrl import AckEnvelope, build_contrl, write_interchange
from gateway.pipeline.render import render_interchange
from gateway.wire.edifact.syntax import CODECS
from gateway.wire.edifact.writer import OutSegment, Writer
from tests.support.pipeline import shipped_mappings

PREPARED = dt.datetime(2026, 12, 3, 9, 30, 5, tzinfo=dt.UTC)
GATEWAY, TRADER = PartyId("SWGATEWAY", "ZZZ"), PartyId("DEMOVAN")


def source(message_type: str, release: str, interchange: str = "A0000000000001",
           message: str = "1") -> dict[str, str]:
    return {"syntax": "EDIFACT", "message_type": message_type, "release": release,
            "sender": "SWGATEWAY", "recipient": "DEMOVAN", "interchange_reference": interchange,
            "message_reference": message}


RELEASED = CustomsResponse.model_validate({
    "source": source("CUSRES", "D96B"), "agency": "customs", "decision": "released",
    "agency_reference": "TW2600000123",
    "answers": {"document_reference": "DEC-2026-000123", "interchange_reference": "ICR0001",
                "message_reference": "1", "correlation_id": "swg-1-1-customs"},
    "decided_at": dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC),
    "reasons": [{"code": "A1", "text": "documents in order"}],
    "duties": [{"qualifier": "161", "value": Decimal("1250.00"), "currency": "TWD"}]})

#: Every service character in texts, a Latin-1 letter, syntax 4's repetition separator, a
#: negative duty and a zone west of UTC.
HELD = CustomsResponse.model_validate({
    "source": source("CUSRES", "D01B", "R?+:'*1", "M'1"), "agency": "quarantäne",
    "decision": "held", "answers": {"document_reference": "DEC:1+2?3'4*5"},
    "decided_at": dt.datetime(2026, 1, 2, 3, 4, 5,
                              tzinfo=dt.timezone(-dt.timedelta(hours=5, minutes=30))),
    "reasons": [{"text": "Prüfung: 'Ware' + Papiere? *jetzt*"}, {"code": "ZZ9", "text": "b"}],
    "duties": [{"qualifier": "55", "value": Decimal("-0.5"), "currency": None},
               {"qualifier": "38", "value": Decimal("1E+3"), "currency": "EUR"}]})

REFUSED = ApplicationError.model_validate({
    "source": source("APERAK", "D96B", "E1", "E1"),
    "answers": {"document_reference": "DEC-9", "interchange_reference": "IC9"},
    "reported_at": dt.datetime(2026, 12, 3, 23, 59, 59, tzinfo=dt.timezone(
        dt.timedelta(hours=8))),
    "errors": [{"code": "12", "text": "no such office"}, {"code": "13", "text": "?"}]})

REFUSED_D01B = REFUSED.model_copy(update={"source": REFUSED.source.model_copy(
    update={"release": "D01B"})})


# --- answers written out in full -------------------------------------------------------------

ANSWERS: list[tuple[Canonical, str, PartyId | None, PartyId | None, str]] = [
    (RELEASED, "3", GATEWAY, TRADER,
     "UNA:+.? '\nUNB+UNOC:3+SWGATEWAY:ZZZ+DEMOVAN+261203:0930+A0000000000001'\n"
     "UNH+1+CUSRES:D:96B:UN'\nBGM+962'\nDTM+137:20261203100000?+0000:304'\nGIS+4'\n"
     "NAD+MS+customs'\nRFF+AFM:TW2600000123'\nRFF+ABT:DEC-2026-000123'\nRFF+AGO:1'\n"
     "RFF+ALL:ICR0001'\nERP'\nERC+A1'\nFTX+AAO+++documents in order'\nTAX+5'\n"
     "MOA+161:1250.00:TWD'\nUNT+15+1'\nUNZ+1+A0000000000001'\n"),
    (HELD, "4", None, None,
     "UNA:+.?*'\nUNB+UNOC:4+SWGATEWAY+DEMOVAN+20261203:0930+R???+?:?'?*1'\n"
     "UNH+M?'1+CUSRES:D:01B:UN'\nBGM+962'\nDTM+137:20260102030405-0530:304'\nGIS+7'\n"
     "NAD+MS+quarantäne'\nRFF+ABT:DEC?:1?+2??3?'4?*5'\nERP'\nFTX+AAO+++Prüfung?: ?'Ware?' "
     "?+ Papiere?? ?*jetzt?*'\nERP'\nERC+ZZ9'\nFTX+AAO+++b'\nTAX+5'\nMOA+55:-0.5'\nTAX+5'\n"
     "MOA+38:1000:EUR'\nUNT+16+M?'1'\nUNZ+1+R???+?:?'?*1'\n"),
    (REFUSED, "3", GATEWAY, TRADER,
     "UNA:+.? '\nUNB+UNOC:3+SWGATEWAY:ZZZ+DEMOVAN+261203:0930+E1'\nUNH+E1+APERAK:D:96B:UN'\n"
     "BGM+963+++RE'\nDTM+137:20261203235959?+0800:304'\nRFF+ACW:DEC-9'\nRFF+ALL:IC9'\n"
     "ERC+12'\nFTX+AAO+++no such office'\nERC+13'\nFTX+AAO+++??'\nUNT+10+E1'\nUNZ+1+E1'\n"),
    (REFUSED_D01B, "4", GATEWAY, TRADER,
     "UNA:+.?*'\nUNB+UNOC:4+SWGATEWAY:ZZZ+DEMOVAN+20261203:0930+E1'\n"
     "UNH+E1+APERAK:D:01B:UN'\nBGM+963+++RE'\nDTM+137:20261203235959?+0800:304'\n"
     "RFF+ACW:DEC-9'\nRFF+ALL:IC9'\nERC+12'\nFTX+AAO+++no such office'\nERC+13'\n"
     "FTX+AAO+++??'\nUNT+10+E1'\nUNZ+1+E1'\n"),
]


@pytest.mark.parametrize(("answer", "version", "sender", "recipient", "expected"), ANSWERS)
def test_answers_are_written_byte_for_byte_as_before(
        answer: Canonical, version: str, sender: PartyId | None, recipient: PartyId | None,
        expected: str) -> None:
    written = render_interchange(answer, shipped_mappings(), PREPARED, version, sender=sender,
                                 recipient=recipient)
    assert written == expected.encode("latin-1")


# --- CONTRLs written out in full -------------------------------------------------------------

CUSDEC = MessageIdentifier("CUSDEC", "D", "96B", "UN")


def contrl(identifier: str, version: str, echoed: str, *, grouped: bool) -> bytes:
    """A CONTRL echoing ``echoed`` wherever it echoes a partner's value, rejecting one message
    (a data segment error with its element) and acknowledging another."""
    subject = InterchangeHeader(identifier, version, PartyId(echoed, echoed[:4]),
                                PartyId("SWGATEWAY", "ZZZ"), "261122", "0930", echoed)
    group = echoed if grouped else ""
    rejected = MessageOutcome(position=1, reference=echoed, identifier=MessageIdentifier(
        echoed, "D", "96B", "UN"), unh_position=2, group_reference=group, findings=(
        Finding(Code.INVALID_VALUE, "bad", "NAD", 5, 3, 2),
        Finding(Code.MISSING, "gone", "DTM", 7)))
    accepted = MessageOutcome(position=2, reference="M2", identifier=CUSDEC, unh_position=20,
                              group_reference=group)
    groups = (GroupHeader(echoed, PartyId(echoed, "ZZ"), PartyId("SWGATEWAY")),) \
        if grouped else ()
    envelope = AckEnvelope(PartyId("SWGATEWAY", "ZZZ"), PartyId(echoed, "ZZ"), "C77", PREPARED)
    return build_contrl(envelope, subject, (), (rejected, accepted), groups)


CONTRLS: list[tuple[str, str, str, bool, bytes]] = [
    ("UNOA", "3", "Ab?c\x00é+", False,
     b"UNA:+.? '\nUNB+UNOA:3+SWGATEWAY:ZZZ+AB??C..?++261203:0930+C77'\n"
     b"UNH+1+CONTRL:D:3:UN'\nUCI+AB??C..?++AB??C..?++SWGATEWAY:ZZZ+7'\n"
     b"UCM+AB??C..?++AB??C..:D:96B:UN+4'\nUCS+4'\nUCD+12+4:2'\nUCS+6+13'\n"
     b"UCM+M2+CUSDEC:D:96B:UN+7'\nUNT+8+1'\nUNZ+1+C77'\n"),
    ("UNOC", "4", "R*1:x'\u20ac", True,
     b"UNA:+.?*'\nUNB+UNOC:4+SWGATEWAY:ZZZ+R?*1?:x?'.+20261203:0930+C77'\n"
     b"UNH+1+CONTRL:4:1:UN'\nUCI+R?*1?:x?'.+R?*1?:x?'.+SWGATEWAY:ZZZ+7'\n"
     b"UCF+R?*1?:x?'.+R?*1?:x?'.+SWGATEWAY+7'\nUCM+R?*1?:x?'.+R?*1?:x?':D:96B:UN+4'\n"
     b"UCS+4'\nUCD+12+4:2'\nUCS+6+13'\nUCM+M2+CUSDEC:D:96B:UN+7'\nUNT+9+1'\nUNZ+1+C77'\n"),
    ("UNOY", "4", "Ré\u0663\u20ac", False,
     "UNA:+.?*'\nUNB+UNOY:4+SWGATEWAY:ZZZ+Ré\u0663\u20ac+20261203:0930+C77'\n"
     "UNH+1+CONTRL:4:1:UN'\nUCI+Ré\u0663\u20ac+Ré\u0663\u20ac+SWGATEWAY:ZZZ+7'\n"
     "UCM+Ré\u0663\u20ac+Ré\u0663\u20ac:D:96B:UN+4'\nUCS+4'\nUCD+12+4:2'\nUCS+6+13'\n"
     "UCM+M2+CUSDEC:D:96B:UN+7'\nUNT+8+1'\nUNZ+1+C77'\n".encode()),
]


@pytest.mark.parametrize(("identifier", "version", "echoed", "grouped", "expected"), CONTRLS)
def test_contrls_are_written_byte_for_byte_as_before(
        identifier: str, version: str, echoed: str, grouped: bool, expected: bytes) -> None:
    assert contrl(identifier, version, echoed, grouped=grouped) == expected


# --- many more, pinned by their digest ---------------------------------------------------------

#: Letters, digits, every service character, Latin-1 and other scripts, controls.
ALPHABET = ("ABCXYZ019 abcxyz-./()=!\"%&;<>#@[]{}\\|~_^`$?+:'*"
            "éÄßÿ\u20ac\u0663\u4e00\x00\x07\x1f\x7f\ufffe")
READABLE = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -./"


def text(rng: random.Random, longest: int, alphabet: str = ALPHABET) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, longest)))


def either(rng: random.Random, longest: int) -> str:
    """Mostly readable, sometimes hostile, now and then too long for where it goes."""
    roll = rng.random()
    if roll < 0.6:
        return text(rng, longest, READABLE)
    return text(rng, longest * 3 if roll > 0.9 else longest)


def moment(rng: random.Random) -> dt.datetime:
    zone = rng.choice([dt.UTC, dt.timezone(dt.timedelta(hours=8)),
                       dt.timezone(-dt.timedelta(hours=5, minutes=30)), None])
    return dt.datetime(rng.randint(1990, 2090), rng.randint(1, 12), rng.randint(1, 28),
                       rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59), tzinfo=zone)


def amount(rng: random.Random) -> dict[str, Any]:
    value = Decimal(rng.randint(-10**12, 10**12)).scaleb(-rng.randint(0, 4))
    return {"qualifier": rng.choice(["38", "55", "161", "176", "X"]), "value": value,
            "currency": rng.choice(["USD", "EUR", "TWD", None])}


def random_answer(rng: random.Random) -> dict[str, Any]:
    message_type = rng.choice(["CUSRES", "APERAK"])
    answers = {"document_reference": either(rng, 35) or "D",
               "interchange_reference": rng.choice([None, either(rng, 14)]),
               "message_reference": rng.choice([None, either(rng, 14)])}
    reasons = [{"code": rng.choice([None, either(rng, 3)]), "text": either(rng, 70) or "t"}
               for _ in range(rng.randint(0, 3))]
    values: dict[str, Any] = {
        "source": {**source(message_type, rng.choice(["D96B", "D01B"]), either(rng, 14),
                            either(rng, 14))},
        "answers": answers}
    if message_type == "APERAK":
        for reason in reasons:
            reason["code"] = reason["code"] or "1"
        return {**values, "kind": "ApplicationError", "reported_at": moment(rng),
                "errors": reasons or [{"code": "12", "text": "x"}]}
    return {**values, "kind": "CustomsResponse", "agency": either(rng, 35) or "a",
            "decision": rng.choice(["accepted", "rejected", "released", "held", "inspection",
                                    "pending", "cancelled", "documents_required",
                                    "licence_passed", "licence_failed"]),
            "agency_reference": rng.choice([None, text(rng, 35, READABLE)]),
            "decided_at": moment(rng), "reasons": reasons,
            "duties": [amount(rng) for _ in range(rng.randint(0, 3))]}


def party(rng: random.Random) -> PartyId:
    return PartyId(either(rng, 35), rng.choice(["", "ZZZ", "14", either(rng, 4)]))


def rendered(rng: random.Random) -> Iterator[bytes]:
    mappings = shipped_mappings()
    for _ in range(600):
        values = random_answer(rng)
        model = CustomsResponse if values["kind"] == "CustomsResponse" else ApplicationError
        version = rng.choice(["3", "4"])
        sender, recipient = (party(rng) if rng.random() < 0.5 else None for _ in range(2))
        try:
            answer = model.model_validate(values)
        except ValidationError:
            yield b"invalid"
            continue
        yield outcome(functools.partial(render_interchange, answer, mappings, moment(rng),
                                        version, sender=sender, recipient=recipient))


def outcome(make: Callable[[], bytes]) -> bytes:
    """What was written, or the error and its text (a refusal is pinned as well)."""
    try:
        return make()
    except GatewayError as exc:
        return f"{type(exc).__name__}: {exc}".encode("utf-8", "backslashreplace")


def element(rng: random.Random) -> str | list[str]:
    if rng.random() < 0.6:
        return text(rng, 8)
    return [text(rng, 6) for _ in range(rng.randint(0, 4))]


def segments(rng: random.Random) -> list[OutSegment]:
    body: list[OutSegment] = [("UNH", ["1", ["CUSRES", "D", "96B", "UN"]])]
    body += [(rng.choice(["BGM", "FTX", "RFF", "UCI"]),
              [element(rng) for _ in range(rng.randint(0, 6))]) for _ in range(rng.randint(0, 5))]
    return [*body, ("UNT", [str(len(body) + 1), "1"])]


def interchanges(rng: random.Random) -> Iterator[bytes]:
    for _ in range(600):
        identifier = rng.choice(sorted(CODECS))
        version = rng.choice(["3", "4"])
        envelope = AckEnvelope(party(rng), party(rng), either(rng, 14), moment(rng))
        yield outcome(functools.partial(write_interchange, envelope, identifier, version,
                                        segments(rng)))


def finding(rng: random.Random) -> Finding:
    return Finding(rng.choice(list(Code)), "t", rng.choice(["", "UNB", "UNH", "NAD", "UNG"]),
                   rng.choice([None, rng.randint(1, 2_000_000)]),
                   rng.choice([None, rng.randint(1, 1200)]),
                   rng.choice([None, rng.randint(1, 1200)]))


def contrls(rng: random.Random) -> Iterator[bytes]:
    for _ in range(400):
        identifier = rng.choice([*sorted(CODECS), "XXXX"])
        header = InterchangeHeader(identifier, rng.choice(["1", "2", "3", "4", "9"]),
                                   party(rng), party(rng), "261122", "0930", either(rng, 14))
        groups = [GroupHeader(either(rng, 14), party(rng), party(rng))
                  for _ in range(rng.randint(0, 2))]
        messages = [MessageOutcome(
            position=n, reference=either(rng, 14), identifier=MessageIdentifier(
                *(either(rng, 6) for _ in range(4))), unh_position=rng.randint(1, 50),
            group_reference=rng.choice(["", *(g.reference for g in groups)]),
            findings=tuple(finding(rng) for _ in range(rng.choice([0, 0, 1, 3]))))
            for n in range(rng.randint(0, 4))]
        problems = tuple(finding(rng) for _ in range(rng.choice([0, 0, 0, 1])))
        envelope = AckEnvelope(party(rng), party(rng), either(rng, 14), moment(rng))
        yield outcome(functools.partial(build_contrl, envelope, header, problems, messages,
                                        groups))


def written(rng: random.Random) -> Iterator[bytes]:
    """Writer alone, with other service characters (a UNA may name any)."""
    for _ in range(400):
        chosen = rng.sample(":+.?*'|^~!", 6)
        delimiters = Delimiters(component=chosen[0], element=chosen[1], decimal=chosen[2],
                                release=rng.choice([chosen[3], ""]),
                                repetition=rng.choice([chosen[4], ""]), terminator=chosen[5])
        yield Writer(delimiters).write(
            [(rng.choice(["AAA", "BBB"]), [element(rng) for _ in range(rng.randint(0, 6))])
             for _ in range(rng.randint(0, 4))],
            with_una=rng.random() < 0.5, line_breaks=rng.random() < 0.5
        ).encode("utf-8", "surrogatepass")


def digest(made: Iterator[bytes]) -> str:
    hashed = hashlib.sha256()
    for each in made:
        hashed.update(len(each).to_bytes(8, "big") + each)
    return hashed.hexdigest()


@pytest.mark.parametrize(("made", "pinned"), [
    (rendered,
     "704cd24210e693587ab8171d7e2fcf40e06baa9bc40319d52301c347c164ffe8"),
    (interchanges,
     "5ce42b3aa34105a5359b59ba2eec3f554e4596d7dbdcf41b0491b80c35ddb63c"),
    (contrls,
     "41e5f38c7855dd63208695b560ed22f025f654c23185a80e6e9ad9151778b8f1"),
    (written,
     "07a97b4bd023a2f5dd5c86756349eadde102454ead87367f568242f471a94660"),
])
def test_many_more_are_written_as_before(made: Callable[[random.Random], Iterator[bytes]],
                                         pinned: str) -> None:
    assert digest(made(random.Random(f"pinned {made.__name__}"))) == pinned


def test_the_segments_of_a_mapping_written_either_way_are_the_same_bytes() -> None:
    """render_interchange writes a message straight from the mapping's drafts; written from
    the segments ``CompiledMapping.render`` gives (through ``write_interchange``, as CONTRLs
    are) it is the same, byte for byte."""
    rng, mappings, compared = random.Random("either way"), shipped_mappings(), 0
    for _ in range(300):
        values = random_answer(rng)
        model = CustomsResponse if values["kind"] == "CustomsResponse" else ApplicationError
        version = rng.choice(["3", "4"])
        try:
            answer = model.model_validate(values)
            direct = render_interchange(answer, mappings, PREPARED, version)
        except (ValidationError, GatewayError):
            continue
        source = answer.source
        mapping = mappings.get(source.message_type, source.release)
        assert mapping is not None
        envelope = AckEnvelope(PartyId(source.sender), PartyId(source.recipient),
                               source.interchange_reference, PREPARED)
        assert write_interchange(envelope, "UNOC", version, mapping.render(
            answer, source.message_reference)) == direct
        compared += 1
    assert compared > 150
