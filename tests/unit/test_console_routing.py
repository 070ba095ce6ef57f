"""The pure parts of the console's routing changes: the replay of stored messages through two
tables (pipeline.routing_diff, shared with ``gateway routes diff``), the text diff, the form's
values, the maker-checker refusal and the history's diffs (console.routing_pages)."""

from __future__ import annotations

import datetime as dt

from gateway.console.routing_pages import (
    DEFAULT_DAYS,
    MAX_DAYS,
    _history,
    _refusal,
    days_of,
    normalised,
    replay_json,
    text_diff,
)
from gateway.model.canonical import CANONICAL_ADAPTER
from gateway.pipeline.routing_diff import replay, summary
from gateway.store.routing_proposals import Proposal, VersionEntry
from tests.unit.test_routing import declaration, table

OLD = "rules:\n  - name: customs\n    deliver: [customs]\n"
FOOD = "  - name: food\n    match: {hs_chapters: [\"01-24\"]}\n    deliver: [quarantine]\n"


def stored(*codes: str, reference: str = "DEC-1") -> tuple[str, str]:
    message = declaration(*codes)
    text = CANONICAL_ADAPTER.dump_json(message).decode()
    return "demo-van", text.replace('"DEC-1"', f'"{reference}"')


def test_the_replay_says_which_agencies_gain_and_lose_which_messages() -> None:
    messages = [stored("0303.55", reference="FISH"), stored("8471.30", reference="LAPTOP")]
    diff = replay(table(OLD), table(OLD + FOOD), messages)
    assert (diff.replayed, diff.gained, diff.lost) == (2, {"quarantine": ["FISH"]}, {})
    back = replay(table(OLD + FOOD), table(OLD), messages)
    assert back.lost == {"quarantine": ["FISH"]} and back.changes and not back.unroutable
    assert not replay(table(OLD), table(OLD), messages).changes


def test_a_message_routed_nowhere_after_the_change_is_named() -> None:
    only_food = "rules:\n" + FOOD
    diff = replay(table(OLD), table(only_food), [stored("8471.30", reference="LAPTOP")])
    assert diff.lost == {"customs": ["LAPTOP"]} and diff.unroutable == ["LAPTOP"]
    as_json = replay_json(diff, 3)
    assert as_json == {"days": 3, "replayed": 1, "gained": {},
                       "lost": {"customs": {"count": 1, "sample": ["LAPTOP"]}},
                       "unroutable": {"count": 1, "sample": ["LAPTOP"]}}


def test_summary_names_a_few_references() -> None:
    assert summary(["A"]) == "1 message (A)"
    assert summary([str(n) for n in range(7)]) == "7 messages (0, 1, 2, 3, 4 ...)"


def test_text_diff_marks_lines_added_and_removed() -> None:
    lines = text_diff(OLD, OLD + FOOD)
    assert lines[0].kind == "hunk"
    assert [line.text for line in lines if line.kind == "add"] == [
        "+" + row for row in FOOD.splitlines()]
    assert text_diff(OLD, OLD) == []


def test_a_textarea_s_line_ends_become_the_file_s() -> None:
    assert normalised("a\r\nb\rc\n") == "a\nb\nc\n"


def test_days_default_capped_and_checked() -> None:
    assert days_of(None) == days_of(" ") == DEFAULT_DAYS
    assert days_of("3") == 3 and days_of("999") == MAX_DAYS
    assert days_of("0") is None and days_of("-1") is None and days_of("seven") is None


def proposal(state: str = "proposed", proposer: str = "Ada") -> Proposal:
    now = dt.datetime.now(dt.UTC)
    return Proposal(7, OLD + FOOD, "0" * 64, OLD, proposer, now, state, None,
                    None if state == "proposed" else now, None, 7, {}, None)


def test_nobody_approves_their_own_proposal_and_nothing_is_decided_twice() -> None:
    assert _refusal(None, 7, "abe", approving=True) == ("There is no routing proposal 7", 404)
    refusal = _refusal(proposal(), 7, "ada", approving=True)  # names are case-insensitive
    assert refusal is not None and refusal[1] == 403 and "Maker-checker" in refusal[0]
    assert _refusal(proposal(), 7, "abe", approving=True) is None
    assert _refusal(proposal(), 7, "ada", approving=False) is None  # withdrawing one's own
    for state in ("approved", "applied", "rejected", "superseded"):
        refusal = _refusal(proposal(state), 7, "abe", approving=True)
        assert refusal is not None and refusal[1] == 409 and f"already {state}" in refusal[0]


def version(number: int, body: str, status: str = "applied",
            proposal: int | None = None) -> VersionEntry:
    return VersionEntry(number, "x", "routing.yaml (file changed)", status, None,
                        dt.datetime.now(dt.UTC), body, proposal,
                        None if proposal is None else "ada",
                        None if proposal is None else "abe")


def test_history_diffs_each_version_against_the_applied_one_before() -> None:
    entries = _history([version(4, OLD, proposal=2), version(3, "rules: [", "refused"),
                        version(2, OLD + FOOD)], (1, OLD))
    assert [e.against for e in entries] == [2, 2, 1]
    assert any(line.kind == "remove" for line in entries[0].diff)
    assert entries[0].origin == "console proposal 2: proposed by ada, approved by abe"
    assert entries[2].origin == "edited in routing.yaml directly"
    assert _history([version(1, OLD)], None)[0].against is None
