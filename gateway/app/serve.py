"""``gateway serve``: every listener and worker under one supervisor (asyncio.TaskGroup).

SIGTERM or SIGINT stops the listeners first (no new submissions), lets the processor and relays
drain what is already committed for a short grace period, then exits.  Whatever is not done by
then stays in the store and is resumed on the next start (DESIGN rule 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.app.answers import AnswerDesk
from gateway.app.as2_inbound import As2Inbox, as2_partners, start_endpoint
from gateway.app.as2_outbound import As2Dispatcher, ReceiptWatch
from gateway.app.cargo_trail import CargoTrail
from gateway.app.certificate_watch import CertificateWatch
from gateway.app.console_operations import ConsoleOperations
from gateway.app.intake import Intake
from gateway.app.licence_feed import run_feed
from gateway.app.mailbox_purge import MailboxPurge
from gateway.app.mapping_files import load_compiled
from gateway.app.overdue import OverdueWatch
from gateway.app.processor import Processor
from gateway.app.relay import LeasingRelay, MailboxDispatcher, Relay
from gateway.app.routing_change import RoutingChanges
from gateway.app.routing_follow import FollowedRouting
from gateway.app.routing_lead import RoutingLead
from gateway.app.routing_reload import RoutingInForce
from gateway.app.worker_processes import WorkerProcesses, stop_when_parent_leaves
from gateway.app.workers import supervised
from gateway.app.xml_schema_files import xml_catalog
from gateway.bus.publisher import AmqpPublisher
from gateway.bus.responses import consume_answers
from gateway.bus.topology import topology_of
from gateway.catalog.catalog import Catalog
from gateway.config.console_users import load_users
from gateway.config.load import GatewayConfig
from gateway.config.port_alarms import PortAlarmsFile, load_port_alarms
from gateway.console import metrics
from gateway.console.app import Console, ConsoleListener, start_console
from gateway.console.auth import Gatekeeper
from gateway.console.health import Readiness
from gateway.errors import BusError, ConfigError, StoreError
from gateway.logs import event, redact
from gateway.pipeline.mapping.mapping import Mappings
from gateway.pipeline.xml_kinds import XmlCatalog
from gateway.security.keys import load_signer
from gateway.security.partner_certificates import load_partner_certificates
from gateway.security.signing import Signer
from gateway.store.database import connections_allowed, create_pool
from gateway.store.interchanges import pending_work
from gateway.transports.mailbox import Mailboxes
from gateway.transports.sftp import PartnerAccess, load_or_create_host_key, start_server
from gateway.transports.sftp.outbox import DatabaseOutboxes, DiskOutboxes

log = logging.getLogger("gateway.serve")
DRAIN_SECONDS = 5.0
#: Pooled connections beside the processor workers' (intake, the two relays, routing reload).
POOL_SPARE = 6
#: A worker process's, beside its processor workers' (the two relays, the routing follower).
WORKER_POOL_SPARE = 3
SHUTDOWN_STEP_SECONDS = 5.0
#: An AS2 send's lease beyond its timeout: the outcome is written within it.
LEASE_MARGIN = 30.0
#: The console's own connections (/ready, /metrics, its pages): a busy work pool never makes
#: the gateway look unready, and a scrape or a page never takes a connection the work needs.
CONSOLE_POOL = 3
#: SFTP sessions' reads of outbox/ with ``sftp.mailbox_store: database`` (each READ of a range,
#: listing or delete is one short statement): partners downloading at once never take the
#: connections the intake, the processor and the relays need (rule 6).
OUTBOX_POOL = 4


@dataclass
class Running:
    """Handles on a started gateway (tests use them; ``serve`` waits on ``stopped``)."""

    sftp_port: int
    #: The AS2 listener's port (plain HTTP; None without ``as2:``) and its HTTPS one.
    as2_port: int | None = None
    as2_https_port: int | None = None
    #: The console's port (None without ``console:``).
    console_port: int | None = None
    stopped: asyncio.Event = field(default_factory=asyncio.Event)


async def _refuse_more_connections_than_allowed(pool: Any, config: GatewayConfig,
                                               workers: int) -> None:
    """Every process's pool full must fit in what PostgreSQL allows, or under load the last
    ones to connect fail with too_many_connections, over and over; say so at start instead."""
    if workers <= 1:
        return
    needed = (config.settings.processor_workers + POOL_SPARE
              + (0 if config.settings.console is None else CONSOLE_POOL + 1)  # /ready's
              + (OUTBOX_POOL if _in_database(config) else 0)
              + (workers - 1) * (config.settings.processor_workers + WORKER_POOL_SPARE))
    allowed = await connections_allowed(pool)
    if needed > allowed:
        raise ConfigError(
            f"--workers {workers} with processor_workers {config.settings.processor_workers} "
            f"opens up to {needed} database connections, and PostgreSQL allows {allowed} "
            "(max_connections less its reserved slots): start fewer workers, lower "
            "processor_workers in gateway.yaml, or raise max_connections")


async def serve(config: GatewayConfig, *, ready: asyncio.Future[Running] | None = None,
                install_signals: bool = True, workers: int = 1) -> None:
    """``workers``: processes deciding and relaying, this one included (worker_processes)."""
    xml = xml_catalog(config)  # XSDs compiled once, here, never per document
    compiled = load_compiled(config.mappings_path, xml=xml)
    signer = load_signer(config)  # refuse to start with no valid signing key
    certificates = load_partner_certificates(config)  # AS2 partners': refuse a broken file
    port_alarms = _port_alarms(config)  # refuse a broken file; None: the feature is off
    answers_stop = asyncio.Event()
    # One connection per processor worker, and some for the intake, relays and reload: no
    # worker holds one while waiting for another, so a smaller pool would only be slower.
    pool = await create_pool(config.database_url,
                             size=config.settings.processor_workers + POOL_SPARE)
    outbox_pool = None
    try:
        await _refuse_more_connections_than_allowed(pool, config, workers)
        if _in_database(config):
            outbox_pool = await create_pool(config.database_url, size=OUTBOX_POOL)
    except BaseException:
        await pool.close()
        raise
    mailboxes = Mailboxes(config.mailboxes_path)
    mailboxes.prepare(tuple(p.id for p in config.partners))
    wakes = _Wakes()
    wake_answers = _Fanout(wakes.mailbox, wakes.as2)
    publisher = AmqpPublisher(config.amqp_url, topology_of(config), config.agency_codes)
    intake = Intake(pool, wakes.processor)
    access = PartnerAccess(
        logins={p.login: p.id for p in config.partners},
        keys=config.ssh_keys,
        mailboxes=mailboxes,
        outboxes=DiskOutboxes(config.mailboxes_path) if outbox_pool is None else
        DatabaseOutboxes(outbox_pool),
        max_submission_bytes=config.settings.max_submission_bytes,
        settings=config.settings.sftp,
    )
    try:
        await publisher.prepare()
    except BusError as exc:  # ours, not fatal: the relay keeps trying and alarms meanwhile
        event(log, "broker_unavailable", level=logging.ERROR, error=str(exc),
              note="submissions are still accepted; deliveries wait in the outbox")
    routing = RoutingLead(config, pool, on_new_agencies=publisher.update_agencies)
    await routing.start()
    counting = _start_counting(config)  # before anything counts, and before the workers start
    hangup = asyncio.Event()  # SIGHUP, or the console applying an approved routing change
    console = None
    sftp = None
    inbox = None
    try:  # a listener that cannot start (its port taken) leaves nothing open behind it
        console = await _start_console(config, publisher, routing, counting, hangup)
        host_key = load_or_create_host_key(config.host_key_path)
        sftp = await start_server(config.settings.sftp.host, config.settings.sftp.port,
                                  host_key, access, intake.submit)
        if config.settings.as2 is not None:
            inbox = As2Inbox(config.settings.as2, as2_partners(config, certificates), signer,
                             pool, intake, wakes.as2)
            await inbox.start()
        as2 = None if inbox is None else await start_endpoint(config, inbox)
    except BaseException:
        if sftp is not None:
            sftp.close()
        if inbox is not None:
            inbox.close()
        await _release(console, publisher, pool, counting, routing, outbox_pool)
        raise
    running = Running(sftp_port=sftp.sockets[0].getsockname()[1],
                      as2_port=None if as2 is None else as2.port,
                      as2_https_port=None if as2 is None else as2.https_port,
                      console_port=None if console is None else console.listener.port)
    if install_signals:
        _on_signals(running.stopped, hangup)
    event(log, "started", sftp=f"{config.settings.sftp.host}:{running.sftp_port}",
          sftp_host_key=host_key.get_fingerprint(),  # what partners pin
          database=redact(config.database_url), amqp=redact(config.amqp_url),
          exchange=config.settings.amqp.exchange, partners=len(config.partners),
          agencies=list(config.agency_codes),
          mappings=[f"{m} {r}" for m, r in sorted(compiled[1].by_message)],
          xml=[k.name for k in xml.kinds],
          as2=None if as2 is None else _as2_address(config, running),
          console=None if console is None else
          f"http://{console.listener.host}:{console.listener.port}",
          port_alarms=_port_alarms_said(port_alarms))
    for missing in xml.missing:
        event(log, "xml_schema_not_plugged_in", level=logging.WARNING, detail=missing)
    closing: list[Callable[[], Awaitable[None]]] = []
    processes = None if workers <= 1 else WorkerProcesses(config.source, workers - 1)
    try:
        async with asyncio.TaskGroup() as group:
            desk = AnswerDesk(pool, config, compiled[1], wake_answers, routing)
            overdue = OverdueWatch(pool, config)
            certificate_watch = CertificateWatch(certificates)
            tasks = [
                *_deciding_and_relaying(group, _Parts(pool, config, compiled, xml, routing,
                                                      publisher, signer, mailboxes, wakes)),
                group.create_task(supervised("answers", lambda: _answers(
                    config, desk, answers_stop))),
                group.create_task(supervised("licences", lambda: run_feed(
                    pool, config, answers_stop))),
                group.create_task(supervised("overdue-watch", overdue.run)),
                group.create_task(supervised("certificate-watch", certificate_watch.run)),
                group.create_task(supervised("routing-reload", lambda: routing.watch(
                    hangup, config.settings.routing_reload_seconds))),
            ]
            if _in_database(config):
                purge = MailboxPurge(pool, config.settings.sftp.mailbox_retention_days)
                tasks.append(group.create_task(supervised("mailbox-purge", purge.run)))
            if port_alarms is not None:
                trail = CargoTrail(pool, port_alarms, config.amqp_url)
                tasks.append(group.create_task(supervised("cargo-trail", trail.run)))
            if processes is not None:  # after the table is recorded: the workers follow it
                tasks.append(group.create_task(supervised("worker-processes", processes.run)))
            if config.settings.as2 is not None:
                assert running.as2_port is not None
                sender = As2Dispatcher(config, certificates, signer,
                                       config.settings.as2.url(running.as2_port), pool)
                closing.append(sender.close)
                as2_relay = LeasingRelay(
                    pool, "as2", sender, wakes.as2, on_done=sender.record,
                    lease_seconds=config.settings.as2.send_timeout_seconds + LEASE_MARGIN)
                receipts = ReceiptWatch(pool, config.settings.as2)
                tasks += [group.create_task(supervised("as2-relay", as2_relay.run)),
                          group.create_task(supervised("as2-receipts", receipts.run))]
            if ready is not None:
                ready.set_result(running)
            await running.stopped.wait()
            event(log, "stopping", reason="signal or shutdown request")
            sftp.close()
            await _bounded("closing the SFTP listener", sftp.wait_closed())
            if as2 is not None:
                await _bounded("closing the AS2 listener", as2.close())
            if console is not None:
                await _bounded("closing the console listener", console.listener.close())
            answers_stop.set()  # agencies' answers in hand are settled or redelivered
            await _drain(pool, wakes)  # the workers help, then stop
            if processes is not None:
                await processes.stop()
            for task in tasks:
                task.cancel()
    finally:
        if processes is not None:
            await processes.stop()  # none left running when this one leaves on an error
        sftp.close()
        if as2 is not None:
            await _bounded("closing the AS2 listener", as2.close())
        if inbox is not None:
            inbox.close()
        for close in closing:
            await _bounded("closing the AS2 client", close())
        await _release(console, publisher, pool, counting, routing, outbox_pool)
        event(log, "stopped")


def _in_database(config: GatewayConfig) -> bool:
    """Whether partners' outbox files are kept in the database (``sftp.mailbox_store``)."""
    return config.settings.sftp.mailbox_store == "database"


