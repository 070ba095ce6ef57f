"""CSV and JSON exports of the console's reports (issue 14: clearance times).  A CSV cell that a
spreadsheet would read as a formula (it begins with = + - @, or a tab or carriage return) is
written with a leading apostrophe, so opening the file runs nothing (OWASP, CSV Injection);
numbers are written as numbers.  Pure: rows in, text out."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

from aiohttp import web

#: What a spreadsheet takes as the start of a formula (OWASP CSV Injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A cell as written: None empty, numbers as they are, text escaped against formulas."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180 section 2: CRLF
    writer.writerow([csv_cell(h) for h in header])
    writer.writerows([csv_cell(v) for v in row] for row in rows)
    return out.getvalue()


def download(body: str, content_type: str, filename: str) -> web.Response:
    """An attachment (RFC 6266); ``filename`` is ours (ASCII, no quotes), never a user's."""
    return web.Response(
        body=body.encode("utf-8"), headers={
            "Content-Type": f"{content_type}; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{filename}"'})


def csv_download(header: Sequence[str], rows: Iterable[Sequence[object]],
                 filename: str) -> web.Response:
    return download(csv_text(header, rows), "text/csv", filename)  # RFC 7111


def json_download(document: Any, filename: str) -> web.Response:
    return download(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n",
                    "application/json", filename)
