"""Random samples that decide the same every time for one delivery: the draw is a hash of the
rules' seed and the delivery's ``message_id`` (stable across redeliveries and re-publishes),
so a redelivery, even one the journal missed, is sampled alike; changing the seed draws anew."""

from __future__ import annotations

import datetime as dt
import hashlib

_SCALE = float(2**64)


def draw(seed: str, message_id: str) -> float:
    """A number in [0, 1), uniform over deliveries, fixed for (seed, message_id)."""
    digest = hashlib.sha256(f"{seed}\0{message_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def sampled(seed: str, message_id: str, rate: float) -> bool:
    """Whether the delivery falls in a sample of ``rate`` (0: never, 1: always)."""
    return draw(seed, message_id) < rate


def agency_reference(prefix: str, message_id: str, day: dt.date) -> str:
    """The agency's own number for a declaration, e.g. ``CUS-20261122-3F9A0C1B``: the day it
    was registered and a digest of the delivery (the same for every redelivery)."""
    digest = hashlib.sha256(message_id.encode()).hexdigest()[:8].upper()
    return f"{prefix}-{day:%Y%m%d}-{digest}"
