"""URLs in logs and messages never show a password (DESIGN rule 5)."""

from __future__ import annotations

import pytest

from gateway.logs import redact


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://postgres:secret@127.0.0.1:5432/gateway",
     "postgresql://postgres:***@127.0.0.1:5432/gateway"),
    ("amqp://customs:p%40ss@h:5672/%2F", "amqp://customs:***@h:5672/%2F"),
    ("postgresql://u@h/db?password=secret&sslmode=require",
     "postgresql://u@h/db?password=***&sslmode=require"),
    ("postgresql://h/db?PassFile=/x&sslkey=/k", "postgresql://h/db?PassFile=***&sslkey=***"),
    ("amqp://guest@127.0.0.1/", "amqp://guest@127.0.0.1/"),
])
def test_a_password_is_never_shown(url: str, shown: str) -> None:
    assert redact(url) == shown
