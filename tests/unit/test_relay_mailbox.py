"""Answers in partners' outboxes: always a name every file system takes, whatever the partner
uploaded; written durably (the directory synced after the rename); a failing or hanging disk
classified and never holding up the event loop."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.app import relay as relay_module
from gateway.app.relay import MailboxDispatcher, file_name, mailbox_scope
from gateway.errors import TransportError
from gateway.model.outcome import ACK_SUFFIXES
from gateway.store.outbox import OutboxRow, Scope
from gateway.transports.mailbox import (
    NAME_MAX_BYTES,
    SIGNATURE_SUFFIX,
    Mailboxes,
    answer_name,
    name_refusal,
)
from tests.support.signing import signer_for_tests

SUFFIXES = tuple(ACK_SUFFIXES.values())
#: Every code point, surrogates too (what os.fsdecode makes of bytes that are not UTF-8).
ANY_CHARACTER = st.characters(codec=None, exclude_categories=())
HOSTILE_NAMES = st.one_of(
    st.text(ANY_CHARACTER),
    st.text(ANY_CHARACTER, min_size=200, max_size=400),
    st.text(st.sampled_from("\ufffd./\x00\n\x7f .é\u202e\udcff"), max_size=300),
)


def row(name: str, submission: int = 7, kind: str = "CONTRL") -> OutboxRow:
    return OutboxRow(id=1, interchange_id=submission, message_id=None, channel="mailbox",
                     destination="van-a", dispatch_key=f"ack-{submission}", body=b"UNA",
                     properties={"file_name": name, "kind": kind}, attempts=0,
                     row_failures=0)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(uploaded=HOSTILE_NAMES, submission=st.integers(0, 10**18),
       suffix=st.sampled_from(SUFFIXES))
@example(uploaded="a" * 240, submission=12345, suffix="contrl.edi")  # never answered before
@example(uploaded="\ufffd" * 255, submission=1, suffix="contrl.edi")  # Latin-1 name replaced
@example(uploaded="", submission=1, suffix="error.txt")  # a rename to inbox/
@example(uploaded=".", submission=1, suffix="contrl.edi")
@example(uploaded="..", submission=1, suffix="contrl.edi")
@example(uploaded="../../etc/passwd", submission=1, suffix="contrl.edi")
@example(uploaded="a\x00b\x01\x1b[2J", submission=1, suffix="contrl.edi")
@example(uploaded=".hidden", submission=1, suffix="contrl.edi")
@example(uploaded="caf\udce9.edi", submission=1, suffix="contrl.edi")  # surrogateescape
@example(uploaded="é" * 200, submission=10**18, suffix="contrl.edi")  # cut inside a char
def test_every_upload_name_gives_an_answer_name_that_can_be_written(
        tmp_path: Path, uploaded: str, submission: int, suffix: str) -> None:
    name = answer_name(uploaded, submission, suffix)
    assert name_refusal(name) is None
    assert len(name.encode("utf-8")) + len(SIGNATURE_SUFFIX) <= NAME_MAX_BYTES  # NAME.p7s too
    assert not name.startswith(".")
    assert name == f"{submission}.{suffix}" or name.endswith(f".{submission}.{suffix}")
    written = Mailboxes(tmp_path).deliver("van-a", name, b"answer")
    assert written.name == name and written.read_bytes() == b"answer"
    assert name in os.listdir(tmp_path / "van-a" / "outbox")
    assert not [n for n in os.listdir(tmp_path / "van-a" / "outbox") if n.endswith(".part")]


@given(uploaded=st.text(st.sampled_from("abcXYZ019-_.+=@,~()[]é中"), min_size=1, max_size=60)
       .filter(lambda n: not n.startswith(".")), submission=st.integers(0, 10**9))
def test_a_safe_name_that_fits_is_kept_as_it_is(uploaded: str, submission: int) -> None:
    assert answer_name(uploaded, submission, "contrl.edi") == (
        f"{uploaded}.{submission}.contrl.edi")


@given(uploaded=st.text(st.sampled_from(["a", "é", "中", "\U0001d538"]), min_size=300,
                        max_size=400), submission=st.integers(0, 10**18))
def test_a_long_name_is_cut_no_shorter_than_it_must_be(uploaded: str, submission: int) -> None:
    name = answer_name(uploaded, submission, "contrl.edi")
    stem = name.removesuffix(f".{submission}.contrl.edi")
    assert uploaded.startswith(stem)
    assert (len(name.encode()) + len(SIGNATURE_SUFFIX) + len(uploaded[len(stem)].encode())
            > NAME_MAX_BYTES)


@pytest.mark.parametrize(("uploaded", "expected"), [
    ("decl.edi", "decl.edi.42.contrl.edi"),
    ("", "42.contrl.edi"),
    (".", "_.42.contrl.edi"),
    ("..", "_..42.contrl.edi"),
    (".profile", "_profile.42.contrl.edi"),
    ("a/b\x00c d", "a_b_c_d.42.contrl.edi"),
    ("caf\ufffd.edi", "caf_.edi.42.contrl.edi"),
    ("e\u0301t\u00e9.edi", "\u00e9t\u00e9.edi.42.contrl.edi"),  # NFC
    ("right\u202etxt.exe", "right_txt.exe.42.contrl.edi"),  # no bidi override
])
def test_answer_names(uploaded: str, expected: str) -> None:
    assert answer_name(uploaded, 42, "contrl.edi") == expected


def test_our_own_id_and_suffix_must_be_valid() -> None:
    with pytest.raises(ValueError, match="not an answer"):
        answer_name("x", 1, "../x")
    with pytest.raises(ValueError, match="not an answer"):
        answer_name("x", -1, "contrl.edi")


@pytest.mark.parametrize(("partner", "name"), [
    ("van-a", ""), ("van-a", "."), ("van-a", ".."), ("van-a", ".x.part"), ("van-a", "a/b"),
    ("van-a", "a\x00b"), ("van-a", "a\nb"), ("van-a", "a" * 256), ("van-a", "é" * 128),
    ("van-a", "caf\udce9"), ("..", "x.edi"), ("a/b", "x.edi"),
])
def test_deliver_refuses_what_is_not_a_safe_name(tmp_path: Path, partner: str,
                                                 name: str) -> None:
    with pytest.raises(TransportError, match="refusing") as refused:
        Mailboxes(tmp_path / "mailboxes").deliver(partner, name, b"x")
    assert refused.value.__cause__ is None
    assert mailbox_scope(refused.value) is Scope.UNDELIVERABLE
    assert not (tmp_path / "mailboxes").exists() or not any(
        (tmp_path / "mailboxes").rglob("*"))


class SyncLog:
    """Records renames and fsyncs (by the path their descriptor names) in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail: OSError | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        real_fsync, real_replace = os.fsync, os.replace

        def fsync(fd: int) -> None:
            path = os.readlink(f"/proc/self/fd/{fd}")
            self.calls.append(("fsync", path))
            if fail is not None and os.path.isfile(path):
                raise fail
            real_fsync(fd)

        def replace(source: Any, target: Any) -> None:
            real_replace(source, target)
            self.calls.append(("replace", str(target)))

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path.resolve()


