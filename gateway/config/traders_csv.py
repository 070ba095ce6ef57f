"""The trader registry file (``gateway traders import FILE.csv``): one trader a row.

Columns: id, name, aeo, partners (the first files had only these, and still import with the
meaning they had: an ``aeo`` row is an active authorisation with no end date), and optionally
programme, tier, status, valid_from, valid_until, mutual_recognition.  Every error names the
file, the line and the column (docs/traders.md)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import stat
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from gateway.errors import ConfigError
from gateway.model.canonical.common import TraderId
from gateway.model.traders import PROGRAMMES, STATUSES, TrustedTrader

#: The largest registry file read (a national registry of a million traders is ~100 MB).
MAX_REGISTRY_BYTES = 512 * 1024 * 1024
TRUE = frozenset({"true", "yes", "1", "y", "x"})
FALSE = frozenset({"false", "no", "0", "n", ""})
#: Lists in one cell (partners, mutual_recognition): separated by spaces, commas or semicolons.
_SEPARATORS = re.compile(r"[\s,;]+")
_COUNTRY = re.compile(r"[A-Z]{2}")  # ISO 3166-1 alpha-2
MAX_TIER = 40
_TRADER_ID: TypeAdapter[str] = TypeAdapter(TraderId)
REQUIRED = ("id", "aeo", "partners")


class _Cell:
    """One row's cells, and errors that name file, line and column."""

    def __init__(self, path: Path, line: int, row: dict[str, str | None],
                 columns: list[str]) -> None:
        self.path, self.line, self.row, self.columns = path, line, row, columns

    def text(self, column: str) -> str:
        return (self.row.get(column) or "").strip()

    def error(self, column: str, problem: str) -> ConfigError:
        number = self.columns.index(column) + 1 if column in self.columns else 0
        return ConfigError(f"{self.path}:{self.line}: column {number} ({column}): {problem}")


def read_csv(path: Path) -> list[TrustedTrader]:
    """The file's traders; every error names the file and line (and the column)."""
    reader = csv.DictReader(io.StringIO(_text_of(path), newline=""))
    first = 1  # the line of the record being read: the header's first
    try:
        columns = [c.strip() for c in reader.fieldnames or ()]
        reader.fieldnames = columns
        missing = set(REQUIRED) - set(columns)
        if missing:
            raise ConfigError(f"{path}:1: missing column(s) {', '.join(sorted(missing))}")
        # DictReader would silently keep the last of them.  Unnamed columns (a spreadsheet's
        # trailing commas) are read by nobody.
        twice = sorted({c for c in columns if c and columns.count(c) > 1})
        if twice:
            raise ConfigError(f"{path}:1: column(s) {', '.join(twice)} named twice")
        rows: list[tuple[int, TrustedTrader]] = []
        while True:
            first = reader.line_num + 1  # the record's first line, for csv.Error to name
            row = next(reader, None)
            if row is None:
                return _once_each(path, columns, rows)
            rows.append(_row(path, reader.line_num, row, columns))
    except csv.Error as exc:  # line_num has not counted the failing record yet
        raise ConfigError(f"{path}:{first}: {exc}") from exc


def _row(path: Path, line: int, row: dict[Any, Any],
         columns: list[str]) -> tuple[int, TrustedTrader]:
    """One row's trader.  Cells beyond the header (DictReader's key None) are refused, not
    dropped: ``12345,Acme,true,van-a,van-b`` (the partners list separated by an unquoted
    comma) would otherwise register the trader to van-a alone."""
    if row.get(None):
        raise ConfigError(f"{path}:{line}: {len(columns) + len(row[None])} cells "
                          f"for {len(columns)} columns (quote a cell holding a comma)")
    return line, _trader(_Cell(path, line, row, columns))


