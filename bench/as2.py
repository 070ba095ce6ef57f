"""AS2 messages received per second over loopback beside bare decrypt, verify and sign (issue 12).

    .venv/bin/python bench/as2.py [--seconds 10] [--concurrency 8] [--warmup 2]
                                  [--rounds 3] [--messages 0] [--profile]

A real gateway (``gateway serve`` in this process: its own scratch PostgreSQL database and
RabbitMQ exchanges and queues, all removed after) with van-a speaking AS2.  Messages: a CUSDEC
D96B of about 3 KB (goods items enough to reach it), each with its own Message-ID, control
reference and declaration number (none is a duplicate), signed SHA-256 by van-a, encrypted
AES-256-CBC to the gateway's certificate, asking for a synchronous signed MDN.  All are built
before anything is timed.

- end to end: ``--concurrency`` clients POST the messages over loopback with aiohttp, from a
  process of their own (so that the gateway's process does only the gateway's work), for
  ``--warmup`` seconds not counted and then ``--seconds``; counted: HTTP 200 answered by a
  ``processed`` MDN.  A sample of MDNs is read back in full (``read_mdn``: signature against
  the gateway's certificate, Original-Message-ID, MIC).  Latency per POST: p50 and p95.
- bare crypto, in this process, in ``--rounds`` turns before and after the end-to-end run (one
  machine's load weighs on both): what the receiver must do per message and nothing more,
  ``decrypt_enveloped`` (RSA key transport + AES-256-CBC) + ``verify_pinned`` (the detached
  signature, SHA-256) + ``build_mdn`` with the gateway's key (the MDN's signature), in one
  thread and in ``--concurrency`` threads (cryptography releases the GIL in its heavy calls;
  the gateway unwraps in a pool of threads).  The ratio uses the faster of the two: the most
  crypto alone gets out of this process on this machine, so the stricter reference.
- where the gateway's time goes: while the measured window runs, the gateway's calls of
  ``read_as2``/``build_mdn`` and, inside them, ``decrypt_enveloped``, ``verify_pinned`` and
  the MDN's CMS signing are timed in the thread that runs them (CPU time, ``thread_time``),
  beside the whole process's CPU time (``process_time``, all threads).  Both shares are
  printed: crypto proper over the process's CPU, and the same estimated from the bare loop's
  CPU per message.  ``--profile``: cProfile of the event loop's thread (the crypto threads
  are not in it) over the window, top functions by own time.

Target (issue 12): end to end at least 50% of the bare crypto rate.  Figures, not assertions:
the machines are shared and noisy, and PostgreSQL and RabbitMQ share the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import math
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from types import ModuleType
from typing import Any

# Run as a script, this file's folder comes first on sys.path, and bench/xml.py would shadow
# the standard library's xml package (which xmlschema, imported by the gateway, needs): the
# checkout takes its place.  With -m, sys.path[0] is the working folder: the same.
sys.path.pop(0)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from cryptography import x509

import gateway.app.as2_inbound as as2_inbound
import gateway.app.as2_unwrap as as2_unwrap
import gateway.security.as2 as as2_read
import gateway.security.as2_write as as2_write
from bench import rig
from bench.rig import gateway_key, peer, percentile
from gateway.security.as2 import Keys, read_as2, read_mdn
from gateway.security.as2_write import HttpMessage, build_mdn
from gateway.security.envelope import decrypt_enveloped
from gateway.security.signing import SigningKey
from gateway.security.verify import verify_pinned
from gateway.wire.as2.mic import Mic
from gateway.wire.as2.mime import parse_entity, split_multipart
from tests.support.edifact import cusdec_message, interchange

GOODS_CODES = ("0303.55", "8471.30", "6109.10", "0901.21")
TARGET_BYTES = 3 * 1024
PROCESSED = re.compile(rb"Disposition: automatic-action/MDN-sent-automatically; processed\r\n")
#: Every this many-th counted response is kept, to be read back in full.
SAMPLE_EVERY = 50


# --- the messages -------------------------------------------------------------------------


def payload(number: int) -> bytes:
    """A CUSDEC of about 3 KB, its control reference and declaration its own."""
    codes: list[str] = []
    while True:
        message = cusdec_message(commodity_codes=codes or GOODS_CODES[:1],
                                 declaration=f"DEC-B{number:09d}")
        data = interchange([message], control_reference=f"B{number:012d}", sender="VANA")
        if len(data) >= TARGET_BYTES:
            return data
        codes.append(GOODS_CODES[len(codes) % len(GOODS_CODES)])


def message(number: int, run: str) -> tuple[HttpMessage, Mic]:
    return rig.as2_message(payload(number), f"bench-{number}.edi",
                           f"<bench-{run}-{number}@VANA>")


# --- the bare crypto ------------------------------------------------------------------------


@dataclass(frozen=True)
class Bare:
    """One message as the receiver gets it, and what the bare loop needs to repeat the
    receiver's crypto on it."""

    sent: HttpMessage
    key: SigningKey
    #: The signed entity and its detached signature, as found inside the envelope.
    signed: bytes
    signature: bytes

    @property
    def keys(self) -> Keys:
        return [(self.key.certificate, self.key.private_key)]

    @classmethod
    def of(cls, sent: HttpMessage, key: SigningKey) -> Bare:
        keys = [(key.certificate, key.private_key)]
        content = decrypt_enveloped(sent.body, keys).content
        entity = parse_entity(content)
        signed, signature = split_multipart(entity.body, entity.content_type.get("boundary"))
        return cls(sent, key, signed, parse_entity(signature).decoded())

    def crypto(self) -> object:
        """Decrypt, verify, sign the MDN: the receiver's crypto on one message."""
        decrypt_enveloped(self.sent.body, self.keys)
        verify_pinned(self.signed, self.signature, [peer().certificate])
        return self._mdn(Mic("AAAA", "sha256"))

    def unwrap(self) -> object:
        """``read_as2`` (MIME layers, decrypt, verify, MIC) and ``build_mdn``: all the
        gateway's pure work on one message, no database."""
        payload = read_as2(dict(self.sent.headers), self.sent.body, keys=self.keys,
                           partner_certificates=[peer().certificate],
                           max_bytes=10_000_000)
        return self._mdn(payload.mic)

    def _mdn(self, mic: Mic) -> HttpMessage:
        return build_mdn(original_message_id="<bench@VANA>", original_recipient="SWGATEWAY",
                         as2_from="SWGATEWAY", as2_to="VANA", message_id="<mdn@SWGATEWAY>",
                         disposition="processed", mic=mic, text=as2_inbound.PROCESSED_TEXT,
                         signer=self.key, micalg="sha256")