def _port_alarms(config: GatewayConfig) -> PortAlarmsFile | None:
    name = config.settings.port_alarms
    return None if name is None else load_port_alarms((config.source.parent / name).resolve())


def _port_alarms_said(rules: PortAlarmsFile | None) -> str:
    """The started line's account of the cargo trail (docs/port-alarms.md)."""
    if rules is None:
        return "off (no port_alarms in gateway.yaml)"
    storage = rules.illegal_storage
    return (f"on: {len(rules.overtime)} overtime rule(s), illegal storage "
            f"{'off' if storage is None else f'within {storage.seconds:g} s'}, "
            f"exchange {rules.exchange}")


async def _release(console: _RunningConsole | None, publisher: AmqpPublisher, pool: Any,
                   counting: Path | None, routing: RoutingLead, outbox_pool: Any | None
                   ) -> None:
    """What serve() opened before its listeners, closed (each close bounded in time); the
    routing lead first, so that another node takes it at once."""
    await routing.close()
    if console is not None:
        await _bounded("closing the console listener", console.close())
    await _bounded("closing the broker connection", publisher.close())
    for opened, what in ((pool, "the database pool"), (outbox_pool, "the outboxes' pool")):
        if opened is not None and not await _bounded(f"closing {what}", opened.close()):
            opened.terminate()
    _stop_counting(counting)


