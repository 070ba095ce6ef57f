"""The routing reload applies only files that are written whole and quiet, and never stops
watching, whatever the files hold and whatever fails (a fake store stands in for PostgreSQL;
tests/integration/test_reload*.py run the real gateway)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.app import routing_reload
from gateway.app.routing_reload import LiveRouting
from gateway.config.load import load_config, parse_routing
from gateway.errors import StoreUnavailable
from tests.unit.test_config import demo_config

SHIPPED = Path(__file__).resolve().parents[2] / "routing.yaml"
ONE_RULE = "rules:\n  - name: customs-only\n    deliver: [customs]\n"
AGENCIES = ("customs", "quarantine", "port", "trade", "bank", "tax")
#: How long a test waits for what the watcher does in a few polls: a guard, not a measure.
PATIENCE_SECONDS = 30.0


@dataclass
class FakePool:
    """routing_versions' statements, kept in a list; ``failures`` are raised by the next
    records, in order."""

    versions: list[dict[str, Any]] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)

    def acquire(self) -> FakeConnection:
        return FakeConnection(self)

    def bodies(self, status: str) -> list[str]:
        return [v["body"] for v in self.versions if v["status"] == status]


@dataclass
class FakeConnection:
    pool: FakePool

    async def __aenter__(self) -> FakeConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def fetchval(self, sql: str, sha256: str, body: str, source: str, status: str,
                       error: str | None) -> int:
        if self.pool.failures:
            raise self.pool.failures.pop(0)
        self.pool.versions.append({"id": len(self.pool.versions) + 1, "sha256": sha256,
                                   "body": body, "source": source, "status": status,
                                   "error": error})
        return len(self.pool.versions)

    async def fetchrow(self, sql: str) -> dict[str, Any] | None:
        applied = [v for v in self.pool.versions if v["status"] == "applied"]
        return applied[-1] if applied else None


@dataclass
class Watched:
    root: Path
    routing: LiveRouting
    pool: FakePool
    hangup: asyncio.Event
    task: asyncio.Task[None] | None = None

    @property
    def table(self) -> Path:
        return self.root / "routing.yaml"

    def replace(self, name: str, data: str | bytes) -> None:
        """Write the way ops tools do: a temporary file renamed over the old one."""
        temporary = self.root / f".{name}.tmp"
        temporary.write_bytes(data.encode() if isinstance(data, str) else data)
        os.replace(temporary, self.root / name)

    async def until(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + PATIENCE_SECONDS
        while not done():
            if self.task is not None and self.task.done():
                self.task.result()  # the watcher stopped: raise what stopped it
                raise AssertionError("the watcher returned")
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not seen; versions {self.pool.versions}")
            await asyncio.sleep(0.02)


def configure(root: Path, *, interval: float, settle: float) -> Path:
    demo_config(root)
    path = root / "gateway.yaml"
    path.write_text(path.read_text() + f"routing_reload_seconds: {interval}\n"
                    f"routing_settle_seconds: {settle}\n")
    return path


async def watched(root: Path, *, interval: float = 0.1, settle: float = 0.0,
                  first: str = ONE_RULE, **clocks: Callable[[], float]) -> Watched:
    config_path = configure(root, interval=interval, settle=settle)
    (root / "routing.yaml").write_text(first)
    _in_the_past(root / "routing.yaml", root / "agencies.yaml")
    config = load_config(config_path, environ={})
    pool = FakePool()
    routing = LiveRouting(config, pool, **clocks)
    await routing.start()
    return Watched(root, routing, pool, asyncio.Event())


@pytest.fixture
async def watching(tmp_path: Path) -> AsyncIterator[Watched]:
    """A watcher applying each file at its first whole read (settle 0), polling every 0.1 s."""
    state = await watched(tmp_path)
    state.task = asyncio.create_task(state.routing.watch(state.hangup, 0.1))
    try:
        yield state
    finally:
        state.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await state.task


def _in_the_past(*paths: Path) -> None:
    for path in paths:
        os.utime(path, (time.time() - 3600, time.time() - 3600))


def halves() -> tuple[str, str]:
    """The shipped table cut after its first rule: that prefix is a valid table too."""
    text = SHIPPED.read_text()
    cut = text.index("  - name: quarantine-inspects")
    prefix = text[:cut]
    assert len(parse_routing(prefix, "prefix", AGENCIES).rules) == 1
    assert len(parse_routing(text, "whole", AGENCIES).rules) > 1
    return prefix, text[cut:]


# A file is applied only when it is whole and quiet.


async def test_a_table_written_in_two_parts_is_never_in_force_half_way(tmp_path: Path) -> None:
    """Written in place in two writes with a pause of several polls between them: the old
    watcher applied the first part (a valid one-rule table) at its next poll."""
    state = await watched(tmp_path, interval=0.1, settle=3600)
    state.task = asyncio.create_task(state.routing.watch(state.hangup, 0.1))
    prefix, rest = halves()
    try:
        with state.table.open("w") as handle:
            handle.write(prefix)
            handle.flush()
            await asyncio.sleep(0.6)  # six polls see the first part, quiet but too recently
            assert state.pool.bodies("applied") == [ONE_RULE]
            handle.write(rest)
        state.hangup.set()  # ops: apply now (two looks one poll apart must still agree)
        await state.until(lambda: len(state.pool.versions) == 2, "the whole table applied")
        assert state.pool.bodies("applied") == [ONE_RULE, prefix + rest]
        assert state.routing.current is not None
        assert state.routing.current.table == parse_routing(prefix + rest, "x", AGENCIES)
    finally:
        state.task.cancel()


@dataclass
class Clocks:
    """A monotonic clock the test moves, and a wall clock real until ``stop_wall`` (the
    files' own age then never counts)."""

    now: float = 0.0
    wall: float | None = None

    def monotonic(self) -> float:
        return self.now

    def wall_clock(self) -> float:
        return time.time() if self.wall is None else self.wall

    async def watched(self, root: Path, settle: float) -> Watched:
        state = await watched(root, settle=settle, clock=self.monotonic,
                              wall_clock=self.wall_clock)
        self.wall = 0.0
        return state


async def test_changed_files_wait_for_the_settle_time(tmp_path: Path) -> None:
    clocks = Clocks()
    state = await clocks.watched(tmp_path, settle=5.0)
    state.replace("routing.yaml", SHIPPED.read_text())
    applied = []
    for _ in range(8):
        applied.append(await state.routing.step(1.0))
        clocks.now += 1.0
    assert applied == [False] * 5 + [True, False, False]  # seen at 0, quiet since 5 s at 5


async def test_sighup_waits_for_two_agreeing_looks_not_for_a_writer(tmp_path: Path) -> None:
    """SIGHUP skips the settle time, but a file that changes between two looks one poll
    apart is still being written: its first part is never taken."""
    clocks = Clocks()
    state = await clocks.watched(tmp_path, settle=3600)
    prefix, rest = halves()
    state.table.write_text(prefix)
    assert not await state.routing.step(1.0, signalled=True)
    with state.table.open("a") as handle:  # the writer goes on before the next look
        handle.write(rest)
    clocks.now += 1.0
    assert not await state.routing.step(1.0)  # changed since the last look: not yet
    clocks.now += 1.0
    assert await state.routing.step(1.0)  # unchanged one poll later: the SIGHUP applies it
    assert state.pool.bodies("applied") == [ONE_RULE, prefix + rest]
    clocks.now += 1.0
    state.replace("routing.yaml", ONE_RULE + "  - name: more\n    deliver: [port]\n")
    assert not await state.routing.step(1.0)  # the SIGHUP was spent: settle time again
    clocks.now += 1.0
    assert not await state.routing.step(1.0)


async def test_a_file_not_modified_for_the_settle_time_is_applied_at_once(
        tmp_path: Path) -> None:
    state = await watched(tmp_path, settle=5.0, clock=lambda: 0.0)
    state.replace("routing.yaml", SHIPPED.read_text())
    _in_the_past(state.table)  # e.g. rsync or mv of a file written long ago
    assert await state.routing.step(1.0)


async def test_the_gateway_starts_only_with_a_table_that_holds_still(tmp_path: Path) -> None:
    """Starting is taken like a SIGHUP: a file that changes between two looks one poll apart
    is still being written, and its first part is never the table the gateway starts with."""
    config_path = configure(tmp_path, interval=0.1, settle=3600)
    prefix, rest = halves()
    (tmp_path / "routing.yaml").write_text(prefix)
    looks: list[int] = []

    def clock() -> float:  # called once per look, after the files were read
        looks.append(len(looks))
        if len(looks) == 1:  # the writer goes on after the first look
            with (tmp_path / "routing.yaml").open("a") as handle:
                handle.write(rest)
        return float(len(looks))

    routing = LiveRouting(load_config(config_path, environ={}), FakePool(), clock=clock,
                          wall_clock=lambda: 0.0)
    assert (await routing.start()).table == parse_routing(prefix + rest, "x", AGENCIES)
    assert len(looks) == 3  # the prefix, the whole table, the whole table again


async def test_sighup_and_start_do_not_wait_for_a_long_poll(tmp_path: Path) -> None:
    """With a poll of ten minutes (only SIGHUP reloads), the second look a SIGHUP or the
    start needs comes after the settle time, not after the next poll."""
    config_path = configure(tmp_path, interval=600, settle=0.3)
    (tmp_path / "routing.yaml").write_text(ONE_RULE)  # just written: not quiet by its age
    pool = FakePool()
    routing = LiveRouting(load_config(config_path, environ={}), pool)
    await asyncio.wait_for(routing.start(), PATIENCE_SECONDS)
    state = Watched(tmp_path, routing, pool, asyncio.Event())
    state.task = asyncio.create_task(routing.watch(state.hangup, 600))
    try:
        state.replace("routing.yaml", SHIPPED.read_text())
        state.hangup.set()
        await state.until(lambda: len(pool.bodies("applied")) == 2, "the SIGHUP's table")
        assert "SIGHUP" in pool.versions[-1]["source"]
    finally:
        state.task.cancel()


# Any failure refuses the file and the watcher keeps watching.


async def test_a_recursive_alias_is_refused_and_watching_goes_on(watching: Watched) -> None:
    """The old loader recursed for ever: RecursionError, which the watcher did not catch."""
    watching.replace("routing.yaml", "lists:\n  loop: &loop [a, *loop]\n" + ONE_RULE)
    await watching.until(lambda: bool(watching.pool.bodies("refused")), "the refusal")
    (refusal,) = [v for v in watching.pool.versions if v["status"] == "refused"]
    assert "routing.yaml:2:" in refusal["error"] and "recursive alias" in refusal["error"]
    watching.replace("routing.yaml", SHIPPED.read_text())
    await watching.until(lambda: len(watching.pool.bodies("applied")) == 2, "the next table")


async def test_an_alias_bomb_is_refused_and_watching_goes_on(watching: Watched) -> None:
    bomb = ["lists:", "  l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    bomb += [f"  l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]" for n in range(1, 6)]
    watching.replace("routing.yaml", "\n".join(bomb) + "\n" + ONE_RULE)
    await watching.until(lambda: bool(watching.pool.bodies("refused")), "the refusal")
    assert "alias bomb" in watching.pool.versions[-1]["error"]
    watching.replace("routing.yaml", SHIPPED.read_text())
    await watching.until(lambda: len(watching.pool.bodies("applied")) == 2, "the next table")


async def test_any_failure_keeps_the_watcher_watching(watching: Watched,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug while validating, the store failing, a file that is not UTF-8: the old watcher
    caught only OSError and ConfigError, and stopped at anything else."""
    def bug(*args: object) -> None:
        raise ZeroDivisionError("a bug of ours")

    monkeypatch.setattr(routing_reload, "parse_routing", bug)
    watching.replace("routing.yaml", ONE_RULE + "  - name: second\n    deliver: [port]\n")
    await watching.until(lambda: bool(watching.pool.bodies("refused")), "the refusal")
    assert "ZeroDivisionError" in watching.pool.versions[-1]["error"]
    monkeypatch.undo()

    watching.pool.failures.append(StoreUnavailable("PostgreSQL went away"))
    watching.replace("routing.yaml", SHIPPED.read_text())  # valid: its record fails once
    await watching.until(lambda: len(watching.pool.bodies("applied")) == 2, "a retried apply")
    assert not watching.pool.failures

    watching.replace("routing.yaml", b"rules:\n  - name: caf\xe9\n    deliver: [customs]\n")
    await watching.until(lambda: len(watching.pool.bodies("refused")) == 2, "the refusal")
    assert "not UTF-8" in watching.pool.versions[-1]["error"]
    watching.replace("routing.yaml", ONE_RULE)
    await watching.until(lambda: len(watching.pool.bodies("applied")) == 3, "the last table")
    assert watching.pool.bodies("applied")[-1] == ONE_RULE


async def test_a_broken_agencies_file_is_refused_and_watching_goes_on(
        watching: Watched, caplog: pytest.LogCaptureFixture) -> None:
    agencies = (watching.root / "agencies.yaml").read_text()
    watching.replace("agencies.yaml", "agencies: &a\n  - code: customs\n    name: *a\n")
    await watching.until(lambda: refusals(caplog, "agencies_refused") == 1, "the refusal")
    watching.replace("routing.yaml", SHIPPED.read_text())  # judged with the broken agencies
    await watching.until(lambda: refusals(caplog, "agencies_refused") == 2, "its refusal")
    assert watching.pool.bodies("applied") == [ONE_RULE]
    watching.replace("agencies.yaml", agencies + "  - code: licensing\n    name: Licensing\n")
    watching.replace("routing.yaml", ONE_RULE + "  - name: licensing\n    deliver: [licensing]\n")
    await watching.until(lambda: len(watching.pool.bodies("applied")) == 2, "the new agency")


async def test_a_file_that_disappears_is_an_alarm_not_an_end(
        watching: Watched, caplog: pytest.LogCaptureFixture) -> None:
    watching.table.unlink()
    await watching.until(lambda: refusals(caplog, "routing_reload_failed", "No such file") == 1,
                         "the alarm of a missing file")
    watching.table.mkdir()  # then a directory where the file was
    await watching.until(lambda: refusals(caplog, "routing_reload_failed", "a directory") == 1,
                         "the alarm of a directory")
    watching.table.rmdir()
    watching.replace("routing.yaml", SHIPPED.read_text())
    await watching.until(lambda: len(watching.pool.bodies("applied")) == 2, "the next table")


def refusals(caplog: pytest.LogCaptureFixture, name: str, error: str = "") -> int:
    """How many ``name`` events were logged, with ``error`` in their error."""
    return sum(1 for r in caplog.records
               if r.getMessage() == name and error in getattr(r, "fields", {}).get("error", ""))
