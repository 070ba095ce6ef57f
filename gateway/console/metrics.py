"""What happens, counted in every process of ``gateway serve --workers N`` alike.

The processes count into prometheus_client's multiprocess files (one memory-mapped file per
process and metric type, in a directory the main process makes afresh at each start and hands
to its workers in PROMETHEUS_MULTIPROC_DIR); the main process's /metrics adds them up
(MultiProcessCollector).  A worker that exited and was started again leaves its file behind,
so what it counted still counts: counters and histograms only ever grow, as Prometheus expects
until the gateway restarts.  Gauges are not kept here: they are read from the store at scrape
time (console.scrape), true for the whole gateway whichever process did the work.

Counting is off until ``enable`` (a gateway without ``console:``, the other commands, unit
tests): every ``record_*`` is then a no-op.  prometheus_client picks its value class once, when
it is first imported, from the environment; ``enable`` sets it explicitly instead, so that it
holds whatever imported the library first, and several gateways in one process (the tests)
each count into their own directory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import Counter, Histogram, values

#: prometheus_client's own variable: the worker processes inherit it.
DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
#: From a file closed on the server to its answer written: a CONTRL takes well under a second
#: when all is well; minutes mean a backlog or a channel down.
ANSWER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


@dataclass(frozen=True, slots=True)
class _Instruments:
    received: Counter
    decided: Counter
    rejections: Counter
    messages: Counter
    routed: Counter
    dispatched: Counter
    dispatch_failures: Counter
    dispatch_parked: Counter
    answer_latency: Histogram


_instruments: _Instruments | None = None


def enable(directory: Path) -> None:
    """Count into ``directory`` from now on (this process's own file there)."""
    global _instruments
    _close_files()
    os.environ[DIRECTORY_VARIABLE] = str(directory)
    # The library's own tests swap the value class the same way; metrics made from now on
    # (and their labelled children, made on first use) write to the directory's files.
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    _instruments = _make()


def disable() -> None:
    """Stop counting (the gateway stops); the files are closed, the directory left alone."""
    global _instruments
    _instruments = None
    _close_files()
    values.ValueClass = values.MutexValue
    os.environ.pop(DIRECTORY_VARIABLE, None)


def enabled() -> bool:
    return _instruments is not None


def _close_files() -> None:
    values.close_all_multiprocess_files()  # type: ignore[no-untyped-call]


def _make() -> _Instruments:
    # registry=None: the main process's /metrics reads the files, never a registry of objects.
    return _Instruments(
        received=Counter(
            "gateway_submissions_received", "Submissions committed to the store as they "
            "arrived (a file closed over SFTP, an AS2 message), by transport.",
            ["transport"], registry=None),
        decided=Counter(
            "gateway_submissions_decided", "Submissions decided, by outcome: accepted, "
            "partially_accepted, rejected, duplicate (a resend, answered again, not routed).",
            ["status"], registry=None),
        rejections=Counter(
            "gateway_rejections", "Rejections, by level (interchange: the whole submission; "
            "message: one message of it) and the ISO 9735 syntax error code (data element "
            "0085) of the first finding, the code the CONTRL reports.",
            ["level", "code"], registry=None),
        messages=Counter(
            "gateway_messages", "Messages decided, by what became of them: routed, held (for "
            "ops), unroutable (no rule matched), rejected.", ["status"], registry=None),
        routed=Counter(
            "gateway_messages_routed", "Messages routed to each agency (a message routed to "
            "two agencies counts once for each).", ["agency"], registry=None),
        dispatched=Counter(
            "gateway_dispatched", "Outbox rows sent: published to an agency's queue and "
            "confirmed (amqp), written to a partner's mailbox (mailbox), posted (as2).",
            ["channel"], registry=None),
        dispatch_failures=Counter(
            "gateway_dispatch_failures", "Failed sends of outbox rows (each retried with "
            "backoff), by channel and whom the failure is about: row, destination, channel "
            "(the broker or the channel as a whole), undeliverable (parked at once).",
            ["channel", "scope"], registry=None),
        dispatch_parked=Counter(
            "gateway_dispatch_parked", "Outbox rows parked: not retried any more, an alarm "
            "for ops (`gateway replay`).", ["channel"], registry=None),
        answer_latency=Histogram(
            "gateway_answer_latency_seconds", "From a submission's receipt (its file closed "
            "and committed) to its answer (CONTRL, APERAK, error report...) written to the "
            "partner's mailbox or sent over AS2, by channel and kind of answer.",
            ["channel", "kind"], buckets=ANSWER_BUCKETS, registry=None),
    )


def record_received(transport: str) -> None:
    if _instruments is not None:
        _instruments.received.labels(transport).inc()


@dataclass(slots=True)
class Tally:
    """What one decision counts, kept until its transaction commits: a batch rolled back and
    decided again one by one would otherwise count twice."""

    status: str | None = None
    rejections: list[tuple[str, int]] | None = None
    messages: list[tuple[str, tuple[str, ...]]] | None = None

    def rejected(self, level: str, code: int) -> None:
        if self.rejections is None:
            self.rejections = []
        self.rejections.append((level, code))

    def message(self, status: str, agencies: tuple[str, ...]) -> None:
        if self.messages is None:
            self.messages = []
        self.messages.append((status, agencies))

    def commit(self) -> None:
        """Count it (the decision is in the store)."""
        instruments = _instruments
        if instruments is None:
            return
        if self.status is not None:
            instruments.decided.labels(self.status).inc()
        for level, code in self.rejections or ():
            instruments.rejections.labels(level, str(code)).inc()
        for status, agencies in self.messages or ():
            instruments.messages.labels(status).inc()
            if status == "routed":
                for agency in agencies:
                    instruments.routed.labels(agency).inc()


def record_dispatched(channel: str, count: int) -> None:
    if _instruments is not None and count:
        _instruments.dispatched.labels(channel).inc(count)


def record_dispatch_failure(channel: str, scope: str) -> None:
    if _instruments is not None:
        _instruments.dispatch_failures.labels(channel, scope).inc()


def record_dispatch_parked(channel: str) -> None:
    if _instruments is not None:
        _instruments.dispatch_parked.labels(channel).inc()


def record_answer_latency(channel: str, kind: str, seconds: float) -> None:
    if _instruments is not None:
        _instruments.answer_latency.labels(channel, kind).observe(max(0.0, seconds))