def test_the_outbox_directory_is_synced_after_the_rename(
        folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mailboxes = Mailboxes(folder / "mailboxes")
    mailboxes.prepare(("van-a",))
    log = SyncLog(monkeypatch)
    target = mailboxes.deliver("van-a", "x.1.contrl.edi", b"answer")
    outbox = str(folder / "mailboxes" / "van-a" / "outbox")
    replaced = log.calls.index(("replace", str(target)))
    assert ("fsync", outbox) in log.calls[replaced + 1:]
    file_synced = [i for i, (op, path) in enumerate(log.calls) if op == "fsync"
                   and path.startswith(outbox + "/")]
    assert file_synced and file_synced[0] < replaced  # the data first, then the entry


def test_new_directories_are_synced_in_their_parents(
        folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = SyncLog(monkeypatch)
    Mailboxes(folder / "mailboxes").deliver("van-b", "x.1.contrl.edi", b"answer")
    synced = {path for op, path in log.calls if op == "fsync"}
    for made in ("mailboxes", "mailboxes/van-b", "mailboxes/van-b/outbox"):
        assert str((folder / made).parent) in synced, made


def test_a_full_disk_leaves_no_partial_file_and_stops_the_channel(
        folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mailboxes = Mailboxes(folder)
    mailboxes.prepare(("van-a",))
    SyncLog(monkeypatch, fail=OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(TransportError, match="No space left") as failed:
        mailboxes.deliver("van-a", "x.1.contrl.edi", b"answer")
    assert os.listdir(folder / "van-a" / "outbox") == []
    assert mailbox_scope(failed.value) is Scope.CHANNEL


@pytest.mark.parametrize(("code", "scope"), [
    (errno.ENOSPC, Scope.CHANNEL), (errno.EIO, Scope.CHANNEL), (errno.EROFS, Scope.CHANNEL),
    (errno.EACCES, Scope.DESTINATION), (errno.ENOTDIR, Scope.DESTINATION),
    (errno.ENAMETOOLONG, Scope.UNDELIVERABLE), (errno.EBUSY, Scope.ROW),
])
def test_what_a_failed_write_is_about(code: int, scope: Scope) -> None:
    try:
        raise TransportError("cannot write") from OSError(code, os.strerror(code))
    except TransportError as exc:
        assert mailbox_scope(exc) is scope


def test_an_unwritable_partner_mailbox_is_that_destination_only(folder: Path) -> None:
    (folder / "van-a").mkdir()
    (folder / "van-a" / "outbox").write_text("a file where the folder should be")
    with pytest.raises(TransportError) as failed:
        Mailboxes(folder).deliver("van-a", "x.1.contrl.edi", b"answer")
    assert mailbox_scope(failed.value) is Scope.DESTINATION


def test_a_row_written_before_names_were_safe_gets_a_safe_name() -> None:
    legacy = "a" * 240 + ".7.contrl.edi"
    assert file_name(row(legacy)) == answer_name("a" * 240, 7, "contrl.edi")
    assert file_name(row("\x01bad.7.error.txt", kind="ERROR_REPORT")) == "_bad.7.error.txt"
    assert file_name(row("good.edi.7.contrl.edi")) == "good.edi.7.contrl.edi"


async def test_a_hanging_write_fails_as_the_channel_without_blocking_the_loop(
        monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    monkeypatch.setattr(relay_module, "WRITE_TIMEOUT_SECONDS", 0.2)
    release, calls = threading.Event(), []
    mailboxes = Mailboxes(folder)

    def hanging(files: Sequence[tuple[str, str, bytes]]) -> list[Path | TransportError]:
        calls.extend(name for _, name, _ in files)
        release.wait(30)
        return mailboxes.deliver_many(files)

    ticks = 0

    async def ticking() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    dispatcher = MailboxDispatcher(hanging, signer_for_tests())
    ticker = asyncio.create_task(ticking())
    try:
        hung = await dispatcher.dispatch(row("x.7.contrl.edi"))
        assert hung is not None and hung.scope is Scope.CHANNEL
        assert ticks > 1  # the loop ran while the disk hung
        again = await dispatcher.dispatch(row("y.7.contrl.edi"))
        assert again is not None and "has not returned" in again.error
        assert calls == ["x.7.contrl.edi.p7s"]  # no second thread piled on the hung one
    finally:
        release.set()
        ticker.cancel()
    for _ in range(3000):  # the hung write returns; then the next one goes
        if await dispatcher.dispatch(row("y.7.contrl.edi")) is None:
            break
        await asyncio.sleep(0.01)
    assert sorted(os.listdir(folder / "van-a" / "outbox")) == [
        "x.7.contrl.edi", "x.7.contrl.edi.p7s", "y.7.contrl.edi", "y.7.contrl.edi.p7s"]


def test_a_batch_syncs_each_outbox_folder_once_after_its_files(
        folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mailboxes = Mailboxes(folder)
    mailboxes.prepare(("van-a", "van-b"))
    log = SyncLog(monkeypatch)
    written = mailboxes.deliver_many([(p, f"x.{n}.contrl.edi", b"answer")
                                      for n in range(5) for p in ("van-a", "van-b")])
    assert all(isinstance(w, Path) for w in written)
    for partner in ("van-a", "van-b"):
        outbox = str(folder / partner / "outbox")
        synced = [i for i, call in enumerate(log.calls) if call == ("fsync", outbox)]
        replaced = [i for i, (op, path) in enumerate(log.calls)
                    if op == "replace" and path.startswith(outbox + "/")]
        assert len(synced) == 1 and len(replaced) == 5 and max(replaced) < synced[0]


async def test_a_batch_with_one_unwritable_mailbox_writes_the_others_signed(
        folder: Path) -> None:
    """van-b's outbox is a file: its answer fails for its destination alone, and neither its
    signature nor its answer appears; van-a's answers are written with their signatures."""
    mailboxes = Mailboxes(folder)
    mailboxes.prepare(("van-a",))
    (folder / "van-b").mkdir()
    (folder / "van-b" / "outbox").write_text("a file where the folder should be")
    batch = [dataclasses.replace(row(f"x.{n}.contrl.edi", submission=n), id=n,
                                 destination="van-b" if n == 1 else "van-a")
             for n in range(3)]
    dispatcher = MailboxDispatcher(mailboxes.deliver_many, signer_for_tests())
    outcomes = await dispatcher.dispatch_many(batch)
    assert outcomes[0] is None and outcomes[2] is None
    assert outcomes[1] is not None and outcomes[1].scope is Scope.DESTINATION
    assert sorted(os.listdir(folder / "van-a" / "outbox")) == [
        "x.0.contrl.edi", "x.0.contrl.edi.p7s", "x.2.contrl.edi", "x.2.contrl.edi.p7s"]