@dataclass
class _RunningConsole:
    listener: ConsoleListener
    pool: Any

    async def close(self) -> None:
        await self.listener.close()
        if not await _bounded("closing the console's database pool", self.pool.close()):
            self.pool.terminate()


def _start_counting(config: GatewayConfig) -> Path | None:
    """With a console, every process counts (console.metrics) into a directory made afresh
    for this start; the worker processes inherit it in the environment."""
    if config.settings.console is None:
        return None
    directory = Path(tempfile.mkdtemp(prefix="gateway-metrics-"))
    metrics.enable(directory)
    return directory


def _stop_counting(directory: Path | None) -> None:
    if directory is not None:
        metrics.disable()
        shutil.rmtree(directory, ignore_errors=True)


async def _start_console(config: GatewayConfig, publisher: AmqpPublisher,
                         routing: RoutingLead, counting: Path | None, hangup: asyncio.Event
                         ) -> _RunningConsole | None:
    settings = config.settings.console
    if settings is None:
        return None

    def version() -> int | None:
        return None if routing.current is None else routing.current.version

    users_path = config.console_users_path
    users = None if users_path is None else load_users(users_path)  # refuse a broken file
    pool = await create_pool(config.database_url, size=CONSOLE_POOL)
    readiness = Readiness(pool, config.database_url, config.amqp_url, publisher.unreachable,
                          version)
    try:
        gatekeeper = None
        if users is not None:
            gatekeeper = await Gatekeeper.start(pool, settings, users, users_path)
        listener = await start_console(
            Console(readiness, counting, lambda: config.agency_codes, settings, gatekeeper,
                    RoutingChanges(config, routing, pool, hangup),
                    ConsoleOperations(config, pool), lambda: config),
            host=settings.host, port=settings.port, source=config.source)
    except BaseException:
        await pool.close()
        raise
    return _RunningConsole(listener, pool)


