"""``gateway routes check`` and ``gateway routes explain``: what ops run on a routing table."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TextIO

from gateway.app.validate import run_offline
from gateway.config.load import GatewayConfig, load_routing
from gateway.config.routing import RoutingTable
from gateway.model.canonical import CANONICAL_ADAPTER
from gateway.pipeline.route import explain, route
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
                   partner_id: str | None, out: TextIO) -> int:
    """For each message of a submission: every rule, matched or not and why, and the result.
    Exit status 0 when every message has somewhere to go, 1 otherwise."""
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
        for verdict in explain(table, message.canonical, partner.id):
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
    gained: dict[str, list[str]] = defaultdict(list)
    lost: dict[str, list[str]] = defaultdict(list)
    for partner_id, text in stored:
        message = CANONICAL_ADAPTER.validate_json(text)
        before = set(route(old, message, partner_id).agencies)
        after = set(route(new, message, partner_id).agencies)
        reference = message.document_reference or message.source.message_reference
        for agency in sorted(after - before):
            gained[agency].append(reference)
        for agency in sorted(before - after):
            lost[agency].append(reference)
    out.write(f"replayed {len(stored)} messages of the last {days:g} days\n")
    for sign, changes in (("+", gained), ("-", lost)):
        for agency, references in sorted(changes.items()):
            sample = ", ".join(references[:5]) + (" ..." if len(references) > 5 else "")
            count = f"{len(references)} message{'s' if len(references) != 1 else ''}"
            out.write(f"{sign}{agency}: {count} ({sample})\n")
    if not gained and not lost:
        out.write("no agency would receive anything different\n")
        return 0
    return 1
