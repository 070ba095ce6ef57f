"""``gateway routes check`` and ``gateway routes explain``: what ops run on a routing table."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from gateway.app.validate import run_offline
from gateway.config.load import GatewayConfig, load_routing
from gateway.config.routing import RoutingTable
from gateway.pipeline.route import explain, route_on_state
from gateway.pipeline.routing_diff import replay, summary
from gateway.store.database import create_pool
from gateway.store.interchanges import recent_canonical


def check_routes(config: GatewayConfig, path: Path | None, out: TextIO) -> RoutingTable:
    """Load a routing table strictly against the configured agencies (ConfigError when not)."""
    table = load_routing(path, config.agency_codes) if path else config.routing
    where = (path or config.source.parent / config.settings.routing).resolve()
    agencies = sorted({a for rule in table.rules for a in rule.deliver})
    out.write(f"{where}: {len(table.rules)} rules, delivering to {', '.join(agencies)}: ok\n")
    return table


def explain_routes(config: GatewayConfig, submission: Path, table_path: Path | None,
                   partner_id: str | None, out: TextIO, state: str | None = None) -> int:
    """For each message of a submission: every rule, matched or not and why, and the result.
    Exit status 0 when every message has somewhere to go, 1 otherwise.  ``state``: the rules
    on a declaration's state judged as when its clearance becomes that (and where it then
    goes on to)."""
    table = load_routing(table_path, config.agency_codes) if table_path else config.routing
    outcome, partner = run_offline(config, submission, partner_id, table)
    routable = True
    if not outcome.messages:
        out.write(f"nothing to route: {outcome.summary}\n")
        return 1
    for message in outcome.messages:
        out.write(f"message {message.reference} {message.identifier.type}: ")
        if message.canonical is None:
            out.write("rejected before routing: "
                      + "; ".join(f.describe() for f in message.findings) + "\n")
            routable = False
            continue
        out.write(f"{message.canonical.kind} {message.canonical.document_reference}\n")
        for verdict in explain(table, message.canonical, partner.id, state=state):
            head = "MATCH   " if verdict.matched else "no match"
            action = ", ".join(verdict.deliver) + (
                f" (copy: {', '.join(verdict.copy_to)})" if verdict.copy_to else "") + (
                " [hold]" if verdict.hold else "")
            out.write(f"  {head} {verdict.rule} -> {action.strip()}\n")
            for condition in verdict.conditions:
                out.write(f"      {condition}\n")
        destination = ", ".join(message.agencies) + (
            f" (copies: {', '.join(message.copies)})" if message.copies else "")
        if message.held_by:
            destination = f"held for ops by {', '.join(message.held_by)}, then {destination}"
        out.write(f"  => {destination.strip() or 'nobody: it would be parked as unroutable'}\n")
        if state is not None:
            later = route_on_state(table, message.canonical, partner.id, state)
            goes_on = ", ".join(later.agencies) + (
                f" (copies: {', '.join(later.copies)})" if later.copies else "")
            out.write(f"  => once {state}: {goes_on.strip() or 'nobody more'}\n")
        routable = routable and bool(message.agencies or message.copies)
    return 0 if routable else 1


async def diff_routes(config: GatewayConfig, old_path: Path, new_path: Path, days: float,
                      limit: int, out: TextIO) -> int:
    """Replay the messages of the last ``days`` through two tables and print, agency by
    agency, which messages one would deliver and the other would not.  Exit status 0 when
    nothing changes, 1 otherwise (like diff)."""
    old = load_routing(old_path, config.agency_codes)
    new = load_routing(new_path, config.agency_codes)
    pool = await create_pool(config.database_url, size=1)
    try:
        async with pool.acquire() as connection:
            stored = await recent_canonical(connection, days, limit)
    finally:
        await pool.close()
    diff = replay(old, new, stored)
    out.write(f"replayed {diff.replayed} messages of the last {days:g} days\n")
    for sign, changes in (("+", diff.gained), ("-", diff.lost)):
        for agency, references in changes.items():
            out.write(f"{sign}{agency}: {summary(references)}\n")
    if not diff.changes:
        out.write("no agency would receive anything different\n")
        return 0
    return 1
