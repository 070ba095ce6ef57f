"""An AMQP URL naming several brokers (issue 16): split per broker, credentials replaced on
every one, never a password in an error."""

from __future__ import annotations

import pytest

from gateway.agency.credentials import agency_url, password_of, user_of, vhost_of
from gateway.config.broker_urls import broker_urls
from gateway.errors import ConfigError
from gateway.logs import redact

CLUSTER = "amqp://gw:s3cret@rabbit-1:5672,rabbit-2:5673,[::1]:5674/swg?heartbeat=30"


def test_one_url_per_broker_with_the_same_user_vhost_and_parameters() -> None:
    assert broker_urls(CLUSTER) == (
        "amqp://gw:s3cret@rabbit-1:5672/swg?heartbeat=30",
        "amqp://gw:s3cret@rabbit-2:5673/swg?heartbeat=30",
        "amqp://gw:s3cret@[::1]:5674/swg?heartbeat=30")
    assert broker_urls("amqp://guest:guest@127.0.0.1:5672/") == (
        "amqp://guest:guest@127.0.0.1:5672/",)
    assert broker_urls("amqp://a,b") == ("amqp://a", "amqp://b")


@pytest.mark.parametrize("url", ["amqp://u:hush@a:1,,b:2/", "amqp://u:hush@a:1, b:2/",
                                 "amqp://u:hush@a:1,/"])
def test_an_empty_or_spaced_broker_is_refused_without_the_password(url: str) -> None:
    with pytest.raises(ConfigError, match="empty or spaced host") as refused:
        broker_urls(url)
    assert "hush" not in str(refused.value)


def test_an_agency_gets_every_broker_with_its_own_credentials() -> None:
    url = agency_url(CLUSTER, "customs", "p@ss:word/")
    assert url == ("amqp://customs:p%40ss%3Aword%2F@rabbit-1:5672,rabbit-2:5673,[::1]:5674"
                   "/swg?heartbeat=30")
    assert (user_of(url), password_of(url), vhost_of(url)) == ("customs", "p@ss:word/", "swg")
    assert [u.split("@")[1] for u in broker_urls(url)] == [
        "rabbit-1:5672/swg?heartbeat=30", "rabbit-2:5673/swg?heartbeat=30",
        "[::1]:5674/swg?heartbeat=30"]
    assert agency_url("amqp://g:g@h", "c", "p") == "amqp://c:p@h"


def test_logs_name_every_broker_and_no_password() -> None:
    assert redact(CLUSTER) == ("amqp://gw:***@rabbit-1:5672,rabbit-2:5673,[::1]:5674/swg"
                               "?heartbeat=30")
