"""The trader registry file: every error names the file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.app.traders import AeoRegistry, read_csv
from gateway.errors import ConfigError


def test_rows_with_their_partners(tmp_path: Path) -> None:
    path = tmp_path / "traders.csv"
    path.write_text("id,name,aeo,partners\n1,A,yes,van-a van-b\n2,B,no,\n3,C,true,van-b;van-c\n")
    assert read_csv(path) == [("1", "A", True, ("van-a", "van-b")), ("2", "B", False, ()),
                              ("3", "C", True, ("van-b", "van-c"))]


@pytest.mark.parametrize(("data", "error"), [
    (b"id,name,aeo,partners\n1,A,true,van-a\n2,\xe9,true,van-a\n", "traders.csv:3: not UTF-8"),
    (b"id,name,aeo,partners\n1,A,true,\n", "traders.csv:2: partners is empty"),
    (b"id,name,aeo,partners\n1,A,maybe,van-a\n", "traders.csv:2: aeo 'maybe'"),
    (b"id,name,aeo,partners\n,A,true,van-a\n", "traders.csv:2: id is empty"),
    (b"id,name,aeo\n1,A,true\n", "traders.csv:1: missing column(s) partners"),
    (b"id,name,aeo,partners\n1,A\x00,true,van-a\n", "traders.csv:2: name 'A.x00'"),
    (b"id,name,aeo,partners\n\xef\xbc\x91,A,true,van-a\n", "traders.csv:2: id: "),
])
def test_errors_name_the_line(tmp_path: Path, data: bytes, error: str) -> None:
    path = tmp_path / "traders.csv"
    path.write_bytes(data)
    with pytest.raises(ConfigError, match=error.replace("(", r"\(").replace(")", r"\)")):
        read_csv(path)


def test_an_aeo_counts_only_for_its_partners() -> None:
    registry = AeoRegistry({"12345678": frozenset({"van-a"}), "777": frozenset()})
    assert registry.trusted_for("van-a") == {"12345678"}
    assert registry.trusted_for("van-b") == frozenset()
    assert registry.claimed_elsewhere("van-b", frozenset({"12345678", "777", "9"})) == {
        "12345678": ["van-a"], "777": []}
    assert registry.claimed_elsewhere("van-a", frozenset({"12345678"})) == {}


def test_a_fifo_or_a_folder_is_refused_unread(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "traders.csv"
    os.mkfifo(fifo)  # reading it would wait for a writer for ever
    with pytest.raises(ConfigError, match=r"traders\.csv: not a regular file"):
        read_csv(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        read_csv(tmp_path)