@dataclass
class Rate:
    count: int = 0
    seconds: float = 0.0
    cpu: float = 0.0

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def add(self, count: int, seconds: float, cpu: float) -> None:
        self.count += count
        self.seconds += seconds
        self.cpu += cpu


def loop_for(work: Callable[[], object], seconds: float, threads: int) -> tuple[int, float,
                                                                                 float]:
    """``work`` again and again for ``seconds`` in ``threads`` threads: how many, the wall
    seconds, the process's CPU seconds."""
    deadline = time.perf_counter() + seconds

    def worker() -> int:
        count = 0
        while time.perf_counter() < deadline:
            work()
            count += 1
        return count

    cpu, start = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        count = sum(pool.map(lambda _: worker(), range(threads)))
    return count, time.perf_counter() - start, time.process_time() - cpu


# --- what the gateway spends in crypto, measured inside it --------------------------------


@dataclass
class Spent:
    """CPU seconds (of the thread that ran them) and calls, per instrumented function."""

    cpu: dict[str, float] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counting: bool = False

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                if self.counting:
                    with self.lock:
                        self.cpu[name] = (self.cpu.get(name, 0.0) + time.thread_time()
                                          - start)
                        self.calls[name] += 1
        return timed


#: (module, attribute, label): the calls timed inside the gateway's process (with
#: --unwrap-processes 0; in processes of their own they are out of reach, and their whole CPU
#: is printed instead).  The MDN's CMS signature is ``as2_write._signed`` (the only signing in
#: this run: van-a has no AS2 url, nothing is sent to it).
INSTRUMENTED: tuple[tuple[ModuleType, str, str], ...] = (
    (as2_unwrap, "read_as2", "read_as2 (MIME + decrypt + verify + MIC)"),
    (as2_unwrap, "build_mdn", "build_mdn (MIME + sign)"),
    (as2_read, "decrypt_enveloped", "  decrypt_enveloped"),
    (as2_read, "verify_pinned", "  verify_pinned"),
    (as2_write, "_signed", "  MDN signature (as2_write._signed)"),
)
CRYPTO_PROPER = ("  decrypt_enveloped", "  verify_pinned", "  MDN signature (as2_write._signed)")


