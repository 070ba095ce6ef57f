"""The console's release and replay (issue 14, Attention page): the CLI's own code
(app.release, app.replay) run inside the console's transaction, where the console writes its
audit row, on one item the page names.  Each acts at most once: the item is locked and its
state checked in that transaction (``store.messages_in`` locks FOR UPDATE; the parked
updates take only what is still parked), so a second POST finds nothing left to do."""

from __future__ import annotations

import io
from typing import Any

from gateway.app.release import release_messages
from gateway.app.replay import (
    dead_letters,
    replay_dead,
    replay_parked_rows,
    replay_parked_submission,
    replay_unroutable,
)
from gateway.app.traders import AeoRegistry, TraderRegistry
from gateway.config.load import GatewayConfig
from gateway.console.operations import (
    DEAD_LETTERS_LISTED,
    DeadLetterList,
    DeadLetterView,
    Done,
    Recorded,
)
from gateway.errors import GatewayError, QueryRefused
from gateway.store import attention
from gateway.store import interchanges as store
from gateway.store import traders as trader_store

Connection = Any


class ConsoleOperations:
    def __init__(self, config: GatewayConfig, pool: Any) -> None:
        self._config = config
        self._pool = pool
        self._traders = TraderRegistry(pool)

    async def _registry(self, connection: Connection) -> AeoRegistry:
        """The trader registry as of now: a suspension made a moment ago already counts
        (docs/traders.md); read again only when its version moved."""
        return await self._traders.current(await trader_store.version(connection))

    async def _locked(self, connection: Connection, status: str, message_id: int
                      ) -> list[store.StoredMessage]:
        """The message, locked, when it is still in ``status`` (its submission's messages in
        that status are locked with it: the CLI's query, named by submission id)."""
        submission = await attention.submission_of(connection, message_id)
        if submission is None:
            return []
        found = await store.messages_in(connection, status, str(submission))
        return [m for m in found if m.id == message_id]

    async def release(self, connection: Connection, message_id: int) -> Done:
        held = await self._locked(connection, "held", message_id)
        if not held:
            return Done(False, f"message {message_id} is not held (already released?): "
                               "nothing done")
        out = io.StringIO()
        await release_messages(connection, await self._registry(connection), held, out)
        return Done(True, out.getvalue().strip())

    async def replay(self, connection: Connection, what: str, ident: int) -> Done:
        out = io.StringIO()
        if what == "submission":
            changed = bool(await replay_parked_submission(connection, str(ident), out))
            name = f"submission {ident} is not parked"
        elif what == "dispatches":
            changed = bool(await replay_parked_rows(connection, str(ident), out))
            name = f"submission {ident} has no parked dispatch"
        elif what == "message":
            messages = await self._locked(connection, "unroutable", ident)
            await replay_unroutable(connection, self._config, messages,
                                    await self._registry(connection), out)
            changed = bool(messages)
            name = f"message {ident} is not unroutable"
        else:
            raise QueryRefused(f"what: one of submission, dispatches, message (not {what!r})")
        if not changed:
            return Done(False, f"{name} (already replayed?): nothing done")
        return Done(True, out.getvalue().strip())

    async def dead_letters(self) -> DeadLetterList:
        letters: list[DeadLetterView] = []
        problems: list[str] = []
        for agency in self._config.agency_codes:
            try:
                found = await dead_letters(self._config, agency, DEAD_LETTERS_LISTED)
            except GatewayError as exc:
                problems.append(f"{agency}: {exc}")
                continue
            letters += [DeadLetterView(agency, d.message_id, d.correlation_id, d.type,
                                       d.reason, d.replays,
                                       str(d.headers.get("submission_id", "")))
                        for d in found]
        return DeadLetterList(tuple(letters), tuple(problems))

    async def replay_dead(self, agency: str, letter: str, recorded: Recorded) -> Done:
        out = io.StringIO()
        done = False

        async def record(connection: Connection, detail: dict[str, Any]) -> None:
            nonlocal done
            await recorded(connection, detail)
            done = True

        await replay_dead(self._config, agency, letter, out, pool=self._pool, recorded=record)
        text = out.getvalue().strip()
        return Done(done, text if done else f"{text}: nothing published")