async def _answers(config: GatewayConfig, desk: AnswerDesk, stop: asyncio.Event) -> None:
    """Take agencies' answers; while the broker is unreachable, say so and try again (the
    supervisor's backoff), like the relays."""
    try:
        await consume_answers(config.amqp_url, topology_of(config), desk.take, stop)
    except BusError as exc:
        event(log, "answers_unavailable", level=logging.ERROR, error=str(exc),
              note="agencies' answers wait in their queue")
        raise


def _as2_address(config: GatewayConfig, running: Running) -> str:
    settings = config.settings.as2
    assert settings is not None
    plain = f"http://{settings.host}:{running.as2_port}{settings.path}"
    if running.as2_https_port is None or settings.https is None:
        return plain
    return f"{plain} and https://{settings.https.host}:{running.as2_https_port}{settings.path}"


def _processor_workers(group: asyncio.TaskGroup, processor: Processor,
                       config: GatewayConfig) -> list[asyncio.Task[None]]:
    """``processor_workers`` deciding at once; the first takes only small submissions, so
    however many large or slow ones arrive, the small ones behind them keep moving."""
    settings = config.settings
    lanes: list[tuple[str, int | None]] = [("processor-small", settings.small_submission_bytes)]
    lanes += [(f"processor-{n}", None) for n in range(1, settings.processor_workers)]
    return [group.create_task(supervised(name, functools.partial(processor.run, name, size)))
            for name, size in lanes]


async def _bounded(step: str, work: Awaitable[object]) -> bool:
    """A shutdown step may not hang the exit: give it a few seconds, then say so and go on."""
    try:
        async with asyncio.timeout(SHUTDOWN_STEP_SECONDS):
            await work
    except TimeoutError:
        event(log, "shutdown_step_timed_out", level=logging.WARNING, step=step)
        return False
    except Exception as exc:  # noqa: BLE001 - we are leaving anyway; say what failed
        event(log, "shutdown_step_failed", level=logging.WARNING, step=step, error=repr(exc))
    return True


