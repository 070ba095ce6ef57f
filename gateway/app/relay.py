"""Relays drain the outbox: each pending row is handed to its channel's dispatcher (AMQP
publisher, mailbox writer) and marked dispatched in the same transaction that locked it.

A failure is ours (rule 4) and never holds back the others (rule 6).  The dispatcher says whom
it is about (store.outbox.Scope):
- the row itself: retried with backoff while the rest of the batch goes on, and parked with
  an alarm after MAX_ROW_FAILURES (at once when it can never go as it is);
- its destination: that destination waits with backoff, the others go on;
- the whole channel (broker unreachable, disk full): the batch stops and the relay pauses.
Rows to one destination go out in id order (store.outbox.claim_pending): a row waiting for its
retry holds back the later rows of its own destination only, so an agency never receives a
cancellation before the declaration it cancels."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from time import monotonic, time
from typing import Any, Protocol, TypeVar, runtime_checkable

from gateway import alarms
from gateway.app.workers import poll_forever
from gateway.console import metrics
from gateway.errors import ConfigError, StoreError, TransportError
from gateway.logs import event
from gateway.model.outcome import ACK_SUFFIXES
from gateway.security.signing import Signature, Signer
from gateway.store import answers, mailbox_files, outbox
from gateway.store import interchanges as store
from gateway.store.database import translated_errors
from gateway.store.outbox import Failure, OutboxRow, Scope
from gateway.transports.mailbox import (
    SIGNATURE_SUFFIX,
    answer_name,
    delivery_refusal,
    name_refusal,
)

log = logging.getLogger("gateway.relay")
BATCH = 200
IDLE_POLL_SECONDS = 1.0
MAX_RETRY_DELAY_SECONDS = 60.0
#: Failures of a row itself before it is parked (with the backoff, about three minutes).
MAX_ROW_FAILURES = 8
#: Longest pause of a relay whose whole channel fails (the broker down, the disk full).
MAX_PAUSE_SECONDS = 30.0
#: An outbox write that has not returned by then counts as a failure of the disk.
WRITE_TIMEOUT_SECONDS = 60.0

T = TypeVar("T")


class Dispatcher(Protocol):
    #: The event recorded once a row is dispatched ("delivered", "acknowledged").
    done_event: str

    async def dispatch(self, row: OutboxRow) -> Failure | None:
        """None once the row is delivered; otherwise why not, and whom that is about."""


class _NotTried:
    """A row of a batch left for a later turn (its destination or channel failed first)."""


NOT_TRIED = _NotTried()
#: What became of one row of a batch: sent (None), failed, or not tried.
Attempt = Failure | None | _NotTried


@runtime_checkable
class BatchDispatcher(Dispatcher, Protocol):
    async def dispatch_many(self, rows: list[OutboxRow]) -> Sequence[Attempt]:
        """The outcome of each row, in order, with the rows sent at once (one destination's
        rows still reach it in id order).  After a failure of the channel, or of a
        destination, the later rows concerned may be NOT_TRIED."""


#: Writes files into partners' outboxes (transports.mailbox.Mailboxes.deliver_many).
DeliverMany = Callable[[Sequence[tuple[str, str, bytes]]], list[Path | TransportError]]

#: What else is recorded, in the transaction that marks rows dispatched, and told in each
#: one's "done" event (the mailbox relay's non-repudiation records): one dict per row.
OnDone = Callable[[Any, list[OutboxRow]], Awaitable[list[dict[str, Any]]]]


class Relay:
    def __init__(self, pool: Any, channel: str, dispatcher: Dispatcher,
                 wake: asyncio.Event, on_done: OnDone | None = None) -> None:
        self._pool = pool
        self._channel = channel
        self._dispatcher = dispatcher
        self._wake = wake
        self._on_done = on_done
        self._channel_failures = 0
        self._paused_until = 0.0

    async def run(self) -> None:
        async def step() -> bool:
            return await self.dispatch_batch() > 0

        await poll_forever(f"{self._channel}-relay", step, self._wake, IDLE_POLL_SECONDS)

    async def dispatch_batch(self) -> int:
        """Dispatch what is due; returns how many rows were tried (sent, failed or parked)."""
        if monotonic() < self._paused_until:
            return 0  # the channel failed a moment ago: give it time
        async with translated_errors(f"{self._channel} relay"), \
                self._pool.acquire() as connection, connection.transaction():
            rows = await outbox.claim_pending(connection, self._channel, BATCH)
            return await self._batch(connection, rows)

    async def _batch(self, connection: Any, rows: list[OutboxRow]) -> int:
        """Send the rows, then settle each in id order: a destination stops at its first
        failure (its later rows wait, in order), the channel at a failure of the whole
        channel.  Returns how many rows were tried."""
        results = await self._attempt_all(rows)
        done: list[OutboxRow] = []
        waiting: dict[str, list[int]] = {}  # why -> the rows that wait for it, untried
        stopped: dict[str, str] = {}  # destination -> why its later rows wait
        channel_down: str | None = None
        for row, result in zip(rows, results, strict=True):
            if result is None:
                done.append(row)  # sent: recorded even behind a failed row (it is out)
                continue
            reason = channel_down or stopped.get(row.destination)
            if reason is not None or result is NOT_TRIED:
                waiting.setdefault(reason or "not tried", []).append(row.id)
                continue
            assert isinstance(result, Failure)
            await self._failed(connection, row, result)
            if result.scope is Scope.CHANNEL:
                channel_down = f"not tried: {result.error}"
            elif result.scope is not Scope.UNDELIVERABLE:  # parked: holds back no one
                stopped[row.destination] = f"waiting behind row {row.id}: {result.error}"
        await self._done_all(connection, done)
        for reason, row_ids in waiting.items():
            await outbox.note_waiting(connection, row_ids, reason)
        return sum(result is not NOT_TRIED for result in results)

    async def _attempt_all(self, rows: list[OutboxRow]) -> list[Attempt]:
        """Each row's outcome.  A dispatcher that sends many at once (``dispatch_many``:
        publishes with their confirms in flight together) gets the whole batch; another gets
        one row at a time, and a destination's later rows are not tried after its failure,
        nor anything after a failure of the channel."""
        if isinstance(self._dispatcher, BatchDispatcher):
            try:
                return list(await self._dispatcher.dispatch_many(rows))
            except Exception as exc:  # noqa: BLE001 - a bug of ours: each row retried, parked
                event(log, "dispatch_crashed", level=logging.ERROR, exc_info=exc,
                      channel=self._channel, rows=len(rows))
                return [Failure(Scope.ROW, repr(exc))] * len(rows)
        results: list[Attempt] = []
        stopped: set[str] = set()
        for row in rows:
            if row.destination in stopped:
                results.append(NOT_TRIED)
                continue
            failure = await self._attempt(row)
            results.append(failure)
            if failure is not None and failure.scope is Scope.CHANNEL:
                results += [NOT_TRIED] * (len(rows) - len(results))
                break
            if failure is not None and failure.scope is not Scope.UNDELIVERABLE:
                stopped.add(row.destination)
        return results

    async def _attempt(self, row: OutboxRow) -> Failure | None:
        try:
            return await self._dispatcher.dispatch(row)
        except Exception as exc:  # noqa: BLE001 - a bug of ours about this row: retry, park
            event(log, "dispatch_crashed", level=logging.ERROR, exc_info=exc,
                  channel=self._channel, destination=row.destination, key=row.dispatch_key)
            return Failure(Scope.ROW, repr(exc))

    async def _settle(self, connection: Any, row: OutboxRow, failure: Failure | None) -> None:
        if failure is None:
            await self._done_all(connection, [row])
        else:
            await self._failed(connection, row, failure)

    async def _done_all(self, connection: Any, rows: list[OutboxRow]) -> None:
        """Record rows sent: marked dispatched and their events written in a few statements
        for the whole batch, not a round trip per row."""
        if not rows:
            return
        self._channel_failures, self._paused_until = 0, 0.0
        await outbox.mark_dispatched(connection, [row.id for row in rows])
        events: list[store.NewEvent] = []
        extras = [{}] * len(rows) if self._on_done is None else \
            await self._on_done(connection, rows)
        for row, extra in zip(rows, extras, strict=True):
            events.append(store.NewEvent(
                row.interchange_id, self._dispatcher.done_event,
                {"channel": self._channel, "destination": row.destination,
                 "key": row.dispatch_key, **extra}, row.message_id))
            headers = row.properties.get("headers", row.properties)
            event(log, self._dispatcher.done_event, channel=self._channel,
                  destination=row.destination, partner=headers.get("partner"),
                  interchange=headers.get("interchange_ref"), submission=row.interchange_id,
                  key=row.dispatch_key, attempts=row.attempts + 1)
        await store.add_events(connection, events)
        self._count_sent(rows)

    def _count_sent(self, rows: list[OutboxRow]) -> None:
        """Sent rows, and the answers among them: the time since their submission arrived
        (the processor put it in the row: processor._answer)."""
        metrics.record_dispatched(self._channel, len(rows))
        now = time()
        for row in rows:
            received = row.properties.get("received_at")
            if isinstance(received, int | float):
                metrics.record_answer_latency(self._channel, str(row.properties.get("kind")),
                                              now - received)

    async def _failed(self, connection: Any, row: OutboxRow, failure: Failure) -> None:
        metrics.record_dispatch_failure(self._channel, failure.scope.value)
        own = failure.scope in (Scope.ROW, Scope.UNDELIVERABLE)
        if own and (failure.scope is Scope.UNDELIVERABLE
                    or row.row_failures + 1 >= MAX_ROW_FAILURES):
            await self._park(connection, row, failure)
            return
        delay = 0.0 if failure.scope is Scope.CHANNEL else min(
            MAX_RETRY_DELAY_SECONDS, 2.0 ** min(row.attempts + 1, 6))
        if failure.scope is Scope.CHANNEL:
            self._pause()
        await outbox.mark_failed(connection, row.id, failure.error, delay, own=own)
        if row.attempts == 0:  # its history says once that it is being retried
            await store.add_event(connection, row.interchange_id, "dispatch_failed",
                                  self._detail(row, failure), row.message_id)
        event(log, "dispatch_failed", level=logging.ERROR, **self._detail(row, failure),
              submission=row.interchange_id, attempts=row.attempts + 1, retry_in=delay)

    async def _park(self, connection: Any, row: OutboxRow, failure: Failure) -> None:
        await outbox.park(connection, row.id, failure.error)
        metrics.record_dispatch_parked(self._channel)
        detail = {**self._detail(row, failure), "attempts": row.attempts + 1,
                  "note": "alarm: not retried any more; ops must look, and "
                          f"`gateway replay {row.interchange_id}` sends it again"}
        await store.add_event(connection, row.interchange_id, "dispatch_parked", detail,
                              row.message_id)
        event(log, "dispatch_parked", level=logging.ERROR, code=alarms.DISPATCH_PARKED, **detail,
              submission=row.interchange_id)

    def _detail(self, row: OutboxRow, failure: Failure) -> dict[str, Any]:
        return {"channel": self._channel, "destination": row.destination,
                "key": row.dispatch_key, "scope": failure.scope.value, "error": failure.error}

    def _pause(self) -> None:
        self._channel_failures += 1
        pause = min(MAX_PAUSE_SECONDS, 2.0 ** (self._channel_failures - 1))
        self._paused_until = monotonic() + pause


class LeasingRelay(Relay):
    """A relay for a channel whose sends wait on partners' servers (AS2 over HTTP).  Each
    destination's next row is leased (committed: due again only after ``lease_seconds``) and
    sent in a task of its own, outside any transaction; its outcome is written in a short
    transaction of its own.  A server that hangs holds back its own rows only (rule 6), and
    no database connection is held while it hangs.  A lease that runs out (the gateway died
    mid-send) makes the row due again: it is sent again, as the same message (AS2: the same
    Message-ID, which the partner's duplicate check answers with its first MDN)."""

    def __init__(self, pool: Any, channel: str, dispatcher: Dispatcher,
                 wake: asyncio.Event, on_done: OnDone | None = None, *,
                 lease_seconds: float, max_in_flight: int = 32) -> None:
        super().__init__(pool, channel, dispatcher, wake, on_done)
        self._lease = lease_seconds
        self._room = max_in_flight
        self._sending: dict[str, asyncio.Task[None]] = {}  # destination -> its send
        self._flying: set[int] = set()  # the ids of the rows being sent

    async def run(self) -> None:
        try:
            await super().run()
        finally:  # stopping: what is in flight is sent again after its lease
            for task in self._sending.values():
                task.cancel()

    async def dispatch_batch(self) -> int:
        if monotonic() < self._paused_until:
            return 0
        async with translated_errors(f"{self._channel} relay"), \
                self._pool.acquire() as connection, connection.transaction():
            chosen: dict[str, OutboxRow] = {}
            renew: list[int] = []  # rows still in flight whose lease ran out: ours still
            for row in await outbox.claim_pending(connection, self._channel, BATCH):
                if row.id in self._flying:
                    renew.append(row.id)
                elif row.destination not in chosen and row.destination not in self._sending:
                    chosen[row.destination] = row  # its first row; the later ones wait
            rows = list(chosen.values())[:max(0, self._room - len(self._sending))]
            # A renewed lease keeps the row's later rows out of the next claims again (they
            # would fill it and starve the other destinations) and other relays off it.
            await outbox.lease(connection, [r.id for r in rows] + renew, self._lease)
        for row in rows:
            self._flying.add(row.id)
            self._sending[row.destination] = asyncio.create_task(self._send(row))
        return len(rows)

    async def _send(self, row: OutboxRow) -> None:
        try:
            failure = await self._attempt(row)
            async with translated_errors(f"{self._channel} relay"), \
                    self._pool.acquire() as connection, connection.transaction():
                if await outbox.still_leased(connection, row):
                    await self._settle(connection, row, failure)
        except StoreError as exc:  # ours: its lease runs out and it is sent again
            event(log, "store_unavailable", level=logging.ERROR, worker=f"{self._channel}-relay",
                  error=str(exc), destination=row.destination, key=row.dispatch_key)
        except Exception as exc:  # noqa: BLE001 - a bug settling it; no one awaits this task
            event(log, "settle_crashed", level=logging.ERROR, exc_info=exc,
                  channel=self._channel, destination=row.destination, key=row.dispatch_key)
        finally:
            self._flying.discard(row.id)
            self._sending.pop(row.destination, None)
            self._wake.set()  # the destination's next row may go


class MailboxDispatcher:
    """Writes answers into partners' outboxes, each signed.  The signature is made as the
    answer is written, with the key current then (security.signing), and recorded when the row
    is marked dispatched.  Where the files go (``sftp.mailbox_store``):

    - ``deliver_many`` given (disk): into the partner's outbox folder, the detached signature
      ``NAME.p7s`` written (durably) before ``NAME`` appears, so no partner ever sees an
      answer without its signature;
    - ``deliver_many`` None (database): ``NAME`` and ``NAME.p7s`` inserted into mailbox_files
      by ``record``, in the transaction that marks the rows dispatched: both or neither, once
      (a row whose transaction failed is tried again and inserts them then; one sent again by
      ``gateway replay`` takes the place of the file of its name, store.mailbox_files)."""

    done_event = "acknowledged"

    def __init__(self, deliver_many: DeliverMany | None, signer: Signer) -> None:
        self._deliver_many = deliver_many
        self._signer = signer
        self._writing: asyncio.Future[list[Signature | Failure]] | None = None
        #: The signatures of the batch just written, until they are recorded (row id ->
        #: signature); a new batch replaces them, so failed rows' never pile up.
        self._signed: dict[int, Signature] = {}

    async def dispatch(self, row: OutboxRow) -> Failure | None:
        (outcome,) = await self.dispatch_many([row])
        return outcome

    async def dispatch_many(self, rows: list[OutboxRow]) -> list[Failure | None]:
        """Sign and write the whole batch in one thread: every signature first, then every
        answer, with one folder fsync per partner for each (``Mailboxes.deliver_many``)."""
        if self._writing is not None and not self._writing.done():
            return [Failure(Scope.CHANNEL, "the previous outbox write has not returned "
                                           "(the disk hangs?)")] * len(rows)
        self._signed = {}
        self._writing = _in_daemon_thread(self._write_signed, rows)
        self._writing.add_done_callback(_retrieved)
        try:
            async with asyncio.timeout(WRITE_TIMEOUT_SECONDS):
                outcomes = await asyncio.shield(self._writing)
        except TimeoutError:
            return [Failure(Scope.CHANNEL, "an outbox write took over "
                                           f"{WRITE_TIMEOUT_SECONDS}s")] * len(rows)
        except ConfigError as exc:  # no certificate valid now: every answer waits alike
            return [Failure(Scope.CHANNEL, str(exc))] * len(rows)
        results: list[Failure | None] = []
        for row, outcome in zip(rows, outcomes, strict=True):
            if isinstance(outcome, Failure):
                results.append(outcome)
            else:
                self._signed[row.id] = outcome
                results.append(None)
        return results

    def _write_signed(self, rows: list[OutboxRow]) -> list[Signature | Failure]:
        """Each row's signature, or why it was not written.  ``NAME.p7s`` is durable before
        ``NAME`` appears: the signatures' folders are synced before any answer is written.
        In the database, nothing is written here: ``record`` inserts them."""
        signatures = [self._signer.sign(row.body) for row in rows]
        outcomes: list[Signature | Failure] = list(signatures)
        if self._deliver_many is None:  # refused as on disk: the row is parked, not the batch
            for index, row in enumerate(rows):
                refusal = delivery_refusal(row.destination,
                                           f"{file_name(row)}{SIGNATURE_SUFFIX}")
                if refusal is not None:
                    outcomes[index] = Failure(Scope.UNDELIVERABLE, refusal)
            return outcomes
        written = self._deliver_many([
            (row.destination, f"{file_name(row)}{SIGNATURE_SUFFIX}", signature.der)
            for row, signature in zip(rows, signatures, strict=True)])
        signed = [i for i, w in enumerate(written) if not isinstance(w, TransportError)]
        for index, failed in enumerate(written):
            if isinstance(failed, TransportError):
                outcomes[index] = Failure(mailbox_scope(failed), str(failed))
        answers = self._deliver_many([(rows[i].destination, file_name(rows[i]), rows[i].body)
                                      for i in signed])
        for index, failed in zip(signed, answers, strict=True):
            if isinstance(failed, TransportError):
                outcomes[index] = Failure(mailbox_scope(failed), str(failed))
        return outcomes

    async def record(self, connection: Any, rows: list[OutboxRow]) -> list[dict[str, Any]]:
        """The non-repudiation records of rows just written (relay ``on_done``)."""
        signed = [(row, self._signed.pop(row.id)) for row in rows]
        if self._deliver_many is None:
            await mailbox_files.put_many(connection, [
                file for row, signature in signed for file in (
                    (row.destination, f"{file_name(row)}{SIGNATURE_SUFFIX}", signature.der),
                    (row.destination, file_name(row), row.body))])
        await answers.record_signed_many(connection, [
            (row.interchange_id, row.message_id, row.id, outbox.SignedRecord.of(
                row.properties.get("kind", ""), file_name(row), signature))
            for row, signature in signed])
        return [{"file_name": file_name(row), "answer_sha256": signature.content_digest,
                 "signature_sha256": signature.signature_digest} for row, signature in signed]


def file_name(row: OutboxRow) -> str:
    """The answer's file name; a row written before names were made safe (a 240-byte upload
    name, a control character) gets the name ``answer_name`` gives it now, instead of failing
    for ever."""
    name: str = row.properties["file_name"]
    if name_refusal(name) is None and name_refusal(f"{name}{SIGNATURE_SUFFIX}") is None:
        return name
    suffix = ACK_SUFFIXES.get(row.properties.get("kind", ""), "answer")
    tail = f".{row.interchange_id}.{suffix}"
    return answer_name(name.removesuffix(tail), row.interchange_id, suffix)


#: What an outbox write failing with these errors is about (errno(3)).
_ERRNO_SCOPES: dict[int, Scope] = {
    # the file system or the process: every partner's answers fail alike
    errno.ENOSPC: Scope.CHANNEL, errno.EDQUOT: Scope.CHANNEL, errno.EROFS: Scope.CHANNEL,
    errno.EIO: Scope.CHANNEL, errno.EMFILE: Scope.CHANNEL, errno.ENFILE: Scope.CHANNEL,
    errno.ENOMEM: Scope.CHANNEL,
    # this partner's mailbox
    errno.EACCES: Scope.DESTINATION, errno.EPERM: Scope.DESTINATION,
    errno.ENOTDIR: Scope.DESTINATION, errno.ELOOP: Scope.DESTINATION,
    errno.EISDIR: Scope.DESTINATION,
    # this name: no retry makes it fit
    errno.ENAMETOOLONG: Scope.UNDELIVERABLE, errno.EINVAL: Scope.UNDELIVERABLE,
    errno.EILSEQ: Scope.UNDELIVERABLE,
}


def mailbox_scope(exc: TransportError) -> Scope:
    cause = exc.__cause__
    if not isinstance(cause, OSError):
        return Scope.UNDELIVERABLE  # deliver refused the name itself
    return _ERRNO_SCOPES.get(cause.errno or 0, Scope.ROW)


def _in_daemon_thread(work: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """``work(*args)`` in a thread of its own that never holds up the exit: a write hung on a
    dead disk (an NFS server gone) cannot fill the loop's default executor, which the
    processor needs, nor keep ``asyncio.run`` from returning."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not future.done():
            outcome()

    def run() -> None:
        try:
            result = work(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            error = exc
            _call_soon(loop, settle, lambda: future.set_exception(error))
        else:
            _call_soon(loop, settle, lambda: future.set_result(result))

    threading.Thread(target=run, name="outbox-write", daemon=True).start()
    return future


def _retrieved(future: asyncio.Future[Any]) -> None:
    """A write that outlived its timeout may fail later with nobody awaiting it: its error
    was already reported as the timeout."""
    if not future.cancelled():
        future.exception()


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., None],
               *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop closed while the write hung
        loop.call_soon_threadsafe(callback, *args)
