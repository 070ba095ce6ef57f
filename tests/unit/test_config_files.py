"""Whatever an operator leaves in a configuration file, loading it ends in bounded time and
memory with a ConfigError that names the file and, where there is one, the line."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config.files import MAX_CONFIG_BYTES, read_snapshot, read_text
from gateway.config.load import load_routing, parse_routing
from gateway.config.routing import RoutingTable
from gateway.config.yamlfile import (
    ALIAS_VALUES,
    MAX_DEPTH,
    StrictLoader,
    load_model_text,
    parse,
)
from gateway.errors import ConfigError

AGENCIES = ("customs", "quarantine", "port", "trade", "bank", "tax")
SHIPPED = Path(__file__).resolve().parents[2] / "routing.yaml"


def refused(text: str, name: str = "routing.yaml") -> str:
    with pytest.raises(ConfigError) as caught:
        parse_routing(text, name, AGENCIES)
    return str(caught.value)


def alias_bomb(levels: int) -> str:
    """Each anchor is a list of ten aliases of the previous one: 10**levels strings."""
    lines = ["lists:", "  l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"  l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]" for n in range(1, levels + 1)]
    return "\n".join(lines) + "\nrules:\n  - name: r\n    deliver: [customs]\n"


def test_a_recursive_alias_is_refused_at_its_line() -> None:
    message = refused("lists:\n  loop: &loop [a, *loop]\nrules: []\n")
    assert message.startswith("routing.yaml:2:")
    assert "lists.loop[1]" in message and "recursive alias" in message
    assert "routing.yaml:2:" in refused("rules:\n  - &r {name: x, match: *r}\n")


def test_an_alias_bomb_is_refused_before_it_expands() -> None:
    """10**6 values from ten lines: the old loader built them all (and the routing model then
    refused the shape); the budget stops after ALIAS_VALUES values beyond those written."""
    message = refused(alias_bomb(6))
    assert "routing.yaml:" in message and "alias bomb" in message


def test_a_billion_laughs_ends_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """10**9 values, counted as they are built (the old loader built them all, until the
    memory ran out): at most the values written plus ALIAS_VALUES."""
    built = 0
    construct = StrictLoader.construct_object

    def counted(loader: StrictLoader, node: Any, deep: bool = False) -> Any:
        nonlocal built
        built += 1
        assert built <= 2 * ALIAS_VALUES, "the expansion is not bounded"
        return construct(loader, node, deep)

    monkeypatch.setattr(StrictLoader, "construct_object", counted)
    assert "alias bomb" in refused(alias_bomb(9))
    assert built <= ALIAS_VALUES + 100  # scalars; the budget also counts the lists


def test_aliases_used_as_intended_still_work() -> None:
    text = ("lists:\n  food: &food ['01-24']\nrules:\n  - name: customs\n    deliver: [customs]\n"
            "  - name: food\n    match: {hs_chapters: *food}\n    deliver: [quarantine]\n")
    table = parse_routing(text, "routing.yaml", AGENCIES)
    assert table.rules[1].match.hs_chapters is not None


@pytest.mark.parametrize("text", [
    "[" * 100_000,  # the composer recursed once per level: RecursionError
    "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
    "{a: " * 5_000 + "1" + "}" * 5_000,
])
def test_absurd_nesting_is_refused_with_its_line(text: str) -> None:
    message = refused(text)
    assert message.startswith("routing.yaml:1:") and f"deeper than {MAX_DEPTH}" in message


def test_nesting_through_aliases_is_bounded_too() -> None:
    """Each alias nests the anchor one level deeper: short lines, unbounded depth."""
    chain = "".join(f"  a{n}: &a{n} [*a{n - 1}]\n" for n in range(1, 3 * MAX_DEPTH))
    message = refused(f"lists:\n  a0: &a0 [x]\n{chain}rules: []\n")
    assert f"deeper than {MAX_DEPTH}" in message and "through aliases" in message


@pytest.mark.parametrize(("value", "reason"), [
    ("2024-13-45", "month must be in 1..12"),  # YAML's resolver calls it a date
    ("9" * 5_000, "4300 digits"),  # Python refuses such an int
])
def test_a_scalar_that_cannot_be_built_names_its_line(value: str, reason: str) -> None:
    message = refused(f"rules:\n  - name: r\n    deliver: [customs]\n    priority: {value}\n")
    assert message.startswith("routing.yaml:4:15 rules[0].priority: cannot read")
    assert reason in message


def test_a_key_that_is_not_text_is_refused() -> None:
    message = refused("lists:\n  ? [a, b]\n  : [c]\nrules: []\n")
    assert message.startswith("routing.yaml:2:5 lists: a key must be plain text")


def test_a_nul_character_is_refused_at_its_line() -> None:
    message = refused("rules:\n  - name: r\x00\n    deliver: [customs]\n")
    assert message.startswith("routing.yaml:2:12: not valid YAML: character U+0000")


def test_thousands_of_errors_are_summed_up() -> None:
    rules = "".join(f"  - name: r{n}\n    deliver: [nobody]\n" for n in range(200))
    message = refused("rules:\n" + rules)
    assert len(message.splitlines()) == 21 and message.endswith(" more errors")


def test_too_many_rules_are_refused_before_they_are_compared() -> None:
    """Each rule is compared with every earlier one: 20,000 rules (1 MiB) would take hours."""
    rules = "".join(f"  - name: r{n}\n    deliver: [customs]\n" for n in range(1001))
    assert "1001 rules: a table may have at most 1000" in refused("rules:\n" + rules)


def test_a_list_named_by_every_rule_cannot_multiply_the_values() -> None:
    codes = ", ".join(f"'{n:04d}'" for n in range(1000))
    rules = "".join(f"  - name: r{n}\n    match: {{commodity_codes: '@codes', partners: [p{n}]}}\n"
                    f"    deliver: [customs]\n" for n in range(101))
    message = refused(f"lists:\n  codes: [{codes}]\nrules:\n{rules}")
    assert "rules[100].match.commodity_codes" in message and "more than 100000" in message


def test_unicode_digits_are_no_hs_chapter_or_commodity_code() -> None:
    for condition in ("hs_chapters: ['٠٣']", "hs_chapters: ['03\\n']",
                      "commodity_codes: ['٠٣٠٢']", "commodity_codes: ['0302²']"):
        text = f"rules:\n  - name: r\n    match: {{{condition}}}\n    deliver: [customs]\n"
        assert "rules[0].match" in refused(text), condition


def test_a_rule_naming_an_unknown_partner_is_refused() -> None:
    text = "rules:\n  - name: r\n    match: {partners: [van-A]}\n    deliver: [customs]\n"
    with pytest.raises(ConfigError, match=r"routing\.yaml:3:.*unknown partner 'van-A'"):
        parse_routing(text, "routing.yaml", AGENCIES, ("van-a",))


# Files that are not configuration at all.


def test_a_file_that_is_not_utf8_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_bytes(b"rules:\n  - name: caf\xe9\n    deliver: [customs]\n")
    with pytest.raises(ConfigError, match=r"routing.yaml:2:14: not UTF-8 \(byte 0xe9\)"):
        load_routing(path, AGENCIES)


def test_a_huge_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    with path.open("wb") as handle:
        handle.truncate(64 * MAX_CONFIG_BYTES)  # sparse: nothing to read, but its size
    with pytest.raises(ConfigError, match="is larger than a configuration file may be"):
        load_routing(path, AGENCIES)


def test_a_long_text_is_refused_unparsed() -> None:
    assert "larger than a configuration" in refused("#" * (MAX_CONFIG_BYTES + 1))


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "routing.yaml").mkdir()
    with pytest.raises(ConfigError, match=r"routing\.yaml: cannot read: a directory"):
        load_routing(tmp_path / "routing.yaml", AGENCIES)


def test_a_symlink_loop_is_named(tmp_path: Path) -> None:
    (tmp_path / "routing.yaml").symlink_to(tmp_path / "routing.yaml")
    with pytest.raises(ConfigError, match=r"routing\.yaml: cannot read: Too many levels"):
        load_routing(tmp_path / "routing.yaml", AGENCIES)


def test_a_fifo_does_not_hang_the_reader(tmp_path: Path) -> None:
    """Opening a FIFO waits for a writer: routing.yaml made a FIFO by mistake hung the start
    (and the reload thread) for ever."""
    path = tmp_path / "routing.yaml"
    os.mkfifo(path)
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            load_routing(path, AGENCIES)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            outcome.append(exc)

    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(60)  # a guard against a hang, not a speed check: the read takes microseconds
    if reader.is_alive():  # let the old reader go: open the FIFO's other end
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(10)
    assert outcome and isinstance(outcome[0], ConfigError), outcome
    assert "not a regular file" in str(outcome[0])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(SHIPPED.read_text())
    path.chmod(0)
    with pytest.raises(ConfigError, match=r"routing\.yaml: cannot read: Permission denied"):
        load_routing(path, AGENCIES)


def test_a_file_replaced_while_it_is_read_is_not_taken(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The path no longer names the file read (renamed over meanwhile): the text read is not
    what is there now, so it is no snapshot; ``read_text`` reads again."""
    path = tmp_path / "routing.yaml"
    path.write_text("old: 1\n")
    real_read = os.read
    replaced: list[bool] = []

    def read_then_replace(descriptor: int, size: int) -> bytes:
        data = real_read(descriptor, size)
        if not replaced:
            replaced.append(True)
            (tmp_path / "new.yaml").write_text("new: 2\n")
            os.replace(tmp_path / "new.yaml", path)
        return data

    monkeypatch.setattr(os, "read", read_then_replace)
    assert read_snapshot(path) is None
    assert read_text(path) == "new: 2\n"


