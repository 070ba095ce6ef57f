"""Agencies for tests: broker users of their own (unique per test, provisioned the way
``gateway agencies provision`` does it, with rabbitmqctl, and deleted after), the AMQP
delivery the gateway would publish to an agency, and canonical declarations to put in it.

Typical use with the harness::

    users = unique_users(DEMO_AGENCIES)
    files = write_files(tmp_path, database, agency_settings=agency_settings(users))
    config = load_config(files.config_path, environ={})
    async with provisioned_agencies(config) as agencies:
        endpoint = agencies.endpoint("customs")     # connect as customs' own user
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aio_pika

from gateway.agency.credentials import Endpoint, agency_url, ensure_password_file
from gateway.agency.delivery import Delivery
from gateway.app.agency import run_agency
from gateway.app.broker_admin import RabbitmqCtl
from gateway.app.deliveries import delivery_id
from gateway.app.provision import Account, provision_accounts
from gateway.config.load import GatewayConfig
from gateway.model.canonical import CustomsDeclaration


def unique_users(codes: Iterable[str], tag: str | None = None) -> dict[str, str]:
    """code -> a broker user name no other test uses."""
    tag = tag or uuid.uuid4().hex[:10]
    return {code: f"test-{tag}-{code}" for code in codes}


def agency_settings(users: Mapping[str, str], *, password_files: bool = True
                    ) -> dict[str, dict[str, object]]:
    """agencies.yaml keys (``harness.write_files(agency_settings=...)``): each agency's broker
    user and, with ``password_files``, a password file beside agencies.yaml (created when the
    agencies are provisioned)."""
    return {code: {"broker_user": user, **({"password_file": f"{user}.password"}
                                          if password_files else {})}
            for code, user in users.items()}


@dataclass
class AgencyUsers:
    """Provisioned agency users: ``users`` and ``passwords`` by agency code."""

    config: GatewayConfig
    users: dict[str, str]
    passwords: dict[str, str]

    def url(self, code: str) -> str:
        """The AMQP URL agency ``code`` connects with (its own user and password)."""
        return agency_url(self.config.amqp_url, self.users[code], self.passwords[code])

    def endpoint(self, code: str) -> Endpoint:
        amqp = self.config.settings.amqp
        return Endpoint(url=self.url(code), code=code, user=self.users[code],
                        queue=amqp.queue_prefix + code,
                        responses_exchange=amqp.responses_exchange,
                        licences_exchange=amqp.licences_exchange)

#: The shipped example adapters' rules (deploy/demo/<code>-rules.yaml).
DEMO = Path(__file__).resolve().parents[2] / "deploy" / "demo"


@contextlib.asynccontextmanager
async def running_adapters(config: GatewayConfig, folder: Path, *codes: str,
                           rules: Mapping[str, Path] | None = None) -> AsyncIterator[None]:
    """The example adapters (``gateway agency run CODE``) with the shipped rules (or those
    ``rules`` names for a code), each with its journal in ``folder``, until the block ends."""
    stop = asyncio.Event()
    running = [asyncio.create_task(run_agency(
        config, code, rules=(rules or {}).get(code, DEMO / f"{code}-rules.yaml"),
        journal=folder / f"{code}.journal.sqlite", stop=stop)) for code in codes]
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*running), 30)


@contextlib.asynccontextmanager
async def provisioned_agencies(config: GatewayConfig, users: Mapping[str, str] | None = None,
                               passwords: Mapping[str, str] | None = None
                               ) -> AsyncIterator[AgencyUsers]:
    """Broker users for the agencies of ``users`` (code -> user; default: every agency of
    ``config`` with its ``broker_user``), with their permissions on ``config``'s topology, as
    ``gateway agencies provision`` sets them; deleted afterwards.  A password comes from
    ``passwords``, else the agency's password file (made when missing), else is random."""
    chosen = dict(users) if users is not None else {a.code: a.user for a in config.agencies}
    given = dict(passwords or {})
    for code in chosen:
        given.setdefault(code, _password_for(config, code))
    admin = RabbitmqCtl()
    try:
        await provision_accounts(config, [Account(code, user, given[code])
                                          for code, user in chosen.items()], admin)
        yield AgencyUsers(config, chosen, given)
    finally:
        for user in chosen.values():
            await admin.delete_user(user)


def _password_for(config: GatewayConfig, code: str) -> str:
    agency = config.agency(code)
    path = None if agency is None else config.password_path(agency)
    return secrets.token_urlsafe(18) if path is None else ensure_password_file(path)[0]


# What the gateway publishes (gateway/app/deliveries.py), for tests that play the gateway.

def declaration(goods: Sequence[tuple[str, str | None, Sequence[str]]] = (("0303.55", "NO",
                                                                           ("861",)),),
                *, number: str = "DEC-1", value_usd: str = "1000", documents: Sequence[str] = (),
                function: str = "original") -> CustomsDeclaration:
    """A canonical declaration: one goods item per (commodity code, origin, document codes),
    each worth ``value_usd``; ``documents`` on the declaration itself."""
    return CustomsDeclaration.model_validate({
        "source": {"syntax": "EDIFACT", "message_type": "CUSDEC", "release": "D96B",
                   "sender": "VANA", "recipient": "SWGATEWAY", "interchange_reference": "IC1",
                   "message_reference": "1"},
        "declaration_number": number, "document_code": "929", "function": function,
        "documents": [{"code": c, "number": f"D-{c}"} for c in documents],
        "goods_items": [{
            "item_number": str(n), "commodity_code": code, "country_of_origin": origin,
            "amounts": [{"qualifier": "40", "value": Decimal(value_usd), "currency": "USD"}],
            "documents": [{"code": c, "number": f"D-{n}-{c}"} for c in docs]}
            for n, (code, origin, docs) in enumerate(goods, start=1)],
    })


def delivery(message: Any, *, agency: str = "customs", submission: int = 1,
             position: int = 1, role: str = "deliver", aeo: bool = False) -> Delivery:
    """The Delivery the SDK reads from what the gateway publishes."""
    return Delivery(agency=agency, message_id=delivery_id(submission, position, agency),
                    correlation_id=f"swg-{submission}-{position}", type=message.kind,
                    role=role, aeo=aeo, partner="van-a",
                    headers=_headers(message, agency, role, aeo, submission), message=message)


def amqp_delivery(message: Any, *, agency: str = "customs", submission: int = 1,
                  position: int = 1, role: str = "deliver", aeo: bool | None = False,
                  body: bytes | None = None) -> aio_pika.Message:
    """The AMQP message the gateway publishes to ``agency`` (``aeo=None``: no such header)."""
    headers = _headers(message, agency, role, aeo, submission)
    if aeo is None:
        del headers["aeo"]
    return aio_pika.Message(
        body=message.model_dump_json().encode() if body is None else body,
        message_id=delivery_id(submission, position, agency),
        correlation_id=f"swg-{submission}-{position}", type=message.kind,
        content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        headers=headers)


def _headers(message: Any, agency: str, role: str, aeo: bool | None,
             submission: int) -> dict[str, Any]:
    return {"agency": agency, "role": role, "partner": "van-a",
            "message_type": message.source.message_type, "release": message.source.release,
            "interchange_ref": message.source.interchange_reference,
            "submission_id": submission, "aeo": aeo}
