"""The agency's journal keeps the first decision per delivery, durably (tests/integration/
test_agency_sdk.py shows a redelivery republishing from it without calling the handler)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.agency.answers import Outgoing
from gateway.agency.journal import Journal, default_journal_path

FIRST = (Outgoing("d:1", "CustomsResponse", b'{"a": 1}'),
         Outgoing("d:2", "CustomsResponse", b'{"a": 2}'))
SECOND = (Outgoing("d:1", "ApplicationError", b'{"b": 1}'),)


async def test_the_first_decision_kept_is_the_one_every_later_one_gets(tmp_path: Path) -> None:
    journal = await Journal.open(tmp_path / "var" / "agency" / "c.journal.sqlite")
    try:
        assert await journal.recorded("d") is None
        assert await journal.record("d", FIRST) == FIRST
        assert await journal.record("d", SECOND) == FIRST
        assert await journal.recorded("d") == FIRST
        assert await journal.record("nothing-to-say", ()) == ()
        assert await journal.recorded("nothing-to-say") == ()
    finally:
        await journal.close()


async def test_the_journal_outlives_the_process(tmp_path: Path) -> None:
    path = tmp_path / "c.journal.sqlite"
    journal = await Journal.open(path)
    await journal.record("d", FIRST)
    await journal.close()
    again = await Journal.open(path)
    try:
        assert await again.recorded("d") == FIRST
    finally:
        await again.close()


async def test_two_journals_on_one_file_keep_one_decision(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    one, two = await Journal.open(path), await Journal.open(path)
    try:
        kept = await asyncio.gather(one.record("d", FIRST), two.record("d", SECOND))
        assert kept[0] == kept[1]
    finally:
        await one.close()
        await two.close()


def test_the_default_journal_is_under_var_agency() -> None:
    assert default_journal_path("customs") == Path("var/agency/customs.journal.sqlite")
