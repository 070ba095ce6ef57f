"""The cargo trail's rules, pure (gateway.pipeline.port_rules): steps from container events,
the checks a step opens and closes, lateness, and the trail cursor's low-water mark."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from gateway.config.port_alarms import PortAlarmsFile
from gateway.config.yamlfile import load_model_text
from gateway.errors import ConfigError
from gateway.model.canonical import ContainerEvent, Equipment, Location, Source
from gateway.model.containers import container_number
from gateway.pipeline import port_rules
from gateway.pipeline.port_rules import TrailStep

T0 = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC)
RULES = load_model_text("""
overtime:
  - name: discharge-to-gate-out
    from: {event: discharged, node: TWKHH}
    to: {event: gate_out}
    within_hours: 72
illegal_storage:
  within_seconds: 3600
""", "port-alarms.yaml", PortAlarmsFile)
SOURCE = Source(syntax="EDIFACT", message_type="COARRI", release="D96B", sender="VANA",
                recipient="SWGATEWAY", interchange_reference="1", message_reference="1")


def event(kind: str, *ids: str | None, at: dt.datetime | None = T0,
          node: str | None = "twkhh") -> ContainerEvent:
    return ContainerEvent(source=SOURCE, message_number="M1", event=kind,  # type: ignore[arg-type]
                          occurred_at=at, location=None if node is None else
                          Location(qualifier="165", code=node),
                          equipment=tuple(Equipment(qualifier="CN", id=i) for i in ids))


def test_container_numbers_have_one_spelling_and_others_are_left_out() -> None:
    assert container_number("mscu 123456-5") == "MSCU1234565"
    full_width = "MSCU" + "".join(chr(0xFF10 + int(d)) for d in "1234565")
    for wrong in ("MSCU123456", "MSC11234565", full_width, "X" * 4000, "", None,
                  "MSCU\x001234565"):
        assert container_number(wrong) is None


def test_an_event_makes_one_step_per_container_at_its_node() -> None:
    steps = port_rules.steps_of(event("discharged", "MSCU1234565", "TRAILER-9", "mscu1234565",
                                      "TGHU7654321"), 7, T0 + dt.timedelta(minutes=5))
    assert [(s.container, s.event, s.node, s.at, s.message_id) for s in steps] == [
        ("MSCU1234565", "discharged", "TWKHH", T0, 7),
        ("TGHU7654321", "discharged", "TWKHH", T0, 7)]


def test_a_step_is_never_later_than_its_report_nor_at_a_node_that_is_no_code() -> None:
    received = T0 + dt.timedelta(minutes=1)
    (future,) = port_rules.steps_of(event("gate_in", "MSCU1234565", at=T0 + dt.timedelta(
        days=3650), node="KAO HSIUNG\x00"), 1, received)
    assert future.at == received and future.node is None
    (undated,) = port_rules.steps_of(event("gate_in", "MSCU1234565", at=None), 1, received)
    assert undated.at == received
    assert port_rules.steps_of(event("other", "MSCU1234565"), 1, received) == []


def step(kind: str, at: dt.datetime = T0, node: str | None = "TWKHH") -> TrailStep:
    return TrailStep("MSCU1234565", kind, node, at, 1)


def test_a_discharge_at_the_rules_node_opens_both_clocks() -> None:
    checks = port_rules.opened_by(step("discharged"), RULES)
    assert [(c.rule, c.alarm, c.due_at - c.started_at) for c in checks] == [
        ("discharge-to-gate-out", "overtime", dt.timedelta(hours=72)),
        ("illegal-storage", "illegal_storage", dt.timedelta(hours=1))]
    elsewhere = port_rules.opened_by(step("discharged", node="CNSHA"), RULES)
    assert [c.alarm for c in elsewhere] == ["illegal_storage"]
    assert [c.alarm for c in port_rules.opened_by(step("gate_in"), RULES)] == [
        "illegal_storage"]
    assert port_rules.opened_by(step("loaded"), RULES) == []
    assert [r.name for r in port_rules.closed_by(step("gate_out", node=None), RULES)] == [
        "discharge-to-gate-out"]


def test_late_is_strictly_past_the_limit_and_a_declaration_counts_by_its_due_time() -> None:
    limit = 72 * 3600.0
    assert not port_rules.late(T0, limit, T0 + dt.timedelta(hours=72))
    assert port_rules.late(T0, limit, T0 + dt.timedelta(hours=72, seconds=1))
    hour = 3600.0
    assert port_rules.covered_in_time(T0, hour, T0 - dt.timedelta(hours=1))  # pre-arrival
    assert port_rules.covered_in_time(T0, hour, T0 + dt.timedelta(hours=1))
    assert not port_rules.covered_in_time(T0, hour, T0 + dt.timedelta(hours=1, seconds=1))
    # a declaration for the container's visit weeks before covers not this one
    assert not port_rules.covered_in_time(T0, hour, T0 - dt.timedelta(days=21))


def test_a_start_in_a_visit_is_the_same_visit_and_one_after_its_end_the_next() -> None:
    (clock, _) = port_rules.opened_by(step("discharged"), RULES)
    assert port_rules.in_visit(clock, T0) and port_rules.in_visit(clock, T0 + dt.timedelta(
        days=30))  # not ended yet: a repeated report
    ended = dataclasses.replace(clock, ended_at=T0 + dt.timedelta(hours=5))
    assert port_rules.in_visit(ended, T0 + dt.timedelta(hours=5))
    assert not port_rules.in_visit(ended, T0 + dt.timedelta(hours=5, seconds=1))
    assert not port_rules.in_visit(ended, T0 - dt.timedelta(seconds=1))


def test_a_date_from_more_than_a_year_before_its_report_counts_as_undated() -> None:
    received = T0 + dt.timedelta(minutes=1)
    for absurd in (dt.datetime(1, 1, 1, tzinfo=dt.UTC), T0 - dt.timedelta(days=367)):
        (taken,) = port_rules.steps_of(event("discharged", "MSCU1234565", at=absurd), 1,
                                       received)
        assert taken.at == received
    year = T0 - dt.timedelta(days=366)
    (kept,) = port_rules.steps_of(event("discharged", "MSCU1234565", at=year), 1, T0)
    assert kept.at == year


def test_the_cursor_stops_before_a_gap_until_it_is_given_up() -> None:
    assert port_rules.low_water(10, [11, 12, 14, 15], lambda _: False) == 12
    assert port_rules.low_water(10, [11, 12, 14, 15], lambda missing: missing == 13) == 15
    assert port_rules.low_water(10, [], lambda _: True) == 10
    assert port_rules.low_water(10, [13], lambda _: False) == 10


@pytest.mark.parametrize(("text", "error"), [
    ("overtime:\n  - name: a\n    from: {event: discharged}\n    to: {event: gate_out}\n",
     "port-alarms.yaml:2:5 overtime[0]: Value error, give within_seconds or within_hours"),
    ("overtime:\n  - name: a\n    from: {event: discharged}\n    to: {event: gone}\n"
     "    within_seconds: 5\n", "port-alarms.yaml:4:17 overtime[0].to.event"),
    ("illegal_storage:\n  after: [loaded]\n  within_hours: 1\n",
     "port-alarms.yaml:2:11 illegal_storage.after[0]"),
])
def test_a_wrong_rule_names_file_line_and_field(text: str, error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_model_text(text, "port-alarms.yaml", PortAlarmsFile)
    assert str(caught.value).startswith(error), str(caught.value)
