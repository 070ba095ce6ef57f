"""The /metrics page: the counters every process wrote (console.metrics) and the gauges read
from the store now, in the Prometheus text format."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from gateway.store.gauges import Backlog


def gauges(backlog: Backlog | None, routing_version: int | None,
           agencies: Iterable[str]) -> list[Metric]:
    """The gauges of one scrape.  ``backlog`` None: the store did not answer, and only
    ``gateway_store_up`` says so (a stale figure would read as a true one).  Each agency's
    queue has a depth, 0 included, so that an alert on it never sees the series vanish."""
    up = GaugeMetricFamily("gateway_store_up", "1 when this scrape's store queries answered "
                           "within their timeout, else 0 (the backlog gauges are then absent).")
    up.add_metric([], 0.0 if backlog is None else 1.0)
    version = GaugeMetricFamily("gateway_routing_version", "The version of the routing table "
                                "in force (routing_versions), 0 before one is applied.")
    version.add_metric([], float(routing_version or 0))
    families: list[Metric] = [up, version]
    if backlog is None:
        return families
    depth = GaugeMetricFamily(
        "gateway_outbox_waiting_rows", "Outbox rows waiting to be sent (not sent, not "
        "parked), per channel and destination (an agency on amqp, a partner on mailbox "
        "and as2).", labels=["channel", "destination"])
    age = GaugeMetricFamily(
        "gateway_outbox_oldest_age_seconds", "How long the oldest waiting outbox row of each "
        "channel and destination has waited.", labels=["channel", "destination"])
    seen = set()
    for waiting in backlog.outbox:
        seen.add((waiting.channel, waiting.destination))
        depth.add_metric([waiting.channel, waiting.destination], float(waiting.rows))
        age.add_metric([waiting.channel, waiting.destination], waiting.oldest_age_seconds)
    for agency in sorted(set(agencies)):
        if ("amqp", agency) not in seen:
            depth.add_metric(["amqp", agency], 0.0)
            age.add_metric(["amqp", agency], 0.0)
    undecided = GaugeMetricFamily(
        "gateway_processor_waiting_submissions", "Submissions received and not yet decided.")
    undecided.add_metric([], float(backlog.undecided))
    lag = GaugeMetricFamily(
        "gateway_processor_lag_seconds", "How long the oldest submission not yet decided has "
        "waited since it was received (0 when none waits).")
    lag.add_metric([], backlog.undecided_oldest_age_seconds)
    parked = GaugeMetricFamily(
        "gateway_parked_submissions", "Submissions parked after repeated failures to decide "
        "them (alarm: `gateway replay`).")
    parked.add_metric([], float(backlog.parked_submissions))
    parked_rows = GaugeMetricFamily(
        "gateway_outbox_parked_rows", "Outbox rows parked: not retried any more (alarm: "
        "`gateway replay`).")
    parked_rows.add_metric([], float(backlog.parked_outbox_rows))
    for_ops = GaugeMetricFamily(
        "gateway_messages_waiting_for_ops", "Messages held (a hold rule, a failed licence "
        "check) or unroutable (no rule matched): the console's Attention page releases and "
        "replays them.", labels=["status"])
    for_ops.add_metric(["held"], float(backlog.held_messages))
    for_ops.add_metric(["unroutable"], float(backlog.unroutable_messages))
    return [*families, depth, age, undecided, lag, parked, parked_rows, for_ops]


class _Fixed(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def render(directory: Path | None, families: list[Metric]) -> bytes:
    """The text exposition: the processes' counters (``directory``: their files; None when
    counting is off) and ``families``.  Reads files: run it off the event loop."""
    registry = CollectorRegistry(auto_describe=False)
    if directory is not None:
        MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    registry.register(_Fixed(families))
    return generate_latest(registry)
