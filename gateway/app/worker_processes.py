"""Worker processes of ``gateway serve --workers N``: the pure pipeline on more than one core.

One process runs everything a partner or an agency talks to (the SFTP and AS2 listeners, the
agencies' answers, the watches) plus a processor and the relays.  N - 1 worker processes run
only a processor and the AMQP and mailbox relays (``gateway serve --worker``, started here).
They share the work through the database alone: submissions and outbox rows are claimed with
FOR UPDATE SKIP LOCKED, a destination's rows still go out in id order across processes
(outbox.claim_pending), answers are written under unique staging names and put in place in one
step (transports.durable), and each worker follows the routing table the main process applied
(routing_follow).  A worker is woken by nothing in the main process: it polls the store
(IDLE_POLL_SECONDS) when idle, so at a low load the main process, woken at once by the
intake, does nearly everything, and under load all of them do.

The main process keeps its workers running: one that exits is an alarm (``worker_exited``) and
is started again after a growing pause.  A worker stops when told (SIGTERM, or SIGINT from a
terminal) and when its main process is gone, however it went (SIGKILL included): its standard
input is a pipe from the main process, and end of file there means the main process is gone.
Whatever a worker had not finished stays in the store and is taken up by the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from gateway import alarms
from gateway.logs import event

log = logging.getLogger("gateway.workers")
MAX_RESTART_DELAY_SECONDS = 30.0
#: A worker that ran this long before it exited starts again at once: its pauses start over.
HEALTHY_RUN_SECONDS = 60.0
#: How long a worker told to stop may take before it is killed.
STOP_SECONDS = 10.0


class WorkerProcesses:
    def __init__(self, config_path: Path, count: int) -> None:
        self._command = [sys.executable, "-m", "gateway", "-c", str(config_path.resolve()),
                         "serve", "--worker"]
        self._count = count
        self._running: dict[int, asyncio.subprocess.Process] = {}
        self._stopping = False

    async def run(self) -> None:
        """Keep ``count`` workers running until ``stop``."""
        async with asyncio.TaskGroup() as group:
            for slot in range(1, self._count + 1):
                group.create_task(self._keep(slot))

    async def _keep(self, slot: int) -> None:
        restarts = 0
        while not self._stopping:
            try:
                # A session (so a process group) of its own: Ctrl-C at a terminal (SIGINT to
                # the foreground group) reaches the main process alone, which drains and then
                # stops its workers, instead of workers leaving first, reported as exited and
                # started again mid-drain.  (uvloop takes start_new_session, not process_group.)
                process = await asyncio.create_subprocess_exec(
                    *self._command, str(slot), stdin=asyncio.subprocess.PIPE,
                    start_new_session=True)
            except OSError as exc:  # no process for it now (limits, memory): say so, retry
                restarts += 1
                await self._pause(slot, restarts, error=str(exc))
                continue
            self._running[slot] = process
            event(log, "worker_started", worker=slot, pid=process.pid)
            started = asyncio.get_running_loop().time()
            code = await process.wait()
            del self._running[slot]
            if self._stopping:
                return
            ran = asyncio.get_running_loop().time() - started
            restarts = 1 if ran >= HEALTHY_RUN_SECONDS else restarts + 1
            await self._pause(slot, restarts, pid=process.pid, exit_code=code)

    async def _pause(self, slot: int, restarts: int, **fields: Any) -> None:
        delay = min(MAX_RESTART_DELAY_SECONDS, 2.0 ** (restarts - 1))
        event(log, "worker_exited", level=logging.ERROR, code=alarms.WORKER_EXITED,
              worker=slot, restart_in=delay,
              note="what it was doing stays in the store; the others take it up", **fields)
        await asyncio.sleep(delay)

    async def stop(self) -> None:
        """Tell every worker to stop, wait for them (bounded), kill any left."""
        self._stopping = True
        running = list(self._running.values())
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        waits = [asyncio.create_task(p.wait()) for p in running]
        if not waits:
            return
        _done, late = await asyncio.wait(waits, timeout=STOP_SECONDS)
        for process in running:
            if process.returncode is None:
                event(log, "worker_killed", level=logging.WARNING, pid=process.pid,
                      note=f"it did not stop within {STOP_SECONDS:.0f} s")
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        if late:
            await asyncio.wait(late)


def stop_when_parent_leaves(stopped: asyncio.Event) -> None:
    """In a worker: set ``stopped`` when standard input (the main process's pipe) reaches
    its end, that is when the main process has gone, SIGKILL included.  A daemon thread
    reads it: a blocking read needs no event loop support for pipes."""
    loop = asyncio.get_running_loop()

    def watch() -> None:
        with contextlib.suppress(OSError, ValueError):
            while sys.stdin.buffer.read(4096):
                pass
        loop.call_soon_threadsafe(stopped.set)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
