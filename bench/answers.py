"""Signed answers per second (render, sign, store) beside bare CMS signing.

    .venv/bin/python bench/answers.py [--seconds 3] [--rounds 3] [--database-url URL]
                                      [--batch 50] [--workers 4] [--processes 2]

For an RSA-2048 and an ECDSA P-256 signing key, each figure for ``--seconds``, measured in
``--rounds`` turns with the others (so that a busy machine weighs on them alike):
- bare: cryptography's ``PKCS7SignatureBuilder`` signing the same rendered CUSRES again and
  again, with the options the gateway signs with (detached, binary, DER, SHA-256);
- render alone, ``Signer.sign`` alone, and the two together: where an answer's time goes;
- answers as the gateway makes them: an agency's ``CustomsResponse`` rendered as a D96B
  CUSRES (``render_answer``: ``render_interchange`` under a control reference of its own, as
  the answer desk calls it), signed (``Signer.sign``: key choice, CMS, the digests the record
  keeps) and stored in a scratch PostgreSQL database in one transaction per answer: its
  outbox row (``store.outbox.add``, with the properties the answer desk writes) and its
  non-repudiation record (``store.answers.record_signed``).  The signature itself is not
  stored in the database: the mailbox relay writes it as ``NAME.p7s``.  (In the gateway the
  two rows are written by two transactions, the answer desk's and the mailbox relay's; one
  here is the kinder figure.)  With one worker, with ``--workers`` at once (the answer
  consumer takes several answers at a time), and one worker writing ``--batch`` answers per
  transaction.
- the same answers stored by ``store.outbox.add_signed``: each answer's row and record in one
  statement (one round trip instead of three), one answer or ``--batch`` per transaction
  (one statement for the batch), with one worker and with ``--workers`` (while one waits
  for the database, another renders and signs);
- labelled as such, the batched one-statement figure with the work split over
  ``--processes`` processes (0: not measured), each rendering, signing and storing on its own
  connection as the one-process figure does: what a machine with that many cores makes.
  Every other figure is one process, whose Python runs on one core.

Prints each rate and its share of the bare signing rate (issue 10's target for answers: at
least 50%).  The scratch database (``gw_bench_<random>``) is created, migrated and dropped.
Figures only: no pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import multiprocessing
import multiprocessing.process
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from gateway.app.mapping_files import load_compiled
from gateway.model.canonical import Amount, CustomsResponse, Source
from gateway.model.canonical.responses import Answered, Reason
from gateway.model.edifact import PartyId
from gateway.pipeline.mapping.mapping import Mappings
from gateway.pipeline.respond import render_answer
from gateway.security.pki import Issued, KeyType, create_ca, issue_signing_certificate
from gateway.security.signing import Signature, Signer, SigningKey, signing_key
from gateway.store import answers, outbox
from gateway.store.database import upgrade

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
GATEWAY, TRADER = PartyId("SWGATEWAY"), PartyId("DEMOVAN")
KINDS: tuple[KeyType, ...] = ("rsa-2048", "ec-p256")
_OPTIONS = [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary]


def decision() -> CustomsResponse:
    """Customs releasing a declaration, with a reason and a duty: what an agency publishes
    (parsed once, as the answer desk parses it once)."""
    return CustomsResponse(
        source=Source(syntax="canonical", message_type="AgencyDecision", release="1",
                      sender="customs", recipient=TRADER.id, interchange_reference="",
                      message_reference="1"),
        agency="customs", decision="released", agency_reference="TW2600000123",
        answers=Answered(document_reference="DEC-2026-000123",
                         interchange_reference="ICR0001", message_reference="1",
                         correlation_id="swg-1-1-customs"),
        decided_at=dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC),
        reasons=(Reason(code="A1", text="documents in order"),),
        duties=(Amount(qualifier="161", value=Decimal("1250.00"), currency="TWD"),))


DECISION = decision()


def render(mappings: Mappings, number: int) -> bytes:
    """The answer as the answer desk renders it: a D96B CUSRES under a control reference of
    its own (``render_answer``: the CustomsResponse through ``render_interchange``)."""
    return render_answer(DECISION, mappings, release="D96B", gateway=GATEWAY,
                         reply_to=TRADER, syntax_version="3",
                         control_reference=f"A{number:013d}",
                         prepared=dt.datetime.now(dt.UTC))


def certificate(kind: KeyType) -> Issued:
    return issue_signing_certificate(create_ca(f"bench {kind} CA", kind=kind), "bench gateway",
                                     kind=kind)


def signer(issued: Issued) -> Signer:
    return Signer([SigningKey(issued.certificate, issued.private_key)])


#: A figure: given seconds, how many were done in how many seconds.
Figure = Callable[[float], Awaitable[tuple[int, float]]]


def timed(work: Callable[[int], object]) -> Figure:
    """Calls of ``work`` for at least the given seconds."""
    async def measure(seconds: float) -> tuple[int, float]:
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            work(count)
            count += 1
        return count, elapsed
    return measure


def bare(key: SigningKey, body: bytes) -> Figure:
    def sign(_: int) -> bytes:
        return (pkcs7.PKCS7SignatureBuilder().set_data(body)
                .add_signer(key.certificate, key.private_key, hashes.SHA256())
                .sign(serialization.Encoding.DER, _OPTIONS))
    return timed(sign)


@dataclass
class Answers:
    """Answers as the gateway makes them, numbered across workers (each number gives the
    answer a control reference and an outbox dispatch key of its own)."""

    mappings: Mappings
    signer: Signer
    interchange_id: int
    numbers: Iterator[int] = field(default_factory=itertools.count)

    def make(self) -> tuple[int, bytes, Signature]:
        number = next(self.numbers)
        body = render(self.mappings, number)
        return number, body, self.signer.sign(body)

    def row(self, number: int, body: bytes) -> outbox.NewRow:
        """The outbox row of an answer, with the properties the answer desk writes."""
        return outbox.NewRow(
            interchange_id=self.interchange_id, message_id=None, channel="mailbox",
            destination="demo-van", dispatch_key=f"answer-{number}", body=body, properties={
                "file_name": self.name(number), "kind": "CUSRES", "partner": "demo-van",
                "interchange_ref": f"A{number:013d}", "agency": "customs"})

    def name(self, number: int) -> str:
        return f"DEC-2026-000123.{self.interchange_id}.1.customs.{number}.cusres.edi"

    async def store(self, connection: Any, ready: list[tuple[int, bytes, Signature]]) -> None:
        """What the gateway stores for each signed answer (see the module's note), one
        statement at a time: ``outbox.add``, its id, ``answers.record_signed``."""
        for number, body, signature in ready:
            row = self.row(number, body)
            outbox_id = await outbox.add(
                connection, interchange_id=row.interchange_id, message_id=row.message_id,
                channel=row.channel, destination=row.destination,
                dispatch_key=row.dispatch_key, body=row.body, properties=row.properties)
            await answers.record_signed(
                connection, interchange_id=self.interchange_id, message_id=None,
                outbox_id=outbox_id, record=outbox.SignedRecord.of(
                    "CUSRES", self.name(number), signature))

    async def store_at_once(self, connection: Any,
                            ready: list[tuple[int, bytes, Signature]]) -> None:
        """The same rows, all of ``ready`` in one statement (``outbox.add_signed``)."""
        await outbox.add_signed(connection, [
            (self.row(number, body),
             outbox.SignedRecord.of("CUSRES", self.name(number), signature))
            for number, body, signature in ready])


#: How a worker stores the answers of one transaction.
Store = Callable[[Answers, Any, list[tuple[int, bytes, Signature]]], Awaitable[None]]


async def worker(connection: Any, made: Answers, batch: int, deadline: float,
                 store: Store) -> int:
    """Answers made and stored, ``batch`` per transaction, until ``deadline``."""
    count = 0
    while time.perf_counter() < deadline:
        ready = [made.make() for _ in range(batch)]
        async with connection.transaction():
            await store(made, connection, ready)
        count += batch
    return count


def answers_made(connections: list[Any], made: Answers, batch: int,
                 store: Store = Answers.store) -> Figure:
    """Answers made and stored with one worker per connection (the answer consumer takes
    several answers at once: bus/responses.py PREFETCH): their rendering and signing take
    turns on the one core Python gives them, their database round trips overlap."""
    async def measure(seconds: float) -> tuple[int, float]:
        start = time.perf_counter()
        counts = await asyncio.gather(*(worker(c, made, batch, start + seconds, store)
                                        for c in connections))
        return sum(counts), time.perf_counter() - start
    return measure


# --- the same work in other processes ---------------------------------------------------------


@dataclass(frozen=True)
class Share:
    """What another process needs to make and store answers as this one does."""

    database_url: str
    certificate_pem: bytes
    key_pem: bytes
    interchange_id: int
    batch: int


#: Each helper process numbers its answers from its own multiple of this (this process from
#: 1): dispatch keys are unique, and a control reference (A + 13 digits) holds the number.
HELPER_NUMBERS = 10**11


def serve(pipe: Pipe, share: Share, block: int) -> None:
    """A helper process numbering from ``block * HELPER_NUMBERS``: set up (mappings, the
    same signing key, a connection), say so, then for each number of seconds received make
    and store answers that long (one worker, ``share.batch`` per transaction in one
    statement) and send back how many."""
    loop = asyncio.new_event_loop()
    connection = loop.run_until_complete(asyncpg.connect(share.database_url))
    _, mappings = load_compiled(None)
    key = signing_key(share.certificate_pem, share.key_pem)
    made = Answers(mappings, Signer([key]), share.interchange_id,
                   itertools.count(block * HELPER_NUMBERS))
    pipe.send("ready")
    while (seconds := pipe.recv()) is not None:
        pipe.send(loop.run_until_complete(worker(
            connection, made, share.batch, time.perf_counter() + seconds,
            Answers.store_at_once)))
    loop.run_until_complete(connection.close())


class Helpers:
    """Processes making answers at the same time (``serve``), started and set up before any
    figure is measured; numbered from ``first`` (see ``HELPER_NUMBERS``) on."""

    def __init__(self, count: int, share: Share, first: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipes: list[Pipe] = []
        self._processes: list[multiprocessing.process.BaseProcess] = []
        for block in range(first, first + count):
            ours, theirs = context.Pipe()
            process = context.Process(target=serve, args=(theirs, share, block), daemon=True)
            process.start()
            self._pipes.append(ours)
            self._processes.append(process)
        for pipe in self._pipes:
            pipe.recv()

    def figure(self) -> Figure:
        async def measure(seconds: float) -> tuple[int, float]:
            return await asyncio.to_thread(self._run, seconds)
        return measure

    def _run(self, seconds: float) -> tuple[int, float]:
        start = time.perf_counter()
        for pipe in self._pipes:
            pipe.send(seconds)
        counts: list[int] = [pipe.recv() for pipe in self._pipes]
        return sum(counts), time.perf_counter() - start

    def close(self) -> None:
        for pipe in self._pipes:
            pipe.send(None)
        for process in self._processes:
            process.join(timeout=30)


async def scratch_database(admin_url: str) -> tuple[str, str]:
    name = f"gw_bench_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    await upgrade(url)
    return name, url


async def drop_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def measure(args: argparse.Namespace, mappings: Mappings, url: str) -> None:
    connections = [await asyncpg.connect(url) for _ in range(args.workers)]
    try:
        interchange_id: int = await connections[0].fetchval(
            "INSERT INTO interchanges (partner_id, transport, file_name, raw, sha256, status)"
            " VALUES ('demo-van', 'sftp', 'x.edi', '', '', 'accepted') RETURNING id")
        body = render(mappings, 0)
        print(f"signed answers (render, sign, store), {args.seconds:g} s per figure; "
              f"a D96B CUSRES of {len(body)} bytes")
        numbers = itertools.count(1)
        for index, kind in enumerate(KINDS):
            issued = certificate(kind)
            made = Answers(mappings, signer(issued), interchange_id, numbers)
            share = Share(url, issued.certificate_pem, issued.key_pem, interchange_id,
                          args.batch)
            helpers = Helpers(args.processes, share, 1 + index * args.processes) \
                if args.processes else None
            try:
                await report(kind, made, body, connections, args, helpers)
            finally:
                if helpers is not None:
                    helpers.close()
    finally:
        for connection in connections:
            await connection.close()


async def report(kind: KeyType, made: Answers, body: bytes, connections: list[Any],
                 args: argparse.Namespace, helpers: Helpers | None) -> None:
    """Every figure in turn, ``--rounds`` times, so that the machine's other work weighs on
    each alike; each rate is its total count over its total time."""
    one, batch = connections[:1], args.batch
    figures: dict[str, Figure] = {
        "bare PKCS7SignatureBuilder": bare(made.signer.keys[0], body),
        "render alone (render_answer)": timed(lambda n: render(made.mappings, n)),
        "Signer.sign alone": timed(lambda n: made.signer.sign(body)),
        "render + sign, nothing stored": timed(lambda n: made.make()),
        "answers, 1 worker, 1 per transaction": answers_made(one, made, 1),
        f"answers, {len(connections)} workers, 1 per transaction each":
            answers_made(connections, made, 1),
        f"answers, 1 worker, {batch} per transaction": answers_made(one, made, batch),
        "answers, 1 worker, 1 per transaction, one statement":
            answers_made(one, made, 1, Answers.store_at_once),
        f"answers, 1 worker, {batch} per transaction, one statement":
            answers_made(one, made, batch, Answers.store_at_once),
        f"answers, {len(connections)} workers, {batch} per transaction each, one statement":
            answers_made(connections, made, batch, Answers.store_at_once),
    }
    if helpers is not None:
        figures[f"{args.processes} PROCESSES: answers, {batch} per transaction, "
                "one statement"] = helpers.figure()
    totals = dict.fromkeys(figures, (0, 0.0))
    for _ in range(args.rounds):
        for name, measure in figures.items():
            count, elapsed = await measure(args.seconds / args.rounds)
            totals[name] = (totals[name][0] + count, totals[name][1] + elapsed)
    rates = {name: count / elapsed for name, (count, elapsed) in totals.items()}
    reference = rates["bare PKCS7SignatureBuilder"]
    print(f"{kind}:")
    for name, value in rates.items():
        print(f"  {name:66s} {value:8.0f}/s  {value / reference:4.0%} of bare")
    if helpers is not None:
        print(f"  (the {args.processes} PROCESSES figure uses {args.processes} cores; every "
              "other figure, the bare one too, is one process)")


async def run(args: argparse.Namespace) -> None:
    _, mappings = load_compiled(None)
    name, url = await scratch_database(args.database_url)
    try:
        await measure(args, mappings, url)
    finally:
        await drop_database(args.database_url, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per figure and key, "
                        "split over the rounds")
    parser.add_argument("--rounds", type=int, default=3, help="each figure measured this "
                        "often in turn with the others")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL,
                        help="a PostgreSQL database to create the scratch database from")
    parser.add_argument("--batch", type=int, default=50, help="answers per transaction in "
                        "the batched figure")
    parser.add_argument("--workers", type=int, default=4, help="answers in flight at once, "
                        "each on its own connection, in the concurrent figure")
    parser.add_argument("--processes", type=int, default=2, help="processes in the figure "
                        "labelled PROCESSES (0: leave it out)")
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
