"""The audit's own bookkeeping on made-up observations: it must see a loss, a doubling, a
missing answer, a stray agency and a failure outside the fault, or its zeros mean nothing."""

from __future__ import annotations

from pathlib import Path

from tests.support.fault_audit import (
    Delivery,
    Upload,
    Window,
    expected_routes,
    format_table,
    reconcile,
)
from tests.support.fault_reconcile import AGENCIES
from tests.support.harness import DEMO_AGENCIES

FISH, MACHINES = frozenset({"customs", "quarantine"}), frozenset({"customs"})
CONTRL = b"UNH+1+CONTRL:D:3:UN'UCI+{ref}+VANA:ZZZ+SWGATEWAY:ZZZ+7'UNT+3+1'"
WINDOW = Window(3.0, 6.0)


def _upload(i: int, agencies: frozenset[str], ended: float, error: str | None = None
            ) -> Upload:
    return Upload(f"u{i}.edi", "van-a", f"REF{i}", agencies, due=ended - 0.01,
                  started=ended - 0.01, ended=ended, error=error)


def _delivered(upload: Upload, agency: str, message_id: str | None = None,
               at: float | None = None) -> Delivery:
    return Delivery(agency, message_id or f"swg-{upload.reference}-{agency}",
                    upload.reference, upload.reference, False,
                    (upload.ended or 0.0) + 0.05 if at is None else at, acked=True)


def _answered(*uploads: Upload) -> dict[str, list[bytes]]:
    return {u.name: [CONTRL.replace(b"{ref}", u.reference.encode())] for u in uploads}


def _clean_run() -> tuple[list[Upload], list[Delivery]]:
    uploads = [_upload(i, FISH if i % 2 else MACHINES, 1.0 + i * 0.5) for i in range(20)]
    return uploads, [_delivered(u, a) for u in uploads for a in sorted(u.agencies)]


def test_a_clean_run_is_clean() -> None:
    uploads, deliveries = _clean_run()
    row = reconcile("sigkill", 2, 10, uploads, deliveries, _answered(*uploads), WINDOW, 1.0,
                    0, 0)
    assert row.clean, format_table([row])
    assert row.delivered == {"customs": 20, "quarantine": 10}
    assert row.recover_s is not None and row.recover_s < 1.0


def test_a_delivery_missing_at_one_agency_is_a_loss() -> None:
    uploads, deliveries = _clean_run()
    deliveries = [d for d in deliveries
                  if not (d.reference == "REF3" and d.agency == "quarantine")]
    row = reconcile("amqp_cut", 2, 10, uploads, deliveries, _answered(*uploads), WINDOW, 1.0,
                    0, 0)
    assert (row.lost, row.doubled) == (1, 0)
    assert "lost: u3.edi (REF3)" in format_table([row])


def test_an_unacked_delivery_is_not_a_delivery() -> None:
    uploads, deliveries = _clean_run()
    deliveries[0].acked = False  # taken by a consumer that died holding it, never redelivered
    row = reconcile("consumer_killed", 2, 10, uploads, deliveries, _answered(*uploads), WINDOW,
                    1.0, 0, 1)
    assert row.lost == 1


def test_a_second_message_id_or_a_second_answer_is_a_doubling() -> None:
    uploads, deliveries = _clean_run()
    deliveries.append(_delivered(uploads[4], "customs", "swg-999-1-customs"))
    answers = _answered(*uploads)
    answers["u5.edi"] = answers["u5.edi"] * 2
    row = reconcile("sigkill", 2, 10, uploads, deliveries, answers, WINDOW, 1.0, 0, 0)
    assert row.doubled == 2 and row.extra_copies == 0


def test_a_redelivery_under_the_same_message_id_is_an_extra_copy_not_a_doubling() -> None:
    uploads, deliveries = _clean_run()
    deliveries.append(_delivered(uploads[4], "customs"))
    row = reconcile("consumer_killed", 2, 10, uploads, deliveries, _answered(*uploads), WINDOW,
                    1.0, 0, 0)
    assert (row.extra_copies, row.doubled) == (1, 0) and row.clean


def test_no_answer_a_stray_agency_and_a_failure_outside_the_fault_are_each_counted() -> None:
    uploads, deliveries = _clean_run()
    uploads[0].error = uploads[9].error = "refused: send it again"  # at 1.0 s and 5.5 s
    deliveries = [d for d in deliveries if d.reference not in ("REF0", "REF9")]
    deliveries.append(_delivered(uploads[2], "trade"))
    answers = _answered(*uploads[1:])
    del answers["u6.edi"]
    row = reconcile("db_cut", 2, 10, uploads, deliveries, answers, WINDOW, 1.0, 0, 0)
    assert (row.failed_outside_fault, row.failed_in_fault) == (1, 1)
    assert (row.unanswered, row.misrouted, row.lost) == (1, 1, 0)
    assert not row.clean


def test_a_negative_or_foreign_answer_is_a_problem() -> None:
    uploads, deliveries = _clean_run()
    answers = _answered(*uploads)
    answers["u1.edi"] = [CONTRL.replace(b"{ref}", b"REF1").replace(b"+7'", b"+4'")]
    row = reconcile("db_cut", 2, 10, uploads, deliveries, answers, WINDOW, 1.0, 0, 0)
    assert any("does not acknowledge REF1" in p for p in row.problems)


def test_the_backlog_not_yet_delivered_when_the_load_ends_means_no_recovery() -> None:
    uploads, deliveries = _clean_run()
    for d in deliveries:  # from the fault on, customs got nothing until long after the load
        if d.agency == "customs" and int(d.reference.removeprefix("REF")) >= 4:
            d.at = 30.0
    row = reconcile("sigkill", 2, 10, uploads, deliveries, _answered(*uploads), WINDOW, 1.0,
                    0, 0)
    assert row.recover_s is None
    assert row.drained_s == 24.0  # due by 6.0 s, delivered at 30.0 s
    assert "not in load (backlog drained 24.0)" in format_table([row])


def test_the_audit_knows_the_agencies_the_harness_configures() -> None:
    assert AGENCIES == DEMO_AGENCIES


def test_the_routes_come_from_the_shipped_routing_table() -> None:
    routing = Path(__file__).resolve().parents[2] / "routing.yaml"
    assert expected_routes(routing) == {"0303.55": FISH, "8471.30": MACHINES}