@contextmanager
def instrumented(spent: Spent) -> Iterator[None]:
    originals = [(module, name, vars(module)[name]) for module, name, _ in INSTRUMENTED]
    for (module, name, label), (_, _, original) in zip(INSTRUMENTED, originals, strict=True):
        vars(module)[name] = spent.wrap(label, original)
    try:
        yield
    finally:
        for module, name, original in originals:
            vars(module)[name] = original


# --- the clients, in a process of their own -----------------------------------------------


@dataclass(frozen=True)
class Plan:
    url: str
    messages: list[HttpMessage]
    concurrency: int
    warmup: float
    seconds: float


@dataclass
class Outcome:
    processed: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    #: (index of the message, response headers, response body) of a sample.
    samples: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    ran_out: bool = False
    cpu: float = 0.0


def clients(pipe: Pipe) -> None:
    """The child process: receive a Plan, say when the warm-up is over, send the Outcome."""
    rig.child_main(pipe, lambda plan, pipe: post_all(plan, lambda: pipe.send("measuring")))


async def post_all(plan: Plan, measuring: Callable[[], None]) -> Outcome:
    outcome = Outcome()
    queue = iter(enumerate(plan.messages))
    start = time.perf_counter()
    window = start + plan.warmup
    end = window + plan.seconds
    told = False

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal told
        for index, sent in queue:
            began = time.perf_counter()
            if began >= end:
                return
            if began >= window and not told:
                told = True
                measuring()
            async with session.post(plan.url, data=sent.body,
                                    headers=list(sent.headers)) as response:
                body = await response.read()
                status, headers = response.status, dict(response.headers)
            if began < window:
                continue
            outcome.latencies.append(time.perf_counter() - began)
            ok = status == 200 and PROCESSED.search(body) is not None
            outcome.statuses["200 processed" if ok else f"{status} other"] += 1
            if ok:
                outcome.processed += 1
                if outcome.processed % SAMPLE_EVERY == 1:
                    outcome.samples.append((index, headers, body))
        outcome.ran_out = True

    connector = aiohttp.TCPConnector(limit=plan.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(plan.concurrency)))
    if not told:
        measuring()
    outcome.seconds = min(time.perf_counter(), end) - window
    return outcome


# --- the run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """The gateway's CPU seconds over the measured window (its unwrapping processes' among
    them), the window's wall seconds, and the machine's busy share over it."""

    cpu: float
    unwrapping: float
    wall: float
    machine: float


async def end_to_end(plan: Plan, spent: Spent,
                     profile: cProfile.Profile | None) -> tuple[Outcome, Measured]:
    """The clients' outcome, and what the window measured."""
    window = rig.Window(profile)
    async with rig.ChildProcess(clients) as child:
        child.send(plan)
        await child.expect("measuring")
        window.start()
        spent.counting = True
        finished: rig.Finished = await child.recv()
        spent.counting = False
        window.stop()
    outcome: Outcome = finished.outcome
    outcome.cpu = finished.cpu
    return outcome, Measured(window.cpu, window.helpers, window.wall, window.machine)


def check_samples(outcome: Outcome, mics: list[Mic], messages: list[HttpMessage],
                  certificate: x509.Certificate) -> int:
    """Every sampled MDN read in full: signed by the gateway, for its message, its MIC."""
    for index, headers, body in outcome.samples:
        mdn = read_mdn(headers, body, partner_certificates=[certificate])
        original = dict(messages[index].headers)["Message-ID"]
        assert mdn.signed and mdn.report.disposition.text() == "processed", mdn.text
        assert mdn.report.original_message_id == original
        assert mdn.report.mic is not None and mdn.report.mic.matches(mics[index])
    return len(outcome.samples)


def bare_rates(bare: Bare, args: argparse.Namespace, single: Rate, threaded: Rate,
               unwrap: Rate) -> None:
    """One round of the bare figures (a third of --seconds each, split over the rounds)."""
    share = args.seconds / 3 / args.rounds
    single.add(*loop_for(bare.crypto, share, 1))
    threaded.add(*loop_for(bare.crypto, share, args.concurrency))
    unwrap.add(*loop_for(bare.unwrap, share, 1))


