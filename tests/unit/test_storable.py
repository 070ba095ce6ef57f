"""What the store writes: any text and any JSON document, made storable, and left as it is
when PostgreSQL can store it already."""

from __future__ import annotations

import decimal
import json

from hypothesis import given
from hypothesis import strategies as st

from gateway.store.interchanges import _reference
from gateway.store.storable import (
    storable_document,
    storable_json,
    storable_text,
    storable_value,
)

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def storable(text: str) -> bool:
    """PostgreSQL's rule: UTF-8 (no lone surrogate) and no NUL."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


@given(st.text())
def test_any_text(text: str) -> None:
    stored = storable_text(text)
    assert storable(stored)
    if storable(text):
        assert stored == text


def texts_of(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [*value, *(t for v in value.values() for t in texts_of(v))]
    if isinstance(value, list):
        return [t for v in value for t in texts_of(v)]
    return []


@given(JSON)
def test_any_document(value: object) -> None:
    for document in (storable_document(value), storable_json(json.dumps(value))):
        assert storable(document) and "\\u0000" not in document
        assert all(storable(t) for t in texts_of(json.loads(document)))


@given(JSON)
def test_json_text_is_kept_as_it_is_when_it_can_be_stored(value: object) -> None:
    text = json.dumps(value)
    if all(storable(t) for t in texts_of(value)):
        assert storable_json(text) == text


def test_values_json_has_no_type_for_are_text_and_storable() -> None:
    assert json.loads(storable_document({"d": decimal.Decimal("1.5"), "f": float("nan"),
                                         "s": "a\x00b"})) == {"d": "1.5", "f": "nan",
                                                               "s": "a\\x00b"}


HOSTILE = st.text(max_size=12) | st.sampled_from(
    ["\x00", "a\x00b", "\ud800", "x\udfffy", "\\u0000", "\U0001f600", "na\u00efve"])
DOCUMENTS = st.recursive(
    st.none() | st.booleans() | st.integers() | HOSTILE
    | st.floats(allow_nan=True, allow_infinity=True),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(HOSTILE, inner, max_size=4), max_leaves=20)


@given(DOCUMENTS)
def test_the_quick_path_writes_what_the_careful_walk_writes(value: object) -> None:
    """storable_document writes the document as it is when the text shows nothing to fix:
    the result is the careful walk's (storable_value) to the character."""
    careful = json.dumps(storable_value(value), default=lambda o: storable_text(str(o)),
                         allow_nan=False)
    assert storable_document(value) == careful


def test_a_reference_is_an_id_only_when_written_as_one() -> None:
    """gateway track's reference (store.interchanges._reference): digits as ids are written,
    within bigint; anything else, however long, is only text (no ValueError from int())."""
    assert _reference("42") == ("42", 42)
    assert _reference("042") == ("042", None)
    assert _reference("9" * 19) == ("9" * 19, None)  # beyond bigint
    assert _reference("9" * 5000)[1] is None
    assert _reference("\u0664\u0662")[1] is None  # Arabic-Indic digits: not an id
    assert _reference("DEC-1") == ("DEC-1", None)
