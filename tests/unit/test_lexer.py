"""The lexer: separators, release characters, repetitions; and pydifact as the reference."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import EnvelopeError
from gateway.model.edifact import Delimiters
from gateway.wire.edifact.decoding import decode
from gateway.wire.edifact.lexer import Lexer, split_unreleased
from gateway.wire.edifact.writer import Writer
from tests.support.edifact import EDIFACT_CORPUS

V4 = Delimiters()
V3 = Delimiters(repetition="")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a+b", ["a", "b"]),
        ("a?+b+c", ["a?+b", "c"]),
        ("a??+b", ["a??", "b"]),
        ("a???+b", ["a???+b"]),
        ("", [""]),
        ("+", ["", ""]),
    ],
)
def test_split_honours_odd_runs_of_release_characters(text: str, expected: list[str]) -> None:
    assert split_unreleased(text, "+", "?") == expected


def test_segments_elements_components_and_escapes() -> None:
    lexed = Lexer(V3).lex("UNH+1+CUSDEC:D:96B:UN'\r\nFTX+AAA+++a?'b?:c?+d??e*f'")
    unh, ftx = lexed.segments
    assert (unh.tag, unh.value(2, 1), unh.value(2, 3), unh.position) == ("UNH", "CUSDEC", "96B", 1)
    assert ftx.value(4) == "a'b:c+d?e*f"
    assert ftx.position == 2
    assert lexed.unterminated == ""


def test_syntax_4_repetitions_are_occurrences() -> None:
    segment = Lexer(V4).lex("COM+1:2*3:4+x?*y'").segments[0]
    assert segment.occurrences(1) == (("1", "2"), ("3", "4"))
    assert segment.value(1, 1, occurrence=2) == "3"
    assert segment.value(2) == "x*y"


def test_text_after_the_last_terminator_is_reported() -> None:
    assert Lexer(V3).lex("UNH+1'UNT+2").unterminated == "UNT+2"


def test_missing_positions_read_as_empty() -> None:
    segment = Lexer(V3).lex("LOC+27'").segments[0]
    assert segment.value(2, 1) == "" and segment.value(9, 9) == "" and segment.occurrences(5) == ()


values = st.text(alphabet=st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=12)


@given(st.lists(st.lists(st.lists(values, min_size=1, max_size=3), min_size=1, max_size=4),
                min_size=1, max_size=5), st.sampled_from([V3, V4]))
def test_writer_and_lexer_round_trip(elements: list[list[list[str]]],
                                     delimiters: Delimiters) -> None:
    writer = Writer(delimiters)
    text = "".join(writer.segment("FTX", [list(c) for c in e]) for e in elements)
    lexed = Lexer(delimiters).lex(text)
    for written, segment in zip(elements, lexed.segments, strict=True):
        for index, components in enumerate(written, start=1):
            for position, value in enumerate(components, start=1):
                # trailing empty elements/components are not written (ISO 9735-1 clause 7.1)
                assert segment.value(index, position) == value


def _corpus_files() -> list[str]:
    if not EDIFACT_CORPUS.is_dir():
        return []
    return sorted(p.name for p in EDIFACT_CORPUS.glob("*.edi"))


@pytest.mark.skipif(not EDIFACT_CORPUS.is_dir(), reason="../shared/corpus is absent")
@pytest.mark.parametrize("name", _corpus_files())
def test_same_segments_as_pydifact_on_the_corpus(name: str) -> None:
    """pydifact is the reference tokenizer (DESIGN.md): on the same text, wherever it can read
    a file, our segments are its segments."""
    from pydifact.segmentcollection import Interchange as PydifactInterchange

    data = (EDIFACT_CORPUS / name).read_bytes()
    text = data.decode("utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "latin-1")
    try:
        delimiters = decode(data).delimiters
    except EnvelopeError as exc:  # our answer to a file without UNB: a refusal, not a crash
        pytest.skip(f"no UNB to read: {exc}")
    # Any other exception of ours fails the test; only pydifact's own refusal skips it.
    try:
        their_segments = [s for s in PydifactInterchange.from_str(text).segments
                          if s.tag != "UNA"]
    except Exception as exc:  # noqa: BLE001 - pydifact raises ValueError and its own errors
        pytest.skip(f"pydifact cannot read this file: {exc!r}")
    if delimiters.repetition and delimiters.repetition in text:
        pytest.skip("syntax 4 repetitions: pydifact does not split them")
    stripped = text.lstrip("\r\n\t ")
    body = stripped[9:] if stripped.startswith("UNA") else stripped
    # pydifact keeps UNB and UNZ apart as the interchange header and trailer
    ours = [s for s in Lexer(delimiters).lex(body).segments if s.tag not in ("UNB", "UNZ")]
    assert [s.tag for s in ours] == [s.tag for s in their_segments]
    for mine, their in zip(ours, their_segments, strict=True):
        flat = [list(e[0]) if len(e[0]) > 1 else e[0][0] for e in mine.elements]
        assert flat == their.elements, f"{name} segment {mine.position} {mine.tag}"
