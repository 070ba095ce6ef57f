"""The licence feed: licences the licensing agencies publish on the licences exchange, taken
into the registry (store.licences), or refused with a reason, recorded and dead-lettered,
never applied (docs/licences.md).

Who published is RabbitMQ's validated ``user_id`` (DESIGN rule 5, as for answers: the broker
refuses a publish whose ``user_id`` is not the connection's user).  An agency issues licences
only in its own name, and amends or revokes only the licences it issued.  A higher amendment
number replaces the one held; the same amendment again is taken once (a redelivery); any other
is refused."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pydantic import ValidationError

from gateway import alarms
from gateway.bus.responses import IncomingAnswer, Verdict, consume_answers
from gateway.bus.topology import topology_of
from gateway.config.load import GatewayConfig
from gateway.errors import BusError
from gateway.logs import event
from gateway.model.canonical.licence import Licence
from gateway.store import licences
from gateway.store.database import translated_errors

log = logging.getLogger("gateway.licences")
#: The largest licence message taken (a licence is a few hundred bytes).
MAX_LICENCE_BYTES = 256 * 1024


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LicenceFeed:
    def __init__(self, pool: Any, config: GatewayConfig) -> None:
        self._pool = pool
        self._agency_of_user = {a.user: a.code for a in config.agencies}

    async def take(self, incoming: IncomingAnswer) -> Verdict:
        try:
            agency = self._agency(incoming.broker_user)
            licence = _read(incoming.body, incoming.type)
            if licence.issuing_agency != agency:
                raise _Refused(f"published by {agency!r} but issued by "
                               f"{licence.issuing_agency[:64]!r}: an agency issues licences "
                               "only in its own name")
            async with translated_errors("taking a licence"), \
                    self._pool.acquire() as connection, connection.transaction():
                outcome = await self._apply(connection, agency, licence)
        except _Refused as refused:
            await self._refuse(incoming, refused.reason)
            return Verdict.REFUSED
        event(log, "licence_" + outcome, agency=agency, licence=licence.number,
              amendment=licence.amendment, status=licence.status,
              quantity=str(licence.quantity), unit=licence.unit)
        return Verdict.TAKEN

    def _agency(self, user: str | None) -> str:
        if not user:
            raise _Refused("no user_id property: a licence is taken only from the agency "
                           "RabbitMQ vouches for")
        agency = self._agency_of_user.get(user)
        if agency is None:
            raise _Refused(f"broker user {user[:64]!r} is no agency's")
        return agency

    @staticmethod
    async def _apply(connection: Any, agency: str, licence: Licence) -> str:
        """"issued", "amended", "revoked" or "repeated"; _Refused when it may not be."""
        held = await licences.current(connection, licence.number)
        if held is not None and held.issuing_agency != agency:
            raise _Refused(f"licence {licence.number!r} was issued by "
                           f"{held.issuing_agency!r}: only its issuer amends or revokes it")
        if held is not None and licence.amendment <= held.amendment:
            if licence.amendment == held.amendment and \
                    Licence.model_validate_json(held.body) == licence:
                return "repeated"
            raise _Refused(f"amendment {licence.amendment} of licence {licence.number!r} is "
                           f"not newer than amendment {held.amendment}, held")
        await licences.put(connection, licence)
        if licence.status == "revoked":
            return "revoked"
        return "issued" if held is None else "amended"

    async def _refuse(self, incoming: IncomingAnswer, reason: str) -> None:
        async with translated_errors("recording a refused licence"), \
                self._pool.acquire() as connection, connection.transaction():
            refusal = await licences.refuse(connection, broker_user=incoming.broker_user,
                                            message_id=incoming.answer_id, reason=reason,
                                            body=incoming.body)
        event(log, "licence_refused", level=logging.ERROR, code=alarms.LICENCE_REFUSED,
              broker_user=incoming.broker_user, message=incoming.answer_id, reason=reason,
              refusal=refusal, note="alarm: recorded in refused_licences and dead-lettered; "
              "not applied")


def _read(body: bytes, declared_type: str | None) -> Licence:
    if len(body) > MAX_LICENCE_BYTES:
        raise _Refused(f"{len(body)} bytes: a licence is at most {MAX_LICENCE_BYTES}")
    if declared_type and declared_type != "Licence":
        raise _Refused(f"its type property says {declared_type[:40]!r}, not 'Licence'")
    try:
        return Licence.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise _Refused(f"not a licence: {exc.error_count()} problem(s), first at "
                       f"{where or 'the top'}: {first['msg']}") from exc


async def run_feed(pool: Any, config: GatewayConfig, stop: asyncio.Event) -> None:
    """Take licences until ``stop`` is set (a task of ``gateway serve``); while the broker is
    unreachable, say so and let the supervisor try again, like the answers consumer."""
    feed = LicenceFeed(pool, config)
    try:
        await consume_answers(config.amqp_url, topology_of(config), feed.take, stop,
                              licences=True)
    except BusError as exc:
        event(log, "licences_unavailable", level=logging.ERROR, error=str(exc),
              note="licences wait in their queue")
        raise
