"""``gateway agencies provision`` without a broker to manage: the permissions it asks for, what
it tells an operator to run by hand when neither rabbitmqctl nor the management API works, and
what it sends the management API (an HTTP server standing in for RabbitMQ's plugin, which this
machine does not run; tests/integration/test_agency_provision.py provisions the real broker
with rabbitmqctl)."""

from __future__ import annotations

import base64
import io
import re
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.app.provision import default_management_url, grants_for, provision
from gateway.config.load import GatewayConfig, load_config
from tests.unit.test_config import demo_config

#: Nothing listens there: the agencies' logins cannot be tried, and are not held against us.
CLOSED_AMQP = "amqp://admin:s3cret@127.0.0.1:1/prod%2Fvhost"


def config_in(tmp_path: Path) -> GatewayConfig:
    demo_config(tmp_path)
    agencies = tmp_path / "agencies.yaml"
    agencies.write_text(agencies.read_text().replace("../../var/demo/agencies/", "secrets/"))
    return load_config(tmp_path / "gateway.yaml", environ={"GATEWAY_AMQP_URL": CLOSED_AMQP})


def test_an_agency_may_read_its_queue_and_answer_only_as_itself(tmp_path: Path) -> None:
    grants = grants_for(config_in(tmp_path), "customs")
    assert grants.vhost == "prod/vhost"
    assert (grants.configure, grants.write, grants.read) == (
        "^$", r"^(?:gateway\.responses|gateway\.licences)$", r"^agency\.customs$")
    assert (grants.exchanges, grants.topic_write, grants.topic_read) == (
        ("gateway.responses", "gateway.licences"), "^customs$", "^$")
    for pattern, name in ((grants.write, "gateway.responses"), (grants.write, "gateway.licences"),
                          (grants.read, "agency.customs")):
        assert re.fullmatch(pattern, name)
        assert not re.search(pattern, name.replace(".", "x"))


async def test_with_no_way_to_manage_the_broker_it_says_what_to_run(tmp_path: Path) -> None:
    config = config_in(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    code = await provision(config, out, err, rabbitmqctl=str(tmp_path / "no-rabbitmqctl"),
                           management_url="http://127.0.0.1:1")
    assert code == 1
    told = err.getvalue()
    assert "not on the PATH" in told and "http://127.0.0.1:1/api/users" in told
    secret = tmp_path / "secrets" / "customs.password"
    assert f"rabbitmqctl add_user customs < {secret}" in told
    assert ("rabbitmqctl set_permissions -p prod/vhost customs '^$' "
            r"'^(?:gateway\.responses|gateway\.licences)$' '^agency\.customs$'") in told
    assert "rabbitmqctl set_topic_permissions -p prod/vhost customs gateway.responses " \
           "'^customs$' '^$'" in told
    # The password files exist already (0600), and no password is ever shown.
    for code_ in ("customs", "quarantine", "port"):
        path = tmp_path / "secrets" / f"{code_}.password"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_text().strip() not in told + out.getvalue()


class FakeManagement:
    """The management API's user and permission endpoints, recorded."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {"guest": {"name": "guest",
                                                            "tags": ["administrator"]}}
        self.calls: list[tuple[str, str, Any]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        expected = "Basic " + base64.b64encode(b"admin:s3cret").decode()
        if request.headers.get("Authorization") != expected:
            return web.Response(status=401)
        body = await request.json() if request.can_read_body else None
        path = request.raw_path
        self.calls.append((request.method, path, body))
        if path == "/api/users":
            return web.json_response(list(self.users.values()))
        name = path.removeprefix("/api/users/")
        if request.method == "GET":
            found = self.users.get(name)
            return web.json_response(found) if found else web.Response(status=404)
        if request.method == "PUT" and path.startswith("/api/users/"):
            created = name not in self.users
            self.users[name] = {"name": name, "tags": [], **(body or {})}
            return web.Response(status=201 if created else 204)
        return web.Response(status=201)


@pytest.fixture
async def management() -> AsyncIterator[tuple[FakeManagement, str]]:
    fake = FakeManagement()
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_without_rabbitmqctl_it_uses_the_management_api(
        tmp_path: Path, management: tuple[FakeManagement, str]) -> None:
    fake, url = management
    config = config_in(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    assert await provision(config, out, err, management_url=url,
                           rabbitmqctl=str(tmp_path / "none")) == 0, err.getvalue()
    password = (tmp_path / "secrets" / "customs.password").read_text().strip()
    assert ("PUT", "/api/users/customs", {"password": password, "tags": ""}) in fake.calls
    assert ("PUT", "/api/permissions/prod%2Fvhost/customs", {
        "configure": "^$", "write": r"^(?:gateway\.responses|gateway\.licences)$",
        "read": r"^agency\.customs$",
    }) in fake.calls
    assert ("PUT", "/api/topic-permissions/prod%2Fvhost/customs", {
        "exchange": "gateway.responses", "write": "^customs$", "read": "^$"}) in fake.calls
    assert ("PUT", "/api/topic-permissions/prod%2Fvhost/customs", {
        "exchange": "gateway.licences", "write": "^customs$", "read": "^$"}) in fake.calls
    assert "customs: user 'customs' created" in out.getvalue()
    # Again: the same state (the same passwords, set again: the logins could not be tried).
    state = dict(fake.users)
    again = io.StringIO()
    assert await provision(config, again, err, management_url=url,
                           rabbitmqctl=str(tmp_path / "none")) == 0
    assert fake.users == state
    assert "customs: user 'customs' updated" in again.getvalue()
    assert (tmp_path / "secrets" / "customs.password").read_text().strip() == password


def test_the_management_api_is_looked_for_on_the_brokers_host() -> None:
    assert default_management_url("amqp://u:p@mq.example:5671/v") == "http://mq.example:15672"
    assert default_management_url("amqp://u:p@[::1]/") == "http://[::1]:15672"



async def test_rabbitmqctl_gets_each_password_on_its_standard_input(tmp_path: Path) -> None:
    """Arguments are visible to every user of the host (``ps``): a password goes to
    rabbitmqctl's standard input, which add_user and change_password read when the password
    is left off the command line.  (A script stands in for rabbitmqctl and records what it
    got; tests/integration/test_agency_provision.py logs in with what the real one set.)"""
    log = tmp_path / "calls"
    script = tmp_path / "rabbitmqctl"
    script.write_text(f"""#!/bin/sh
echo "ARGS $*" >> {log}
case "$*" in *add_user*|*change_password*) read -r line; echo "STDIN $line" >> {log};; esac
case "$*" in *list_users*) echo '[{{"user": "port", "tags": ["administrator"]}}]';; esac
""")
    script.chmod(0o755)
    config = config_in(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    assert await provision(config, out, err, rabbitmqctl=str(script)) == 0, err.getvalue()
    calls = log.read_text().splitlines()
    passwords = {c: (tmp_path / "secrets" / f"{c}.password").read_text().strip()
                 for c in ("customs", "quarantine", "port")}
    assert f"STDIN {passwords['customs']}" in calls
    assert "ARGS -q add_user -- customs" in calls
    assert "ARGS -q change_password -- port" in calls  # it exists: its password is set
    assert "ARGS -q set_user_tags -- port" in calls  # and it is nobody's administrator
    assert ("ARGS -q set_topic_permissions -p prod/vhost -- quarantine gateway.responses "
            "^quarantine$ ^$") in calls
    arguments = "\n".join(c for c in calls if c.startswith("ARGS"))
    assert not any(p in arguments for p in passwords.values())
