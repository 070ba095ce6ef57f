"""One structured (JSON) log line per event, with the partner and interchange it concerns."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


class JsonFormatter(logging.Formatter):
    def __init__(self, process: str | None = None) -> None:
        super().__init__()
        #: Which process of ``gateway serve --workers`` wrote the line (None: the main one).
        self._process = process

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        if self._process is not None:
            payload["process"] = self._process
        payload.update(getattr(record, "fields", {}))
        if record.exc_info:
            payload["traceback"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


def configure(level: str = "INFO", *, process: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(process))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # asyncssh logs every packet at INFO; its connection lines are enough at WARNING.
    logging.getLogger("asyncssh").setLevel(max(logging.getLevelName(level), logging.WARNING))


def event(logger: logging.Logger, name: str, *, level: int = logging.INFO,
          exc_info: bool | BaseException = False, **fields: Any) -> None:
    logger.log(level, name, extra={"fields": fields}, exc_info=exc_info)


SECRET_PARAMETERS = frozenset({"password", "passfile", "sslpassword", "sslkey", "token"})


def redact(url: str) -> str:
    """A URL fit for logs: the password is never written (DESIGN rule 5), whether it stands in
    the user information or in a query parameter (libpq takes ``?password=``)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        credentials, _, host = netloc.rpartition("@")
        user, colon, _secret = credentials.partition(":")
        netloc = f"{user}:***@{host}" if colon else netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if k.lower() in SECRET_PARAMETERS else v)
                           for k, v in pairs], safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=query))
