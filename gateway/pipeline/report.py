"""The plain-text answer for a submission that has no readable UNB (so no CONTRL can be
addressed): the partner still learns what was wrong, in words."""

from __future__ import annotations

import datetime as dt


def error_report(file_name: str, received: dt.datetime, reason: str, code: int) -> bytes:
    lines = [
        "Single Window Gateway: submission rejected",
        f"File: {file_name}",
        f"Received: {received.isoformat(timespec='seconds')}",
        f"Reason: {reason}",
        f"Syntax error code (UN/EDIFACT 0085): {code}",
        "Nothing from this file was delivered to any agency.",
        "Correct the file and send it again.",
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")
