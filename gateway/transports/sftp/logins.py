"""Connections that have not logged in yet: where each comes from (``source_block``) and which
one goes when too many log in at once (``Startups``: OpenSSH's MaxStartups and
PerSourceMaxStartups).  The policy alone; listener.py applies it to connections."""

from __future__ import annotations

import ipaddress
import itertools
import secrets
from collections.abc import Callable
from typing import Generic, TypeVar

from gateway.config.settings import SftpSettings

T = TypeVar("T")


def source_block(peer: object, settings: SftpSettings) -> str:
    """The address block a connection comes from, as the per-source limit counts it: an IPv4
    address (``per_source_prefix_ipv4``, /32), an IPv6 /64 (``per_source_prefix_ipv6``: one
    host may hold all of it and pick any address in it, RFC 8981), an IPv4-mapped IPv6
    address as its IPv4 address (a dual-stack listener sees IPv4 peers so)."""
    host = str(peer[0]) if isinstance(peer, tuple) and peer else ""
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = settings.per_source_prefix_ipv4 if address.version == 4 \
        else settings.per_source_prefix_ipv6
    return str(ipaddress.ip_network((address, prefix), strict=False))


class Startups(Generic[T]):
    """Connections that have not logged in yet, by source: OpenSSH's PerSourceMaxStartups and
    MaxStartups start:rate:full, with one change.  When a connection has to go (beyond
    ``max_unauthenticated``, or at random beyond ``unauthenticated_drop_start``), it is the
    newest of the source that holds the most, not always the newcomer: one host that holds
    every slot (idle sockets cost it nothing) loses its newest to each partner that comes from
    elsewhere, and its own newcomers are refused.  Only many sources holding one slot each can
    still crowd partners out, as with sshd, each slot for ``banner_timeout_seconds`` (or
    ``login_timeout_seconds`` once it sent a banner).  Connections already logged in are not
    counted here: a partner's sessions are never touched by a flood."""

    def __init__(self, settings: SftpSettings,
                 chance: Callable[[int], int] = secrets.randbelow) -> None:
        self._full = settings.max_unauthenticated
        self._start = min(settings.unauthenticated_drop_start, self._full)
        self._rate = settings.unauthenticated_drop_rate
        self._per_source = settings.max_unauthenticated_per_source
        self._chance = chance  # n -> a number in [0, n), uniformly (tests fix it)
        self._arrivals = itertools.count()
        self._held: dict[str, list[tuple[int, T]]] = {}  # source -> (arrival, connection)
        self.count = 0

    def held(self, source: str) -> int:
        return len(self._held.get(source, ()))

    def arrive(self, source: str, newcomer: T) -> tuple[T, str] | None:
        """Count ``newcomer`` from ``source``: the connection to drop now (the newcomer or
        another, no longer counted) and the limit that drops it, or None."""
        if self.held(source) >= self._per_source:
            return newcomer, "max_unauthenticated_per_source"
        existing = self.count
        self._held.setdefault(source, []).append((next(self._arrivals), newcomer))
        self.count += 1
        if not self._drops(existing):
            return None
        return self._drop_newest_of_largest(), "max_unauthenticated"

    def leave(self, source: str, connection: T) -> None:
        """``connection`` logged in or is gone (again: nothing happens)."""
        held = self._held.get(source, [])
        for index, (_, counted) in enumerate(held):
            if counted is connection:
                del held[index]
                self.count -= 1
                break
        if not held:
            self._held.pop(source, None)

    def _drops(self, existing: int) -> bool:
        """Whether one more beside ``existing`` makes one go: never below start, at random
        from start (rate percent) rising linearly to always at full (sshd's drop_connection)."""
        if existing >= self._full:
            return True
        if existing < self._start:
            return False
        percent = self._rate + (100 - self._rate) * (existing - self._start) \
            // (self._full - self._start)
        return self._chance(100) < percent

    def _drop_newest_of_largest(self) -> T:
        """The newest connection of the source holding the most (of those, the one whose
        newest came last: the newcomer's own source when it is one of them)."""
        source = max(self._held, key=lambda held: (len(self._held[held]),
                                                   self._held[held][-1][0]))
        _, connection = self._held[source][-1]
        self.leave(source, connection)
        return connection
