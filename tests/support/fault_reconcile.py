"""The fault audit's bookkeeping, pure: what the client, the agencies' consumers and the
partners' outboxes saw, reconciled into one row of the table (tests/support/fault_audit.py
runs the load and the fault and collects the observations).

DESIGN rules 1-3 from outside: an upload whose close returned reaches each agency its route
names under exactly one message_id and no other agency, and has exactly one answer, a CONTRL
acknowledging it (ISO 9735-6 UCI action 7); an upload fails at the client only during a fault.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

#: The agencies of the demo configuration (tests.support.harness.DEMO_AGENCIES).
AGENCIES = ("customs", "quarantine", "port", "trade", "bank", "tax")
#: Every declaration reaches it: the agency recovery is measured at.
EVERY_DECLARATION = "customs"
_UCI = re.compile(rb"UCI\+(?P<ref>[^+']*)\+[^+']*\+[^+']*\+(?P<action>[0-9])")


@dataclass
class Upload:
    """One upload as the client saw it; times are seconds since the load started."""

    name: str
    partner: str
    reference: str
    agencies: frozenset[str]
    due: float
    started: float | None = None
    ended: float | None = None
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return self.ended is not None and self.error is None


@dataclass
class Delivery:
    """One delivery our consumer took off an agency queue (``acked``: not by the consumer
    killed while it held it)."""

    agency: str
    message_id: str
    reference: str
    body_reference: str
    redelivered: bool
    at: float
    acked: bool


@dataclass
class Window:
    """When a fault lasted: from the cut or kill to the link or process being back."""

    start: float
    end: float


@dataclass
class AuditRow:
    fault: str
    rate: float
    seconds: float
    offered: int
    #: Uploads started and not yet closed when the fault began.
    in_flight: int
    accepted: int
    failed_in_fault: int
    failed_outside_fault: int
    #: Distinct uploads each agency received (and acked).
    delivered: dict[str, int]
    #: Receipts of one message_id beyond its first (broker redeliveries: allowed).
    extra_copies: int
    lost: int
    doubled: int
    unanswered: int
    misrouted: int
    #: Deliveries naming no upload of this run, or whose body and header disagree.
    strange: int
    #: Uploads that failed at the client but were routed all the same (the close reply lost).
    failed_but_routed: int
    #: Deliveries the killed consumer held unacknowledged when it died (consumer_killed).
    held_at_kill: int
    window: Window
    recover_s: float | None
    #: Seconds from the fault's end until the backlog due by then was delivered.
    drained_s: float | None
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.doubled or self.unanswered or self.failed_outside_fault
                    or self.misrouted or self.strange)


def reconcile(fault: str, rate: float, seconds: float, uploads: list[Upload],
              deliveries: list[Delivery], answers: dict[str, list[bytes]], window: Window,
              grace: float, in_flight: int, held: int) -> AuditRow:
    """The row, from what the client, the agencies and the partners' outboxes saw."""
    by_reference = {u.reference: u for u in uploads}
    ids: dict[tuple[str, str], set[str]] = defaultdict(set)  # (agency, reference) -> ids
    copies = Counter((d.agency, d.message_id) for d in deliveries)
    strange = 0
    for d in deliveries:
        if d.reference not in by_reference or d.body_reference != d.reference:
            strange += 1
        elif d.acked:
            ids[(d.agency, d.reference)].add(d.message_id)
    problems: list[str] = []
    lost = doubled = unanswered = misrouted = failed_in = failed_out = failed_routed = 0
    for u in uploads:
        reached = {a for a in AGENCIES if (a, u.reference) in ids}
        answered = answers.get(u.name, [])
        if len(answered) > 1 or any(len(ids[(a, u.reference)]) > 1 for a in reached):
            doubled += 1
            problems.append(f"doubled: {u.name} ({u.reference}): {len(answered)} answers, "
                            f"ids {sorted(i for a in reached for i in ids[(a, u.reference)])}")
        if reached - u.agencies:
            misrouted += 1
            problems.append(f"misrouted: {u.name} reached {sorted(reached - u.agencies)}")
        if u.accepted:
            if u.agencies - reached:
                lost += 1
                problems.append(f"lost: {u.name} ({u.reference}) closed OK at {u.ended:.2f}s, "
                                f"never reached {sorted(u.agencies - reached)}")
            if not answered:
                unanswered += 1
                problems.append(f"unanswered: {u.name} closed OK at {u.ended:.2f}s")
            for body in answered:
                problems += _answer_problems(u, body)
            continue
        failed_routed += bool(reached)
        assert u.ended is not None
        if window.start <= u.ended <= window.end + grace:
            failed_in += 1
        else:
            failed_out += 1
            problems.append(f"failed outside the fault ({window.start:.2f}-{window.end:.2f}s):"
                            f" {u.name} at {u.ended:.2f}s: {u.error}")
    delivered = {a: sum(1 for agency, _ in ids if agency == a) for a in AGENCIES}
    return AuditRow(
        fault=fault, rate=rate, seconds=seconds, offered=len(uploads), in_flight=in_flight,
        accepted=sum(u.accepted for u in uploads), failed_in_fault=failed_in,
        failed_outside_fault=failed_out, delivered={a: n for a, n in delivered.items() if n},
        extra_copies=sum(n - 1 for n in copies.values()), lost=lost, doubled=doubled,
        unanswered=unanswered, misrouted=misrouted, strange=strange,
        failed_but_routed=failed_routed, held_at_kill=held, window=window,
        recover_s=recovery(uploads, deliveries, window),
        drained_s=drained(uploads, deliveries, window), problems=problems)


