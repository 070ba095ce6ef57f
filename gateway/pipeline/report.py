"""The plain-text answer for a submission that has no readable UNB (so no CONTRL can be
addressed): the partner still learns what was wrong, in words."""

from __future__ import annotations

import datetime as dt

from gateway.model.edifact import Delimiters
from gateway.wire.edifact.syntax import invalid_characters

#: Every control character, noncharacter and undecodable byte (none is a service character in
#: a plain text report).
_INVALID = invalid_characters(Delimiters()).pattern


def error_report(file_name: str, received: dt.datetime, reason: str, code: int) -> bytes:
    lines = [
        "Single Window Gateway: submission rejected",
        f"File: {_visible(file_name)}",
        f"Received: {received.isoformat(timespec='seconds')}",
        f"Reason: {_visible(reason)}",
        f"Syntax error code (UN/EDIFACT 0085): {code}",
        "Nothing from this file was delivered to any agency.",
        "Correct the file and send it again.",
    ]
    # backslashreplace: any lone surrogate the pattern does not cover is still written
    return ("\n".join(lines) + "\n").encode("utf-8", errors="backslashreplace")


def _visible(text: str) -> str:
    """``text`` on one line with each control character shown as its escape (``\\x00``,
    ``\\n``): a partner's file name can neither add lines to the report nor hold a byte UTF-8
    cannot write (a lone surrogate from an undecodable name)."""
    if _INVALID.search(text) is None:
        return text
    return _INVALID.sub(lambda found: repr(found.group())[1:-1], text)