def test_a_file_growing_while_it_is_read_is_not_taken(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text("rules:\n")
    real_read = os.read

    def read_then_append(descriptor: int, size: int) -> bytes:
        first = os.lseek(descriptor, 0, os.SEEK_CUR) == 0
        data = real_read(descriptor, size)
        if first:  # each read of the file sees the writer add a line, in place
            with path.open("a") as handle:
                handle.write("  - name: more\n")
        return data

    monkeypatch.setattr(os, "read", read_then_append)
    assert read_snapshot(path) is None
    with pytest.raises(ConfigError, match="kept changing while it was read"):
        read_text(path)


#: Pieces of YAML an operator's file may hold, in any order: anchors and aliases (a cycle when
#: an alias stands inside its anchor), flow and block collections, complex keys, tags, scalars
#: the resolver takes for dates and ints, characters YAML forbids.
YAML_PIECES = ["&a ", "&b ", "*a", "*b", "[", "]", "{", "}", ": ", ", ", "\n", "\n  ", "- ",
               "? ", "x", "rules", "!!int ", "!!binary ", "2024-13-45", "9" * 4400, "'", "\"",
               "#", "\x00", "\ud800", "\u2028", "\ufeff", "|\n", "---\n", "..."]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(YAML_PIECES), max_size=40).map("".join))
