"""The fault audit at load (issue 13, deliverable 3), at a rate of your choosing.

    .venv/bin/python bench/faults.py [--rate 300] [--seconds 30]
        [--faults amqp_cut,sigkill,db_cut,consumer_killed] [--hold 3] [--keep DIR]
        [--workers 1]

For each fault: a fresh database, topology and ``gateway serve`` process; ``--rate`` CUSDEC
uploads a second over SFTP for ``--seconds``, the fault 40% into the load (a link cut for
``--hold`` seconds, the gateway SIGKILLed and started again, or the customs consumer killed
holding unacked deliveries), then the reconciliation from outside (agency queues, partners'
outboxes).  Prints the table: in flight at the fault, accepted, failed at the client in/outside
the fault, delivered per agency, extra copies (redeliveries of one message_id), lost, doubled,
unanswered, seconds to recover.  Exits 1 when a run lost, doubled or left unanswered anything.

The engine is tests/support/fault_audit.py (``audit``, ``format_table``); tests/faults runs it
at 40/s.  ``--keep DIR`` keeps each run's config and gateway log in DIR/<fault>.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and bench/xml.py would shadow
# the standard library's xml (which xmlschema imports): the checkout takes its place.
sys.path.pop(0)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.fault_audit import FAULTS, AuditRow, audit, format_table


async def run(faults: list[str], rate: float, seconds: float, *, hold: float = 3.0,
              connections: int = 4, per_connection: int = 4, keep: Path | None = None,
              workers: int = 1) -> list[AuditRow]:
    """One audit per fault, one after the other (each with its own gateway)."""
    rows = []
    for fault in faults:
        root = None
        if keep is not None:
            root = keep / fault
            root.mkdir(parents=True, exist_ok=False)
        rows.append(await audit(fault, rate, seconds, hold=hold, connections=connections,
                                per_connection=per_connection, root=root, workers=workers))
        print(format_table(rows[-1:]).splitlines()[2], flush=True)  # progress: its row
    return rows


def _faults(text: str) -> list[str]:
    faults = [f.strip() for f in text.split(",") if f.strip()]
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown fault(s) {unknown}; known: {FAULTS}")
    return faults


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=300.0, help="uploads a second")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the load")
    parser.add_argument("--faults", type=_faults, default=list(FAULTS))
    parser.add_argument("--hold", type=float, default=3.0, help="how long a cut lasts")
    parser.add_argument("--connections", type=int, default=4,
                        help="SSH connections per partner (two partners)")
    parser.add_argument("--per-connection", type=int, default=4,
                        help="uploads at once on one connection")
    parser.add_argument("--keep", type=Path, help="keep configs and gateway logs here")
    parser.add_argument("--workers", type=int, default=1,
                        help="gateway serve --workers: processes deciding and relaying")
    args = parser.parse_args()
    # The consumer killed on purpose makes aiormq log its broken link with a traceback.
    logging.getLogger("aiormq.connection").setLevel(logging.ERROR)
    rows = asyncio.run(run(args.faults, args.rate, args.seconds, hold=args.hold,
                           connections=args.connections, per_connection=args.per_connection,
                           keep=args.keep, workers=args.workers))
    print(f"\nfault audit: {args.rate:g} uploads/s for {args.seconds:g} s, cuts of "
          f"{args.hold:g} s\n")
    print(format_table(rows))
    return 0 if all(r.clean for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
