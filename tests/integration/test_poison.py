"""One submission never stops the others (DESIGN rules 4 and 6, issue 9 item 1).

A value PostgreSQL refuses, a bug of ours on one submission, a submission that crashed the
process, a slow one: each is answered, retried on its own or parked with an alarm, and the good
traffic behind it keeps being routed."""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway.app import processor as processor_module
from gateway.cli import main
from gateway.model.outcome import Outcome
from gateway.store import interchanges as store_module
from tests.support.edifact import cusdec, cusdec_message, interchange
from tests.support.harness import Gateway, database_url


def cli(gateway: Gateway, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(["--config", str(gateway.files.config_path), *args])
    return code, out.getvalue()


async def statuses(gateway: Gateway) -> dict[str, str]:
    rows = await gateway.fetch("SELECT file_name, status FROM interchanges")
    return {r["file_name"]: r["status"] for r in rows}


async def wait_for(check: Callable[[], Any], what: str, seconds: float = 20.0) -> Any:
    for _ in range(int(seconds / 0.05)):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not within {seconds}s")


async def hurry(gateway: Gateway, file_name: str, attempts: int) -> None:
    """Skip the pauses between attempts (they grow to minutes)."""
    await gateway.fetch("UPDATE interchanges SET attempts = $2, next_attempt_at = now()"
                        " WHERE file_name = $1", file_name, attempts)


async def test_nul_bytes_get_a_rejection_and_the_next_upload_is_routed(gateway: Gateway) -> None:
    """Reproduced before: a NUL in the UNB control reference or in BGM 1004 made the
    decision's write fail, the processor took that row again and again, and a good CUSDEC sent
    next was never routed."""
    in_reference = cusdec(("8471",), sender="VANA", control_reference="NUL\x00REF")
    in_document = interchange([cusdec_message(declaration="DEC\x00-9")], sender="VANA",
                              control_reference="NULDOC")
    await gateway.upload("van-a", "nul-ref.edi", in_reference)
    await gateway.upload("van-a", "nul-doc.edi", in_document)
    await gateway.upload("van-a", "good.edi", cusdec(("0303",), sender="VANA",
                                                      control_reference="GOOD1"))
    (good,) = await gateway.answers("van-a", "good.edi")
    assert b"UCI+GOOD1+VANA:ZZZ+SWGATEWAY:ZZZ+7" in good
    assert len(await gateway.queue("customs", expect=1, settle=1.0)) == 1
    assert len(await gateway.queue("quarantine", expect=1)) == 1
    (reference,) = await gateway.answers("van-a", "nul-ref.edi")
    assert b"\x00" not in reference and b"+4+21+UNB" in reference  # 0085 21 at UNB
    (document,) = await gateway.answers("van-a", "nul-doc.edi")
    assert b"\x00" not in document and b"UCD+21+3" in document  # BGM element 2 (1004)
    assert await statuses(gateway) == {"nul-ref.edi": "rejected", "nul-doc.edi": "rejected",
                                       "good.edi": "accepted"}


@contextlib.contextmanager
def postgres_sees_raw_values() -> Iterator[None]:
    """Take away the store's guard (store/storable), so the NUL a partner sent reaches
    PostgreSQL, which refuses it: a real refusal, as before the guard existed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "storable_optional", lambda value: value)
        yield


async def test_a_decision_the_database_refuses_is_retried_then_parked_and_replayed(
        gateway: Gateway) -> None:
    with postgres_sees_raw_values():
        await gateway.upload("van-a", "poison.edi", cusdec(
            ("8471",), sender="VANA", control_reference="P\x00ISON"))
        failed = await wait_for(lambda: gateway.fetch(
            "SELECT last_error FROM interchanges WHERE file_name = 'poison.edi'"
            " AND last_error IS NOT NULL"), "the refused decision is recorded")
        assert "PostgreSQL refused" in failed[0]["last_error"]
        await gateway.upload("van-a", "after.edi", cusdec(("8471",), sender="VANA",
                                                          control_reference="AFTER1"))
        (after,) = await gateway.answers("van-a", "after.edi")  # not held back
        assert b"UCI+AFTER1" in after and b"+7'" in after
        await hurry(gateway, "poison.edi", processor_module.MAX_ATTEMPTS - 1)
        await wait_for(lambda: gateway.fetch(
            "SELECT 1 FROM interchanges WHERE file_name = 'poison.edi' AND status = 'parked'"),
            "the submission is parked after its last attempt")
    (submission,) = [r["id"] for r in await gateway.fetch(
        "SELECT id FROM interchanges WHERE file_name = 'poison.edi'")]
    code, tracked = await asyncio.to_thread(cli, gateway, "track", "--json", str(submission))
    assert code == 0 and '"kind": "parked"' in tracked and "gateway replay" in tracked
    assert tracked.count('"kind": "processing_failed"') >= 1
    code, said = await asyncio.to_thread(cli, gateway, "replay", str(submission))
    assert code == 0 and "waiting to be decided again" in said
    (answer,) = await gateway.answers("van-a", "poison.edi")
    assert b"+4+21+UNB" in answer  # decided at last: the partner's own fault
    code, said = await asyncio.to_thread(cli, gateway, "replay", str(submission))
    assert code == 1 and "nothing parked or unroutable" in said  # at most once
    assert len(await gateway.queue("customs", expect=1)) == 1  # AFTER1 only


async def test_a_submission_that_crashed_the_gateway_each_time_is_parked(
        tmp_path: Any) -> None:
    """Each attempt is counted before the work starts, so a submission whose attempts never
    came back (the process died deciding it) is parked on its next turn, not taken again."""
    from gateway.store.database import create_pool
    from tests.support.harness import (
        DEMO_AGENCIES,
        create_database,
        delete_topology,
        drop_database,
        start_gateway,
        write_files,
    )

    database = await create_database()
    files = write_files(tmp_path, database)
    pool = await create_pool(database_url(database))
    crashing = await store_module.record_submission(
        pool, "van-a", "sftp", "crash.edi", cusdec(("8471",), sender="VANA"))
    await pool.execute("UPDATE interchanges SET attempts = $1 WHERE id = $2",
                       processor_module.MAX_ATTEMPTS, crashing)
    await pool.close()
    gateway = await start_gateway(files)
    try:
        await gateway.upload("van-a", "good.edi", cusdec(("8471",), sender="VANA",
                                                          control_reference="GOOD2"))
        await gateway.answers("van-a", "good.edi")
        assert await statuses(gateway) == {"crash.edi": "parked", "good.edi": "accepted"}
        events = await gateway.fetch("SELECT detail::text FROM events WHERE kind = 'parked'")
        assert "stopped while deciding it" in events[0]["detail"]
        assert not list((files.mailbox("van-a") / "outbox").glob("crash.edi*"))
    finally:
        await gateway.stop()
        await delete_topology(files, DEMO_AGENCIES)
        await drop_database(database)


async def test_a_bug_on_one_submission_does_not_hold_back_the_next(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    real = processor_module.process_submission

    def buggy(data: bytes, ctx: Any) -> Outcome:
        if b"BUGGY" in data:
            raise ZeroDivisionError("a bug of ours")
        return real(data, ctx)

    monkeypatch.setattr(processor_module, "process_submission", buggy)
    await gateway.upload("van-a", "buggy.edi", cusdec(("8471",), sender="VANA",
                                                      control_reference="BUGGY"))
    await gateway.upload("van-a", "fine.edi", cusdec(("8471",), sender="VANA",
                                                     control_reference="FINE"))
    await gateway.answers("van-a", "fine.edi")
    rows = await gateway.fetch("SELECT status, attempts, last_error FROM interchanges"
                               " WHERE file_name = 'buggy.edi'")
    assert rows[0]["status"] == "received" and "ZeroDivisionError" in rows[0]["last_error"]
    assert not list((gateway.files.mailbox("van-a") / "outbox").glob("buggy.edi*"))


async def test_slow_large_submissions_do_not_stall_a_small_one(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every general worker busy with a large submission that takes its time: the worker of
    the small-submission lane still decides the small one that arrives after them."""
    release = threading.Event()
    started = threading.Semaphore(0)
    real = processor_module.process_submission

    def slow(data: bytes, ctx: Any) -> Outcome:
        if b"SLOW" in data:
            started.release()
            release.wait(60)
        return real(data, ctx)

    monkeypatch.setattr(processor_module, "process_submission", slow)
    padding = b"\n" * (gateway.config.settings.small_submission_bytes + 1)  # type: ignore[union-attr]
    general = gateway.config.settings.processor_workers - 1  # type: ignore[union-attr]
    try:
        for number in range(general + 1):
            await gateway.upload("van-a", f"slow{number}.edi", cusdec(
                ("8471",), sender="VANA", control_reference=f"SLOW{number}") + padding)
        for _ in range(general):
            assert await asyncio.to_thread(started.acquire, True, 20)
        await gateway.upload("van-a", "small.edi", cusdec(("8471",), sender="VANA",
                                                          control_reference="SMALL"))
        small = gateway.files.mailbox("van-a") / "outbox"
        await wait_for(lambda: asyncio.sleep(0, list(small.glob("small.edi.*"))),
                       "the small submission is answered while the large ones wait")
        assert not list(small.glob("slow*"))
    finally:
        release.set()
    for number in range(general + 1):
        await gateway.answers("van-a", f"slow{number}.edi")


async def test_a_partner_contrl_with_a_superscript_reference_is_recorded(
        gateway: Gateway) -> None:
    """``UCI+²``: '²'.isdigit() is true and int('²') raises; it is partner data, so it is
    read as 'not one of our references', never an exception retried for ever."""
    contrl = interchange([["UNH+1+CONTRL:D:3:UN", "UCI+²+SWGATEWAY+VANA:ZZZ+7",
                           "UNT+3+1"]], sender="VANA", control_reference="ACK2")
    await gateway.upload("van-a", "ack.edi", contrl)
    await gateway.upload("van-a", "next.edi", cusdec(("8471",), sender="VANA"))
    await gateway.answers("van-a", "next.edi")
    rows = await gateway.fetch("SELECT status, last_error FROM interchanges"
                               " WHERE file_name = 'ack.edi'")
    assert rows[0]["status"] in ("accepted", "rejected") and rows[0]["last_error"] is None
