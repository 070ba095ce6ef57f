"""Every alarm the gateway logs carries a stable code of gateway.alarms' table (issue 14), and
the table's codes are unique.  An alarm site is an ``event(...)`` call whose name is one of the
table's events, or whose ``note`` begins with "alarm"; found in the source (ast), so a new
alarm without a code fails here."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from gateway import alarms

SOURCE = Path(alarms.__file__).parent
#: Alarm sites allowed to have no code yet (none: every one carries its code).
LEAD_APPLIES: frozenset[tuple[str, str]] = frozenset()
CODES = {name: value for name, value in vars(alarms).items()
         if isinstance(value, str) and re.fullmatch(r"GW-A\d{3}", value)}
EVENTS = {event: alarm.code for alarm in alarms.ALARMS for event in alarm.events}


@dataclass(frozen=True)
class Site:
    path: str
    line: int
    name: str | None
    codes: tuple[str, ...]
    #: A code given other than as ``alarms.NAME`` (a literal, a variable).
    loose: bool


def _text(node: ast.AST) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_text(v) for v in node.values)
    if isinstance(node, ast.IfExp):
        return _text(node.body)
    return ""


def _codes(node: ast.AST) -> tuple[tuple[str, ...], bool]:
    names = [n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
             and isinstance(n.value, ast.Name) and n.value.id == "alarms"]
    loose = any(isinstance(n, ast.Constant) and isinstance(n.value, str)
                for n in ast.walk(node))
    return tuple(names), loose or not names


def alarm_sites() -> list[Site]:
    sites = []
    for path in sorted(SOURCE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "event" and len(node.args) >= 2):
                continue
            keywords = {k.arg: k.value for k in node.keywords if k.arg is not None}
            name = _text(node.args[1]) or None
            noted = _text(keywords.get("note", ast.Constant(""))).startswith("alarm")
            if not noted and name not in EVENTS and "code" not in keywords:
                continue
            codes, loose = _codes(keywords["code"]) if "code" in keywords else ((), False)
            sites.append(Site(str(path.relative_to(SOURCE)), node.lineno, name, codes, loose))
    return sites


def test_codes_are_unique_and_well_formed() -> None:
    codes = [alarm.code for alarm in alarms.ALARMS]
    assert len(codes) == len(set(codes))
    assert set(codes) == set(CODES.values())
    assert len(CODES) == len(set(CODES.values())), "two constants name one code"
    events = [event for alarm in alarms.ALARMS for event in alarm.events]
    assert len(events) == len(set(events)), "an event under two codes"
    for alarm in alarms.ALARMS:
        assert alarm.meaning and alarm.action and alarm.events


def test_every_alarm_site_uses_a_code_of_the_table() -> None:
    sites = alarm_sites()
    assert len(sites) >= 10  # the scan finds them at all
    for site in sites:
        if (site.path, site.name) in LEAD_APPLIES and not site.codes:
            continue
        where = f"{site.path}:{site.line} ({site.name})"
        assert site.codes and not site.loose, f"{where}: an alarm without code=alarms.NAME"
        for name in site.codes:
            assert name in CODES, f"{where}: alarms.{name} is not in the table"
            if site.name in EVENTS:
                assert CODES[name] == EVENTS[site.name], f"{where}: another alarm's code"


def test_every_code_of_the_table_is_used() -> None:
    used = {CODES[n] for site in alarm_sites() for n in site.codes}
    pending = {EVENTS[name] for _, name in LEAD_APPLIES}
    assert set(CODES.values()) - pending <= used


def test_the_codes_are_documented() -> None:
    docs = (SOURCE.parent / "docs" / "observability.md").read_text()
    for alarm in alarms.ALARMS:
        assert alarm.code in docs, alarm.code