def test_any_text_is_data_or_a_config_error(text: str) -> None:
    try:
        parse(text, "x.yaml")
    except ConfigError as exc:
        assert str(exc).startswith("x.yaml")


def test_the_alias_budget_is_relative_to_the_values_written() -> None:
    """Values written count once each: a large list used again by an alias is no bomb."""
    items = ", ".join("x" for _ in range(ALIAS_VALUES // 2 + 10))
    data, _ = parse(f"a: &a [{items}]\nb: *a\n", "x.yaml")
    assert len(data["a"]) + len(data["b"]) > ALIAS_VALUES


def test_a_mapping_file_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    """Mapping files are read like the other configuration (a UnicodeDecodeError escaped)."""
    from gateway.app.catalog_files import load_catalog
    from gateway.app.mapping_files import load_mappings

    (tmp_path / "edifact").mkdir()
    (tmp_path / "edifact" / "cusdec.yaml").write_bytes(b"syntax: EDIFACT\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"cusdec\.yaml:2:6: not UTF-8 \(byte 0xe9\)"):
        load_mappings(load_catalog(), tmp_path)


@pytest.mark.parametrize("text", [
    "rules: !!python/object/apply:os.system ['id']\n",
    "rules: !!set {a: null}\n",
    "rules: !!omap [{a: 1}]\n",
])
def test_a_tag_on_a_list_or_mapping_is_refused_not_ignored(text: str) -> None:
    """PyYAML's safe loader would build these; the gateway's loader used to drop the tag
    silently and read the list or mapping under it (nothing falls back silently)."""
    with pytest.raises(ConfigError, match=r"r\.yaml:1:8 rules: tag .* is not allowed here"):
        load_model_text(text, "r.yaml", RoutingTable)
