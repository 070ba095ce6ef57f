"""Private keys (the SFTP host key, the demo partner's key) are private from the first byte:
no moment where another user of the machine may read them, even if the process dies while it
writes them."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncssh
import pytest

from gateway.app.demo import ensure_key
from gateway.transports.sftp import load_or_create_host_key


def host_key(path: Path) -> None:
    load_or_create_host_key(path)


def demo_key(path: Path) -> None:
    ensure_key(path)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)  # what most accounts run with: new files are world-readable
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("usual_umask")
@pytest.mark.parametrize("create", [host_key, demo_key])
def test_a_private_key_is_created_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          create: Callable[[Path], None]) -> None:
    """Fixing the mode after writing leaves a window (and a world-readable key if the process
    dies before the fix): here every chmod fails, as if the process had died at it."""

    def died(*args: object, **kwargs: object) -> None:
        raise OSError("the process died here")

    monkeypatch.setattr(os, "chmod", died)
    path = tmp_path / "keys" / "key"
    with contextlib.suppress(OSError):  # the old way died at its chmod
        create(path)
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert asyncssh.read_private_key(path) is not None
    assert [p.name for p in path.parent.iterdir()] in (["key"], ["key", "key.pub"],
                                                       ["key.pub", "key"])


@pytest.mark.usefixtures("usual_umask")
def test_a_host_key_is_made_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "host_key"
    first = load_or_create_host_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_host_key(path).get_fingerprint() == first.get_fingerprint()
    assert ensure_key(tmp_path / "demo.key") and not ensure_key(tmp_path / "demo.key")
    assert (tmp_path / "demo.key.pub").read_text().startswith("ssh-ed25519 ")


def test_a_host_key_others_can_read_is_made_private_with_an_alarm(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The old way left the key 0644 when the process died before its chmod."""
    path = tmp_path / "host_key"
    first = load_or_create_host_key(path)
    path.chmod(0o644)
    assert load_or_create_host_key(path).get_fingerprint() == first.get_fingerprint()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [r.getMessage() for r in caplog.records] == ["host_key_was_readable"]
