"""The trader registry file: every error names the file, the line and the column; and who
counts as a trusted trader (active, within validity, registered to the partner)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from gateway.app.traders import AeoRegistry, read_csv
from gateway.errors import ConfigError
from gateway.model.traders import Suspension, TrustedTrader


def test_rows_with_their_partners(tmp_path: Path) -> None:
    path = tmp_path / "traders.csv"
    path.write_text("id,name,aeo,partners\n1,A,yes,van-a van-b\n2,B,no,\n3,C,true,van-b;van-c\n")
    # A file of the first four columns means what it meant: an active AEO without end date.
    assert read_csv(path) == [
        TrustedTrader("1", "A", True, frozenset({"van-a", "van-b"})),
        TrustedTrader("2", "B", False, frozenset()),
        TrustedTrader("3", "C", True, frozenset({"van-b", "van-c"}))]


def test_the_programme_columns(tmp_path: Path) -> None:
    path = tmp_path / "traders.csv"
    path.write_text("id,name,aeo,partners,programme,tier,status,valid_from,valid_until,"
                    "mutual_recognition\n"
                    "1,A,yes,van-a,aeo-f,2,,2026-01-01,2028-12-31,US JP;CN\n"
                    "2,B,yes,van-a,C-TPAT,Tier III,revoked,,,\n")
    assert read_csv(path) == [
        TrustedTrader("1", "A", True, frozenset({"van-a"}), "AEO-F", "2", "active",
                      dt.date(2026, 1, 1), dt.date(2028, 12, 31), ("US", "JP", "CN")),
        TrustedTrader("2", "B", True, frozenset({"van-a"}), "C-TPAT", "Tier III", "revoked")]


@pytest.mark.parametrize(("data", "error"), [
    (b"id,name,aeo,partners\n1,A,true,van-a\n2,\xe9,true,van-a\n", "traders.csv:3: not UTF-8"),
    (b"id,name,aeo,partners\n1,A,true,\n", "traders.csv:2: column 4 (partners): empty"),
    (b"id,name,aeo,partners\n1,A,maybe,van-a\n", "traders.csv:2: column 3 (aeo): 'maybe'"),
    (b"id,name,aeo,partners\n,A,true,van-a\n", "traders.csv:2: column 1 (id): empty"),
    (b"id,name,aeo\n1,A,true\n", "traders.csv:1: missing column(s) partners"),
    (b"id,name,aeo,partners\n1,A\x00,true,van-a\n", "traders.csv:2: column 2 (name): 'A.x00'"),
    (b"id,name,aeo,partners\n\xef\xbc\x91,A,true,van-a\n", "traders.csv:2: column 1 (id): "),
    (b"id,aeo,partners,programme\n1,y,van-a,AEO-F\n2,y,van-a,GOLD\n",
     "traders.csv:3: column 4 (programme): 'GOLD' is none of AEO, AEO-C"),
    (b"id,aeo,partners,status\n1,y,van-a,paused\n", "traders.csv:2: column 4 (status): 'paused'"),
    (b"id,aeo,partners,valid_until\n1,y,van-a,2026-02-30\n",
     "traders.csv:2: column 4 (valid_until): '2026-02-30' is not a date"),
    (b"id,aeo,partners,valid_from\n1,y,van-a,\xd9\xa2026-01-01\n",
     "traders.csv:2: column 4 (valid_from): "),
    (b"id,aeo,partners,valid_from,valid_until\n1,y,van-a,2027-01-01,2026-01-01\n",
     "traders.csv:2: column 5 (valid_until): 2026-01-01 is before valid_from"),
    (b"id,aeo,partners,mutual_recognition\n1,y,van-a,US usa\n",
     "traders.csv:2: column 4 (mutual_recognition): 'usa' is not an ISO 3166"),
])
def test_errors_name_the_line(tmp_path: Path, data: bytes, error: str) -> None:
    path = tmp_path / "traders.csv"
    path.write_bytes(data)
    with pytest.raises(ConfigError, match=error.replace("(", r"\(").replace(")", r"\)")):
        read_csv(path)


def test_an_aeo_counts_only_for_its_partners() -> None:
    registry = AeoRegistry({"12345678": TrustedTrader("12345678", partners=frozenset({"van-a"})),
                            "777": TrustedTrader("777")})
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


DAY = dt.date(2026, 12, 4)


@pytest.mark.parametrize(("entry", "why"), [
    (TrustedTrader("1", partners=frozenset({"van-a"})), None),
    (TrustedTrader("1", partners=frozenset({"van-a"}), valid_until=DAY), None),  # its last day
    (TrustedTrader("1", partners=frozenset({"van-a"}), valid_from=DAY), None),
    (TrustedTrader("1", partners=frozenset({"van-a"}), valid_until=dt.date(2026, 12, 3)),
     "expired on 2026-12-03"),
    (TrustedTrader("1", partners=frozenset({"van-a"}), valid_from=dt.date(2026, 12, 5)),
     "valid only from 2026-12-05"),
    (TrustedTrader("1", partners=frozenset({"van-a"}), status="revoked"), "status revoked"),
    (TrustedTrader("1", partners=frozenset({"van-a"}), suspension=Suspension(
        dt.datetime(2026, 12, 4, tzinfo=dt.UTC), "ops", "audit")), "suspended by ops: audit"),
    (TrustedTrader("1", aeo=False, partners=frozenset({"van-a"})),
     "not an authorised economic operator"),
])
def test_only_an_active_valid_authorisation_is_trusted(entry: TrustedTrader,
                                                       why: str | None) -> None:
    registry = AeoRegistry({"1": entry})
    assert entry.why_not_trusted(DAY) == why
    assert registry.trusted_for("van-a", DAY) == (frozenset({"1"}) if why is None else set())
    assert registry.trusted_for("van-b", DAY) == frozenset()  # never for another partner
    lapsed = registry.lapsed("van-a", frozenset({"1"}), DAY)
    assert lapsed == ({} if why is None or not entry.aeo else {"1": why})


def test_agencies_are_told_the_verified_programme_and_tier() -> None:
    registry = AeoRegistry({
        "2": TrustedTrader("2", partners=frozenset({"van-a"}), programme="AEO-F", tier="2",
                           valid_until=dt.date(2028, 1, 31), mutual_recognition=("US", "JP")),
        "3": TrustedTrader("3", partners=frozenset({"van-a"}), programme="C-TPAT")})
    trusted = registry.trusted_for("van-a", DAY)
    assert registry.verified(trusted, frozenset({"3", "2", "9"})) == {
        "aeo_trader": "2", "aeo_programme": "AEO-F", "aeo_tier": "2", "aeo_status": "active",
        "aeo_valid_until": "2028-01-31", "aeo_mutual_recognition": "US JP"}
    assert registry.verified(trusted, frozenset({"9"})) == {}
    assert registry.verified(registry.trusted_for("van-b", DAY), frozenset({"2"})) == {}


@pytest.mark.parametrize(("data", "error"), [
    # The same trader twice (also once padded with spaces, the same id once normalised): the
    # second row silently replaced the first's partners and status.
    (b"id,name,aeo,partners\n12345,A,true,van-a\n12345,B,false,\n",
     "traders.csv:3: column 1 (id): '12345' already on line 2"),
    (b"id,name,aeo,partners\n12345,A,true,van-a\n 12345 ,B,true,van-b\n",
     "traders.csv:3: column 1 (id): '12345' already on line 2"),
    # A partners list separated by an unquoted comma: van-b was dropped without a word.
    (b"id,name,aeo,partners\n12345,A,true,van-a,van-b\n",
     "traders.csv:2: 5 cells for 4 columns"),
    # A column named twice: DictReader kept the last one silently.
    (b"id,id,name,aeo,partners\n1,2,A,true,van-a\n", "traders.csv:1: column(s) id named twice"),
])
def test_a_file_that_means_two_things_is_refused(tmp_path: Path, data: bytes,
                                                  error: str) -> None:
    path = tmp_path / "traders.csv"
    path.write_bytes(data)
    with pytest.raises(ConfigError, match=error.replace("(", r"\(").replace(")", r"\)")):
        read_csv(path)


def test_bom_and_crlf_are_read(tmp_path: Path) -> None:
    path = tmp_path / "traders.csv"
    path.write_bytes(b"\xef\xbb\xbfid,name,aeo,partners\r\n1,A,true,van-a\r\n")
    assert read_csv(path) == [TrustedTrader("1", "A", True, frozenset({"van-a"}))]


def test_a_field_past_the_csv_limit_names_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "traders.csv"
    path.write_text("id,name,aeo,partners\n1,A,true,van-a\n2," + "B" * 200_000 + ",true,van-a\n")
    with pytest.raises(ConfigError, match=r"traders\.csv:3: field larger than field limit"):
        read_csv(path)  # said line 2 (the last one read whole)


def test_a_spreadsheets_trailing_empty_columns_are_read(tmp_path: Path) -> None:
    path = tmp_path / "traders.csv"
    path.write_text("id,name,aeo,partners,,\n1,A,true,van-a,,\n")
    assert read_csv(path) == [TrustedTrader("1", "A", True, frozenset({"van-a"}))]


def test_a_large_registry_is_scanned_once_per_partner_and_day() -> None:
    import time

    registry = AeoRegistry({f"T{i}": TrustedTrader(f"T{i}", partners=frozenset({"van-a"}))
                            for i in range(200_000)})
    started = time.perf_counter()
    for _ in range(200):  # a batch's decision asks once per partner
        assert len(registry.trusted_for("van-a", DAY)) == 200_000
    # A scan of 200,000 entries takes ~50 ms: 200 of them ~10 s; once, then answered.
    assert time.perf_counter() - started < 2.0
    assert registry.trusted_for("van-b", DAY) == frozenset()