def _answer_problems(upload: Upload, body: bytes) -> list[str]:
    """An accepted upload's answer must acknowledge its interchange (ISO 9735-6 UCI, action 7:
    acknowledged)."""
    match = _UCI.search(body)
    if match is None or match["ref"].decode() != upload.reference or match["action"] != b"7":
        return [f"answer to {upload.name} does not acknowledge {upload.reference}: "
                f"{body[:200]!r}"]
    return []


def _first_at(deliveries: list[Delivery], agency: str) -> dict[str, float]:
    """When each upload first reached ``agency`` (acked)."""
    first: dict[str, float] = {}
    for d in sorted(deliveries, key=lambda d: d.at):
        if d.agency == agency and d.acked:
            first.setdefault(d.reference, d.at)
    return first


def drained(uploads: list[Upload], deliveries: list[Delivery], window: Window,
            agency: str = EVERY_DECLARATION) -> float | None:
    """Seconds from the fault's end until every accepted upload due by then had reached
    ``agency``, even after the load ended (None: one never did)."""
    first = _first_at(deliveries, agency)
    due = [u for u in uploads if u.accepted and agency in u.agencies and u.due <= window.end]
    if any(u.reference not in first for u in due):
        return None
    return max((first[u.reference] for u in due), default=window.end) - window.end


def recovery(uploads: list[Upload], deliveries: list[Delivery], window: Window,
             agency: str = EVERY_DECLARATION) -> float | None:
    """Seconds from the fault's end until the gateway keeps up with the offer again: every
    accepted upload due by then has reached ``agency`` (every declaration goes there), and
    from then on each one reaches it about as soon after it was due as before the fault
    (within 3 times the median before it, at least 1 s).  Counted from when an upload was due,
    not when its close returned, so uploads that waited at the client for the gateway count
    too.  None when that never happened while the load lasted."""
    first = _first_at(deliveries, agency)
    accepted = [u for u in uploads if u.accepted and agency in u.agencies]
    backlog = drained(uploads, deliveries, window, agency)
    if not accepted or backlog is None or any(u.reference not in first for u in accepted):
        return None
    late = {u.reference: first[u.reference] - u.due for u in accepted}
    before = sorted(late[u.reference] for u in accepted if u.due < window.start)
    # The median: the last ones due before the fault may be held up by it too.
    limit = max(1.0, 3 * before[len(before) // 2] if before else 1.0)
    slow = [u.due for u in accepted if u.due > window.end and late[u.reference] > limit]
    if slow and max(slow) >= accepted[-1].due:
        return None  # still behind at the end of the load
    return max(backlog, max(slow, default=window.end) - window.end)


# --- The table ---------------------------------------------------------------------------


COLUMNS = ("fault", "rate/s", "in flight", "accepted", "failed in/out", "delivered per agency",
           "extra copies", "lost", "doubled", "unanswered", "recover s")


def format_table(rows: list[AuditRow]) -> str:
    """A Markdown table, one row per run, and the first problems of each run under it."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        delivered = ", ".join(f"{a} {n}" for a, n in r.delivered.items())
        in_flight = f"{r.in_flight}" + (f" (+{r.held_at_kill} unacked)" if r.held_at_kill
                                        else "")
        recover = f"{r.recover_s:.1f}" if r.recover_s is not None else "not in load" + (
            f" (backlog drained {r.drained_s:.1f})" if r.drained_s is not None else "")
        cells = (r.fault, f"{r.rate:g}", in_flight, f"{r.accepted}/{r.offered}",
                 f"{r.failed_in_fault}/{r.failed_outside_fault}", delivered,
                 str(r.extra_copies), str(r.lost), str(r.doubled), str(r.unanswered), recover)
        lines.append("| " + " | ".join(cells) + " |")
    for r in rows:
        extras = [f"misrouted {r.misrouted}"] * bool(r.misrouted) + [
            f"strange deliveries {r.strange}"] * bool(r.strange) + [
            f"failed at the client but routed {r.failed_but_routed}"] * bool(
            r.failed_but_routed)
        if extras or r.problems:
            lines.append(f"\n{r.fault} (fault {r.window.start:.2f}-{r.window.end:.2f}s): "
                         + "; ".join(extras))
            lines += [f"  {p}" for p in r.problems[:10]]
            if len(r.problems) > 10:
                lines.append(f"  ... and {len(r.problems) - 10} more")
    return "\n".join(lines)
