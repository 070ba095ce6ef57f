"""A rules file edited while the adapter runs: a valid edit takes over, a broken one is refused
with file:line and the rules in force stay; a file still being written waits."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

import pytest

from gateway.agency.customs import CustomsRules
from gateway.agency.rules import LiveRules
from gateway.errors import ConfigError

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "customs-rules.yaml"


def write(path: Path, text: str, age: float = 10.0) -> None:
    path.write_text(text)
    then = time.time() - age  # quiet for ``age`` seconds, as the settle time asks
    os.utime(path, (then, then))


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "customs-rules.yaml"
    write(path, DEMO.read_text())
    return path


async def test_a_valid_edit_takes_over(rules_file: Path) -> None:
    live = LiveRules(rules_file, CustomsRules, settle_seconds=1.0)
    assert live.current.sample_rate == 0.05
    write(rules_file, DEMO.read_text().replace("sample_rate: 0.05", "sample_rate: 0.5"))
    await live.check()
    assert live.current.sample_rate == 0.5
    assert live.refusal is None


async def test_a_broken_edit_is_refused_with_file_and_line_and_the_rules_stay(
        rules_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    live = LiveRules(rules_file, CustomsRules)
    before = live.current
    broken = DEMO.read_text().replace("channel: yellow", "channel: orange", 1)
    write(rules_file, broken)
    with caplog.at_level(logging.ERROR, logger="gateway.agency.rules"):
        await live.check()
        await live.check()  # the same content: refused once
    assert live.current is before
    assert live.refusal is not None
    line = broken.splitlines().index("    channel: orange") + 1
    assert f"{rules_file}:{line}:" in live.refusal and "rules[1].channel" in live.refusal
    assert [r.getMessage() for r in caplog.records].count("rules_refused") == 1
    write(rules_file, DEMO.read_text())  # put back as it was
    await live.check()
    assert live.refusal is None and live.current is before


async def test_a_missing_file_keeps_the_rules(rules_file: Path) -> None:
    live = LiveRules(rules_file, CustomsRules)
    await asyncio.to_thread(rules_file.unlink)
    await live.check()
    assert live.refusal is not None and "cannot read" in live.refusal
    assert live.current.seed == "demo-2026"


async def test_a_file_changed_a_moment_ago_waits_until_it_is_quiet(rules_file: Path) -> None:
    live = LiveRules(rules_file, CustomsRules, settle_seconds=3600)
    write(rules_file, "seed: [", age=0)  # a prefix an editor is still writing
    await live.check()
    assert live.refusal is None and live.current.seed == "demo-2026"


def test_the_adapter_does_not_start_on_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "customs-rules.yaml"
    write(path, "seed: x\nsample_rate: 2\n")
    with pytest.raises(ConfigError, match=r"customs-rules.yaml:2:14 sample_rate"):
        LiveRules(path, CustomsRules)


async def test_the_watcher_looks_until_stopped(rules_file: Path) -> None:
    live = LiveRules(rules_file, CustomsRules, check_seconds=0.01)
    stop = asyncio.Event()
    watching = asyncio.create_task(live.watch(stop))
    write(rules_file, DEMO.read_text().replace("seed: demo-2026 ", "seed: edited "))
    await asyncio.wait_for(live.applied.wait(), 30)
    assert live.current.seed == "edited"
    stop.set()
    await watching