def _once_each(path: Path, columns: list[str],
               rows: list[tuple[int, TrustedTrader]]) -> list[TrustedTrader]:
    """The traders, each identification once: a second row for the same trader would
    silently replace the first (its partners, its status)."""
    seen: dict[str, int] = {}
    for line, trader in rows:
        if trader.id in seen:
            number = columns.index("id") + 1
            raise ConfigError(f"{path}:{line}: column {number} (id): {trader.id!r} already "
                              f"on line {seen[trader.id]}")
        seen[trader.id] = line
    return [trader for _, trader in rows]


def _text_of(path: Path) -> str:
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):  # a FIFO would block the read for ever
            raise ConfigError(f"{path}: not a regular file")
        if status.st_size > MAX_REGISTRY_BYTES:
            raise ConfigError(f"{path}: {status.st_size} bytes; a registry file holds at most "
                              f"{MAX_REGISTRY_BYTES}")
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x}); save the "
                          "file as UTF-8") from exc


def _trader(cell: _Cell) -> TrustedTrader:
    aeo = _flag(cell)
    partners = frozenset(p for p in _SEPARATORS.split(cell.text("partners")) if p)
    if aeo and not partners:
        raise cell.error("partners", "empty: an AEO trader counts only in the messages of "
                         "the partners it is registered to")
    valid_from, valid_until = _date(cell, "valid_from"), _date(cell, "valid_until")
    if valid_from and valid_until and valid_from > valid_until:
        raise cell.error("valid_until", f"{valid_until} is before valid_from {valid_from}")
    return TrustedTrader(
        id=_identification(cell), name=_printable(cell, "name", 200), aeo=aeo,
        partners=partners, programme=_programme(cell), tier=_printable(cell, "tier", MAX_TIER),
        status=_status(cell), valid_from=valid_from, valid_until=valid_until,
        mutual_recognition=_countries(cell))


def _identification(cell: _Cell) -> str:
    trader_id = cell.text("id")
    if not trader_id:
        raise cell.error("id", "empty")
    try:  # the normal form messages carry: an id written otherwise would never match
        return _TRADER_ID.validate_python(trader_id)
    except ValidationError as exc:
        raise cell.error("id", str(exc.errors()[0]["msg"])) from exc


def _flag(cell: _Cell) -> bool:
    flag = cell.text("aeo").lower()
    if flag not in TRUE | FALSE:
        raise cell.error("aeo", f"{cell.text('aeo')[:40]!r} is not true or false")
    return flag in TRUE


def _printable(cell: _Cell, column: str, longest: int) -> str:
    value = cell.text(column)
    if not value.isprintable():
        raise cell.error(column, f"{value[:40]!r} holds control characters")
    if len(value) > longest:
        raise cell.error(column, f"{len(value)} characters; at most {longest}")
    return value


def _programme(cell: _Cell) -> str:
    value = cell.text("programme").upper()
    if value and value not in PROGRAMMES:
        raise cell.error("programme", f"{cell.text('programme')[:40]!r} is none of "
                         f"{', '.join(PROGRAMMES)} (docs/traders.md)")
    return value


def _status(cell: _Cell) -> str:
    value = cell.text("status").lower() or "active"
    if value not in STATUSES:
        raise cell.error("status", f"{cell.text('status')[:40]!r} is none of "
                         f"{', '.join(STATUSES)}")
    return value


def _date(cell: _Cell, column: str) -> dt.date | None:
    value = cell.text(column)
    if not value:
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value, re.ASCII):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass  # a 31st of February: said below
    raise cell.error(column, f"{value[:40]!r} is not a date (YYYY-MM-DD)")


def _countries(cell: _Cell) -> tuple[str, ...]:
    codes = tuple(c for c in _SEPARATORS.split(cell.text("mutual_recognition")) if c)
    for code in codes:
        if not _COUNTRY.fullmatch(code):
            raise cell.error("mutual_recognition", f"{code[:40]!r} is not an ISO 3166 "
                             "alpha-2 country code (two capital letters)")
    return codes
