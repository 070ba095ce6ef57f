"""Two ways to manage RabbitMQ users and permissions: ``rabbitmqctl`` (root on the broker's
host) and the management plugin's HTTP API.  Both do the same few things for
``gateway agencies provision``; a failure is a BusError saying what was refused."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp

from gateway.errors import BusError

#: rabbitmqctl takes about a second per call; one hanging this long is given up.
CTL_TIMEOUT_SECONDS = 60.0
HTTP_TIMEOUT_SECONDS = 30.0
#: rabbitmqctl's exit code for "the user exists already" (EX_SOFTWARE).
_USER_EXISTS = "already exists"


@dataclass(frozen=True, slots=True)
class Grants:
    """What one broker user may do on one virtual host (RabbitMQ access control: regular
    expressions over resource names, and over routing keys on a topic exchange)."""

    vhost: str
    configure: str
    write: str
    read: str
    exchange: str
    topic_write: str
    topic_read: str
    #: Other topic exchanges the same routing-key rules hold on (the licences exchange).
    more_exchanges: tuple[str, ...] = ()

    @property
    def exchanges(self) -> tuple[str, ...]:
        return (self.exchange, *self.more_exchanges)


class BrokerAdmin(Protocol):
    name: str

    async def users(self) -> dict[str, tuple[str, ...]]:
        """Every user with its tags."""

    async def add_user(self, user: str, password: str) -> bool:
        """Create ``user``; False when it exists already."""

    async def change_password(self, user: str, password: str) -> None: ...

    async def clear_tags(self, user: str) -> None: ...

    async def grant(self, user: str, grants: Grants) -> None:
        """Set the user's permissions and its topic permissions on ``grants.exchange``."""

    async def delete_user(self, user: str) -> None:
        """Delete ``user``; nothing when there is none."""


class RabbitmqCtl:
    """``rabbitmqctl`` on this host (``node``: another node than the default)."""

    name = "rabbitmqctl"

    def __init__(self, executable: str = "rabbitmqctl", node: str | None = None) -> None:
        self._executable = executable
        self._node = node

    def available(self) -> bool:
        return shutil.which(self._executable) is not None

    async def users(self) -> dict[str, tuple[str, ...]]:
        out = await self._run("list_users", "--formatter", "json")
        try:
            rows = json.loads(out)
            return {row["user"]: _tags(row.get("tags")) for row in rows}
        except (ValueError, TypeError, KeyError) as exc:
            raise BusError(f"rabbitmqctl list_users: unexpected output {out[:200]!r}") from exc

    async def add_user(self, user: str, password: str) -> bool:
        # The password is left off the command line (``ps`` shows arguments): rabbitmqctl
        # then reads it as one line from its standard input.
        try:
            await self._run("add_user", "--", user, stdin=password)
        except BusError as exc:
            if _USER_EXISTS in str(exc):
                return False
            raise
        return True

    async def change_password(self, user: str, password: str) -> None:
        await self._run("change_password", "--", user, stdin=password)

    async def clear_tags(self, user: str) -> None:
        await self._run("set_user_tags", "--", user)

    async def grant(self, user: str, grants: Grants) -> None:
        await self._run("set_permissions", "-p", grants.vhost, "--", user, grants.configure,
                        grants.write, grants.read)
        for exchange in grants.exchanges:
            await self._run("set_topic_permissions", "-p", grants.vhost, "--", user,
                            exchange, grants.topic_write, grants.topic_read)

    async def delete_user(self, user: str) -> None:
        try:
            await self._run("delete_user", "--", user)
        except BusError as exc:
            if "does not exist" not in str(exc):
                raise

    async def _run(self, *arguments: str, stdin: str | None = None) -> str:
        command = [self._executable, "-q", *(["-n", self._node] if self._node else []),
                   *arguments]
        shown = " ".join(command[:3 + (2 if self._node else 0)])
        try:
            process = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            data = None if stdin is None else f"{stdin}\n".encode()
            out, err = await asyncio.wait_for(process.communicate(data), CTL_TIMEOUT_SECONDS)
        except (OSError, TimeoutError) as exc:
            raise BusError(f"{shown}: {exc!r}") from exc
        if process.returncode != 0:
            why = (err or out).decode("utf-8", "replace").strip().splitlines()
            raise BusError(f"{shown} failed ({process.returncode}): {' '.join(why)[-300:]}")
        return out.decode("utf-8", "replace")


class ManagementApi:
    """The management plugin's HTTP API at ``url`` (http://host:15672), as ``user``."""

    name = "the management API"

    def __init__(self, url: str, user: str, password: str) -> None:
        self.url = url.rstrip("/")
        credentials = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        self._headers = {"Authorization": f"Basic {credentials}"}  # RFC 7617

    async def users(self) -> dict[str, tuple[str, ...]]:
        rows = await self._call("GET", "/api/users")
        return {row["name"]: _tags(row.get("tags")) for row in rows}

    async def add_user(self, user: str, password: str) -> bool:
        if await self._call("GET", f"/api/users/{_q(user)}", missing_ok=True) is not None:
            return False
        await self._call("PUT", f"/api/users/{_q(user)}", {"password": password, "tags": ""})
        return True

    async def change_password(self, user: str, password: str) -> None:
        await self._call("PUT", f"/api/users/{_q(user)}", {"password": password, "tags": ""})

    async def clear_tags(self, user: str) -> None:
        # PUT /api/users needs a password or hash: keep the user's own.
        found = await self._call("GET", f"/api/users/{_q(user)}")
        await self._call("PUT", f"/api/users/{_q(user)}", {
            "password_hash": found.get("password_hash", ""),
            "hashing_algorithm": found.get("hashing_algorithm", "rabbit_password_hashing_sha256"),
            "tags": ""})

    async def grant(self, user: str, grants: Grants) -> None:
        where = f"{_q(grants.vhost)}/{_q(user)}"
        await self._call("PUT", f"/api/permissions/{where}", {
            "configure": grants.configure, "write": grants.write, "read": grants.read})
        for exchange in grants.exchanges:
            await self._call("PUT", f"/api/topic-permissions/{where}", {
                "exchange": exchange, "write": grants.topic_write,
                "read": grants.topic_read})

    async def delete_user(self, user: str) -> None:
        await self._call("DELETE", f"/api/users/{_q(user)}", missing_ok=True)

    async def _call(self, method: str, path: str, body: dict[str, str] | None = None, *,
                    missing_ok: bool = False) -> Any:
        timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_SECONDS)
        try:
            async with aiohttp.ClientSession(headers=self._headers, timeout=timeout) as session, \
                    session.request(method, self.url + path, json=body) as response:
                if response.status == 404 and missing_ok:
                    return None
                if response.status >= 300:
                    text = (await response.text())[:300]
                    raise BusError(f"{method} {self.url}{path}: HTTP {response.status} {text}")
                return await response.json() if response.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise BusError(f"{method} {self.url}{path}: {exc!r}") from exc


def _q(name: str) -> str:
    return quote(name, safe="")


def _tags(value: object) -> tuple[str, ...]:
    """Tags as RabbitMQ lists them: a list (3.9+) or a comma-separated text."""
    if isinstance(value, list):
        return tuple(str(t) for t in value if t)
    if isinstance(value, str):
        return tuple(t for t in value.replace(",", " ").split() if t)
    return ()
