"""An AMQP URL naming several brokers, as libpq names several PostgreSQL hosts:
``amqp://user:password@rabbit-1:5672,rabbit-2:5672,rabbit-3:5672/vhost?heartbeat=30``.

Every broker shares the user, virtual host and parameters; each is one node of a RabbitMQ
cluster (issue 16).  ``gateway.bus.topology.connect`` tries them in turn, the one that
answered last first, so a publisher or consumer whose node went down moves to a live one.
aio-pika and aiormq take one host per URL, hence this split."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from gateway.errors import ConfigError


def broker_urls(url: str) -> tuple[str, ...]:
    """One URL per broker ``url`` names, in its order (a one-host URL comes back as is)."""
    parts = urlsplit(url)
    credentials, at, hosts = parts.netloc.rpartition("@")
    if "," not in hosts:
        return (url,)
    found = []
    for host in hosts.split(","):
        if not host.strip() or host != host.strip():
            raise ConfigError(f"the AMQP URL {_shown(url)} has an empty or spaced host in "
                              "its list (write host:port,host:port)")
        found.append(urlunsplit(parts._replace(netloc=f"{credentials}{at}{host}")))
    return tuple(found)


def with_credentials(url: str, credentials: str) -> str:
    """``url`` (every broker it names, its virtual host and parameters) with the user
    information ``credentials`` (``user:password``, already quoted) instead of its own."""
    parts = urlsplit(url)
    hosts = parts.netloc.rpartition("@")[2] or "localhost"
    return urlunsplit(parts._replace(netloc=f"{credentials}@{hosts}", fragment=""))


def _shown(url: str) -> str:
    """``url`` without its user information (errors are logged; passwords never are)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
