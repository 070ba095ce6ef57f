"""The lexer is linear for every input, and splits exactly as before and as pydifact does.

Issue 9 item 2: re-joining released pieces one at a time (``pending + separator + part``) was
quadratic: 640 KB of ``?'`` took 10 s.  The reference below is that old algorithm, kept here
only to hold the linear one to the same answers.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydifact.control.characters import Characters
from pydifact.exceptions import EDISyntaxError
from pydifact.token import Token
from pydifact.tokenizer import Tokenizer

from gateway.model.edifact import Delimiters
from gateway.wire.edifact.lexer import Lexer, split_unreleased, unescape

V4 = Delimiters()
V3 = Delimiters(repetition="")
WHITESPACE = "\r\n\t "


def old_split_unreleased(text: str, separator: str, release: str) -> list[str]:
    """The lexer's split before issue 9 (quadratic on long runs of released separators)."""
    parts = text.split(separator)
    if not release or release not in text:
        return parts
    joined: list[str] = []
    pending: str | None = None
    for part in parts:
        if pending is not None:
            part = pending + separator + part
        released = len(part) - len(part.rstrip(release))
        if released % 2:
            pending = part
        else:
            joined.append(part)
            pending = None
    if pending is not None:
        joined.append(pending)
    return joined


def old_unescape(value: str, release: str) -> str:
    kept: list[str] = []
    start = 0
    while (at := value.find(release, start)) >= 0:
        kept.append(value[start:at])
        kept.append(value[at + 1 : at + 2])
        start = at + 2
    kept.append(value[start:])
    return "".join(kept)


Lexeme = tuple[str, str, list[list[list[str]]]]


def old_lex(text: str, d: Delimiters) -> tuple[list[Lexeme], str]:
    """(tag, raw, elements) of each segment, and the unterminated rest, the old way."""
    pieces = old_split_unreleased(text, d.terminator, d.release)
    rest = pieces.pop().strip(WHITESPACE)
    segments = []
    for piece in pieces:
        raw = piece.lstrip(WHITESPACE)
        elements = []
        for element in old_split_unreleased(raw, d.element, d.release)[1:]:
            occurrences = (old_split_unreleased(element, d.repetition, d.release)
                           if d.repetition and d.repetition in element else [element])
            elements.append([[old_unescape(c, d.release) if d.release else c
                              for c in old_split_unreleased(o, d.component, d.release)]
                             for o in occurrences])
        segments.append((raw.partition(d.element)[0], raw, elements))
    return segments, rest


def new_lex(text: str, d: Delimiters) -> tuple[list[Lexeme], str]:
    lexed = Lexer(d).lex(text)
    return [(s.tag, s.raw, [[list(c) for c in e] for e in s.elements])
            for s in lexed.segments], lexed.unterminated


#: Service characters, release runs and white space, so that every path is taken.
texts = st.lists(st.sampled_from(["A", "B", "?", "+", ":", "'", "*", " ", "\n", "??", "?'",
                                  "?+", "?:", "?*", "UNH+"]), max_size=60).map("".join)


@settings(max_examples=500, deadline=None)
@given(texts, st.sampled_from([V3, V4, Delimiters(release="")]))
def test_the_linear_lexer_splits_as_the_old_one(text: str, delimiters: Delimiters) -> None:
    assert new_lex(text, delimiters) == old_lex(text, delimiters)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("a?+")), max_size=40),
       st.sampled_from(["+", "'"]))
def test_split_and_unescape_agree_with_the_old_ones(text: str, separator: str) -> None:
    assert split_unreleased(text, separator, "?") == old_split_unreleased(text, separator, "?")
    assert unescape(text, "?") == old_unescape(text, "?")


def pydifact_segments(text: str) -> list[list[list[str]]] | None:
    """pydifact's tokens grouped into segments, elements and components (its parser adds
    rules of its own about empty elements; its tokenizer is the reference for release
    characters).  None when pydifact cannot read the text."""
    characters = Characters()
    characters.component_separator, characters.data_separator = ":", "+"
    characters.escape_character, characters.segment_terminator = "?", "'"
    try:
        tokens = list(Tokenizer().get_tokens(text, characters))
    except EDISyntaxError:
        return None
    segments: list[list[list[str]]] = []
    current: list[list[str]] = [[""]]
    for token in tokens:
        if token.type is Token.Type.CONTENT:
            current[-1][-1] += token.value
        elif token.type is Token.Type.COMPONENT_SEPARATOR:
            current[-1].append("")
        elif token.type is Token.Type.DATA_SEPARATOR:
            current.append([""])
        else:
            segments.append(current)
            current = [[""]]
    return segments


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(["A", "B", "?", "+", ":", "??", "?'", "?+", "?:", "'"]),
                max_size=60).map(lambda parts: "FTX+" + "".join(parts) + "'"))
def test_the_linear_lexer_splits_as_pydifact(text: str) -> None:
    """No white space (pydifact skips it after a terminator only) and no repetition separator
    (pydifact does not split repetitions); a segment's tag is compared where it is plain."""
    theirs = pydifact_segments(text)
    if theirs is None:  # only pydifact's refusal (a text that ends released) skips
        assert text.endswith("?'") and (len(text) - len(text[:-1].rstrip("?"))) % 2 == 0
        return
    ours = Lexer(V3).lex(text)
    assert len(ours.segments) == len(theirs)
    for segment, their in zip(ours.segments, theirs, strict=True):
        if segment.tag.isalpha():
            assert [segment.tag] == their[0]
        assert [list(e[0]) for e in segment.elements] == their[1:]


def _lex_everything(text: str) -> None:
    for segment in Lexer(V4).lex(text).segments:
        for element in segment.elements:  # every level split, every value unescaped
            assert element is not None


def _best_of(runs: int, work: Callable[[], None]) -> float:
    """The best time of ``runs``, the cyclic collector paused as the processor pauses it
    (app/memory.py): its passes would be timed too, and they grow with the heap.  This
    thread's CPU time, not the wall clock: other processes on a shared machine (or the other
    test workers of ``pytest -n``) do not count."""
    best = float("inf")
    gc.disable()
    try:
        for _ in range(runs):
            start = time.thread_time()
            work()
            best = min(best, time.thread_time() - start)
    finally:
        gc.enable()
    return best


@pytest.mark.parametrize("unit", ["?'", "??", "?+", "?:", "?*", "a?'?+?:??"])
@pytest.mark.parametrize("where", ["segment", "element"])
def test_lexing_is_linear_in_release_characters(unit: str, where: str) -> None:
    """16 times the text may take about 16 times as long; the old lexer took about 256 times
    (quadratic).  The bound, 64, is far from both, and each time is the best of five runs, so
    a busy machine does not fail it and a quadratic step cannot pass it."""
    head = "UNH+1+CUSDEC:D:96B:UN'FTX+AAA+++" if where == "element" else ""

    def text(n: int) -> str:
        return head + unit * n + "'UNT+3+1'"

    small, large = text(8_000), text(128_000)
    _lex_everything(small)  # warm up
    ratio = _best_of(5, lambda: _lex_everything(large)) / max(
        _best_of(5, lambda: _lex_everything(small)), 1e-5)
    assert ratio < 64, f"16x the {unit!r} took {ratio:.0f}x the time"