async def _drain(pool: object, wakes: _Wakes) -> None:
    """Let committed work finish (bounded): decisions taken, answers and publishes sent."""
    deadline = asyncio.get_running_loop().time() + DRAIN_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        wakes.processor.set()
        wakes.relays.set()
        try:
            if await pending_work(pool) == 0:
                return
        except StoreError:
            return
        await asyncio.sleep(0.1)
    event(log, "drain_incomplete", level=logging.WARNING,
          note="unfinished work stays in the store and resumes on the next start")


class _Fanout:
    """Wake several relays with one ``set()``."""

    def __init__(self, *events: asyncio.Event) -> None:
        self._events = events

    def set(self) -> None:
        for e in self._events:
            e.set()


class _Wakes:
    """What wakes the processor and each relay in this process."""

    def __init__(self) -> None:
        self.processor, self.amqp = asyncio.Event(), asyncio.Event()
        self.mailbox, self.as2 = asyncio.Event(), asyncio.Event()
        self.relays = _Fanout(self.amqp, self.mailbox, self.as2)


@dataclass(frozen=True)
class _Parts:
    """What deciding and relaying need, in the main process and in a worker alike."""

    pool: Any
    config: GatewayConfig
    compiled: tuple[Catalog, Mappings]
    xml: XmlCatalog
    routing: RoutingInForce
    publisher: AmqpPublisher
    signer: Signer
    mailboxes: Mailboxes
    wakes: _Wakes


def _deciding_and_relaying(group: asyncio.TaskGroup, parts: _Parts) -> list[asyncio.Task[None]]:
    """The processor's workers and the AMQP and mailbox relays, as tasks of ``group``."""
    wakes = parts.wakes
    processor = Processor(parts.pool, parts.config, parts.compiled, parts.routing,
                          wakes.processor, wakes.relays, parts.xml)
    amqp = Relay(parts.pool, "amqp", parts.publisher, wakes.amqp)
    writer = MailboxDispatcher(
        None if _in_database(parts.config) else parts.mailboxes.deliver_many, parts.signer)
    mailbox = Relay(parts.pool, "mailbox", writer, wakes.mailbox, on_done=writer.record)
    return [*_processor_workers(group, processor, parts.config),
            group.create_task(supervised("amqp-relay", amqp.run)),
            group.create_task(supervised("mailbox-relay", mailbox.run))]


async def serve_worker(config: GatewayConfig, slot: int) -> None:
    """``gateway serve --worker N``, started by the main process (worker_processes): a
    processor and the AMQP and mailbox relays, following the main process's routing table,
    until SIGTERM or SIGINT or the main process is gone."""
    xml = xml_catalog(config)
    compiled = load_compiled(config.mappings_path, xml=xml)
    signer = load_signer(config)
    pool = await create_pool(config.database_url,
                             size=config.settings.processor_workers + WORKER_POOL_SPARE)
    mailboxes = Mailboxes(config.mailboxes_path)
    publisher = AmqpPublisher(config.amqp_url, topology_of(config), config.agency_codes)
    directory = os.environ.get(metrics.DIRECTORY_VARIABLE)
    if directory:  # the main process's console adds up what this one counts
        metrics.enable(Path(directory))
    stopped = asyncio.Event()
    stop_when_parent_leaves(stopped)
    _on_signals(stopped, asyncio.Event())  # SIGHUP is the main process's to act on
    try:
        routing = FollowedRouting(config, pool, on_new_agencies=publisher.update_agencies)
        await routing.start()
        wakes = _Wakes()
        async with asyncio.TaskGroup() as group:
            tasks = _deciding_and_relaying(group, _Parts(
                pool, config, compiled, xml, routing, publisher, signer, mailboxes, wakes))
            tasks.append(group.create_task(supervised("routing-follow", routing.watch)))
            event(log, "worker_ready", worker=slot)
            await stopped.wait()
            event(log, "worker_stopping", worker=slot)
            await _drain(pool, wakes)
            for task in tasks:
                task.cancel()
    finally:
        await _bounded("closing the broker connection", publisher.close())
        if not await _bounded("closing the database pool", pool.close()):
            pool.terminate()
        metrics.disable()
        event(log, "worker_stopped", worker=slot)


def _on_signals(stopped: asyncio.Event, hangup: asyncio.Event) -> None:
    """SIGTERM/SIGINT: drain and stop; SIGHUP: reload the routing table."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stopped.set)
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGHUP, hangup.set)