async def run(args: argparse.Namespace) -> None:
    key = gateway_key()
    first, _ = message(0, "probe")
    bare = Bare.of(first, key)
    single, threaded, unwrap = Rate(), Rate(), Rate()
    bare.crypto()
    bare.unwrap()
    for _ in range((args.rounds + 1) // 2):
        bare_rates(bare, args, single, threaded, unwrap)
    reference = max(single.per_second, threaded.per_second)
    count = args.messages or int((args.seconds + args.warmup) * reference * 1.1) + 100
    run_id = uuid.uuid4().hex[:8]
    print(f"building {2 * count} messages ...", file=sys.stderr)
    built = [message(n, run_id) for n in range(1, 2 * count + 1)]
    messages, mics = [m for m, _ in built], [m for _, m in built]
    spent, transport_spent = Spent(), Spent()
    profile = cProfile.Profile() if args.profile else None
    with tempfile.TemporaryDirectory(prefix="gw-bench-as2-") as folder:
        root = Path(folder)
        options = rig.as2_options(root, args.unwrap_processes)
        async with rig.scratch_gateway(root, **options) as gateway:
            assert gateway.running is not None and gateway.running.as2_port is not None
            url = f"http://127.0.0.1:{gateway.running.as2_port}/as2"
            plan = Plan(url, messages[:count], args.concurrency, args.warmup, args.seconds)
            with instrumented(spent):
                outcome, measured = await end_to_end(plan, spent, None)
            # The AS2 transport alone: the same, with the decisions deferred (the processor
            # finds nothing due), so the gateway's CPU goes to taking messages and answering
            # MDNs; what is taken is committed all the same, and decided after.
            await defer_decisions(gateway, True)
            plan = Plan(url, messages[count:], args.concurrency, args.warmup, args.seconds)
            with instrumented(transport_spent):
                transport = await end_to_end(plan, transport_spent, profile)
            await defer_decisions(gateway, False)
            await drained(gateway)
    for _ in range(args.rounds // 2):
        bare_rates(bare, args, single, threaded, unwrap)
    rig.forget_pki()  # demo_pki's folder is made per process (tests.support.harness)
    checked = check_samples(outcome, mics, messages, key.certificate)
    print("== the whole gateway: every message taken, decided, routed and answered ==")
    report(args, len(first.body), outcome, measured, spent, (single, threaded, unwrap), checked)
    checked = check_samples(transport[0], mics[count:], messages[count:], key.certificate)
    print("\n== the AS2 transport: the same, with the decisions deferred until after ==")
    report(args, len(first.body), transport[0], transport[1], transport_spent,
           (single, threaded, unwrap), checked)
    if profile is not None:
        if args.profile_out is not None:
            profile.dump_stats(args.profile_out)
        print("\ncProfile of the event loop's thread over the AS2 transport's window, by own "
              "time:")
        print(rig.profile_text(profile, 25))


async def defer_decisions(gateway: Any, defer: bool) -> None:
    """In the bench's own scratch database: new submissions are due in an hour (deferred),
    or all are due now again."""
    if defer:  # the backlog of the run before too: it would be decided meanwhile
        await gateway.fetch("ALTER TABLE interchanges ALTER COLUMN next_attempt_at"
                            " SET DEFAULT now() + interval '1 hour'")
        await gateway.fetch("UPDATE interchanges SET next_attempt_at = now() + interval"
                            " '1 hour' WHERE status = 'received'")
    else:
        await gateway.fetch("ALTER TABLE interchanges ALTER COLUMN next_attempt_at"
                            " SET DEFAULT now()")
        await gateway.fetch("UPDATE interchanges SET next_attempt_at = now()"
                            " WHERE status = 'received'")


async def drained(gateway: Any, limit: float = 600.0) -> None:
    """Wait until the deferred backlog is decided and every answer sent, so that the gateway
    stops with nothing pending (its own drain is bounded at a few seconds, and what it leaves
    would be written into the scratch folder while it is being removed)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        (row,) = await gateway.fetch(
            "SELECT (SELECT count(*) FROM interchanges WHERE status = 'received')"
            " + (SELECT count(*) FROM outbox WHERE dispatched_at IS NULL) AS left")
        if row["left"] == 0:
            return
        print(f"waiting for the deferred backlog: {row['left']} left", file=sys.stderr)
        await asyncio.sleep(5.0)
    print(f"backlog not drained in {limit:g} s; stopping anyway", file=sys.stderr)


def report(args: argparse.Namespace, size: int, outcome: Outcome, window: Measured,
           spent: Spent, bare: tuple[Rate, Rate, Rate], checked: int) -> None:
    single, threaded, unwrap = bare
    cpu, wall, machine = window.cpu, window.wall, window.machine
    rate = outcome.processed / outcome.seconds if outcome.seconds else 0.0
    reference, which = max((single.per_second, "1 thread"),
                           (threaded.per_second, f"{args.concurrency} threads"))
    print(f"AS2: a signed (sha256), AES-256-CBC encrypted CUSDEC, {size:,} bytes on the wire "
          f"(payload ~{TARGET_BYTES // 1024} KB), synchronous signed MDN")
    print(f"end to end: {args.concurrency} clients (own process) over loopback, "
          f"{outcome.seconds:.1f} s after {args.warmup:g} s warm-up"
          + ("  (RAN OUT OF MESSAGES: --messages)" if outcome.ran_out else ""))
    print(f"  responses: {dict(outcome.statuses)}; {checked} sampled MDNs read back in full "
          "(signature, Original-Message-ID, MIC): all good")
    if outcome.latencies:
        print(f"  latency per POST: p50 {percentile(outcome.latencies, 0.5) * 1000:.1f} ms, "
              f"p95 {percentile(outcome.latencies, 0.95) * 1000:.1f} ms, mean "
              f"{statistics.fmean(outcome.latencies) * 1000:.1f} ms")
    print(f"{'':58} {'msg/s':>8} {'CPU ms/msg':>11}")
    per = cpu / outcome.processed * 1000 if outcome.processed else math.nan
    print(f"{'received end to end, processed MDN (gateway)':58} {rate:8.1f} {per:11.2f}")
    for name, figure in (("bare crypto, 1 thread", single),
                         (f"bare crypto, {args.concurrency} threads", threaded),
                         ("read_as2 + build_mdn, 1 thread (no database)", unwrap)):
        print(f"{name:58} {figure.per_second:8.1f} "
              f"{figure.cpu / figure.count * 1000:11.2f}")
    print(f"  (bare crypto = decrypt_enveloped + verify_pinned + build_mdn signed, "
          f"{args.rounds} rounds around the end-to-end run)")
    ratio = rate / reference if reference else math.nan
    print(f"ratio end to end / bare crypto ({which}, the faster: the stricter reference) = "
          f"{ratio:.2f}  (target >= 0.50; vs 1 thread {rate / single.per_second:.2f})")
    print(f"gateway CPU over the window: {cpu:.2f} s in {wall:.2f} s wall "
          f"({cpu / wall:.0%} of one core; the clients' process {outcome.cpu:.2f} s in all); "
          f"the machine's {os.cpu_count()} cores {machine:.0%} busy")
    if window.unwrapping:
        print(f"  of it, the unwrapping processes (MIME, decrypt, verify, MIC, MDN signing): "
              f"{window.unwrapping:.2f} s {window.unwrapping / cpu:6.1%}; the gateway's own "
              f"process (HTTP, database, event loop) {cpu - window.unwrapping:.2f} s "
              f"{1 - window.unwrapping / cpu:6.1%}")
    if outcome.processed:
        estimate = single.cpu / single.count * outcome.processed
        print(f"estimated from the bare loop's CPU per message: crypto {estimate / cpu:.1%} "
              f"of the gateway's CPU, the rest {1 - estimate / cpu:.1%}")
    if not spent.calls:
        return  # in processes of their own: not timed call by call
    proper = sum(spent.cpu.get(label, 0.0) for label in CRYPTO_PROPER)
    print("share of the gateway's CPU, measured in the gateway (thread CPU time of each call):")
    for _, _, label in INSTRUMENTED:
        used = spent.cpu.get(label, 0.0)
        print(f"  {label:44} {used:7.2f} s {used / cpu:6.1%}  ({spent.calls[label]} calls)")
    print(f"  crypto proper (decrypt + verify + sign)      {proper:7.2f} s {proper / cpu:6.1%}"
          f"   the rest {1 - proper / cpu:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="the measured end-to-end window; the bare figures take as long")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="clients POSTing at once, and threads of the threaded bare loop")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="seconds of POSTs before the window, not counted")
    parser.add_argument("--rounds", type=int, default=2,
                        help="bare figures measured this often, split before and after")
    parser.add_argument("--messages", type=int, default=0,
                        help="messages to build (0: enough for the bare rate)")
    parser.add_argument("--unwrap-processes", type=int, default=None,
                        help="the gateway's as2.unwrap_processes (default: its default; 0: "
                             "threads of its own process, timed call by call)")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the event loop's thread over the window")
    parser.add_argument("--profile-out", type=Path, default=None,
                        help="with --profile: also write the pstats file here")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
