"""What a PostgreSQL text column or jsonb document can hold, applied to every value the store
writes (DESIGN rule 6: a partner value never reaches a column unchecked).

PostgreSQL refuses the NUL character in ``text`` and ``\\u0000`` in ``jsonb`` (its text type is
NUL-terminated), and a lone surrogate cannot be encoded as UTF-8 at all.  The pipeline already
answers such characters with a finding (0085 = 21); what it echoes of them (a control reference,
a file name, a finding's text) is stored in a visible escape instead, so one value can never
make a decision unwritable.
"""

from __future__ import annotations

import json
import math
from typing import Any

NUL = "\x00"
#: How a NUL is shown once stored: readable in ``gateway track``, never a terminator.
NUL_ESCAPE = "\\x00"
#: JSON escapes that may stand for a NUL or a surrogate (U+D800-U+DFFF): \u0000, \ud800..\udfff.
_SUSPECT_ESCAPES = ("\\u0000", "\\ud", "\\uD")


def storable_text(value: str) -> str:
    """``value`` with every character PostgreSQL cannot store replaced by a visible escape
    (NUL) or U+FFFD (a lone surrogate)."""
    if value.isascii():
        return value.replace(NUL, NUL_ESCAPE) if NUL in value else value
    if NUL in value:
        value = value.replace(NUL, NUL_ESCAPE)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return _without_surrogates(value)
    return value


def _without_surrogates(value: str) -> str:
    return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in value)


def storable_optional(value: str | None) -> str | None:
    return None if value is None else storable_text(value)


def storable_texts(values: tuple[str, ...] | list[str]) -> list[str]:
    return [storable_text(v) for v in values]


def storable_value(value: Any) -> Any:
    """A JSON-ready structure with every string (keys too) made storable."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable_text(str(k)): storable_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_value(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or Infinity, and jsonb refuses Python's spelling
    return value


def storable_document(value: Any) -> str:
    """``value`` as JSON text that jsonb accepts (what JSON has no type for, a date or a
    Decimal, is written as its text, made storable too).

    Written as it is first: JSON escapes a NUL and a lone surrogate (ASCII output), and
    refuses NaN and infinities, so the walk of ``storable_value`` (a copy of every string) is
    needed only when the text shows one of them, or a key JSON cannot write.  It runs for
    every event and finding the store writes."""
    try:
        text = json.dumps(value, default=_as_text, allow_nan=False)
    except (ValueError, TypeError):
        pass  # NaN or infinity, or a key that is not text: the careful way below
    else:
        if not _suspect(text):
            return text
    return json.dumps(storable_value(value), default=_as_text, allow_nan=False)


def _as_text(other: Any) -> str:
    return storable_text(str(other))


def _suspect(text: str) -> bool:
    """JSON text that may hold an escaped NUL or a lone surrogate."""
    return any(escape in text for escape in _SUSPECT_ESCAPES)


def storable_json(text: str) -> str:
    """JSON text (say a canonical message's ``model_dump_json()``) that jsonb accepts; parsed
    again only when it may hold an escaped NUL or a lone surrogate (JSON writes the escapes'
    hex digits in either case).  No copy of the text is made on the common path: it runs for
    every message stored."""
    if not _suspect(text):
        return text
    return storable_document(json.loads(text))
