"""How the gateway runs the pure pipeline on one submission: with Python's cyclic garbage
collector paused.

Reading an interchange creates hundreds of thousands of small objects (segments, their
values, group instances, canonical models) that live until the submission is decided.  The
cyclic collector, triggered by allocations, walks every live object again and again while they
pile up: measured on a 1 MB CUSDEC interchange, validation and mapping each take about twice
as long with it running (``bench/mapping.py``).  None of those objects form reference cycles,
so reference counting frees them all when the outcome is dropped; what cycles other tasks
create meanwhile wait for the collector until the submission is done.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class _Pauses:
    """How many blocks want the collector paused, and whether to resume it after them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.resume = False


_PAUSES = _Pauses()


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic collector for the block (nested and concurrent pauses count: the
    collector runs again when the last one ends, if it ran before the first)."""
    with _PAUSES.lock:
        if _PAUSES.count == 0:
            _PAUSES.resume = gc.isenabled()
            gc.disable()
        _PAUSES.count += 1
    try:
        yield
    finally:
        with _PAUSES.lock:
            _PAUSES.count -= 1
            if _PAUSES.count == 0 and _PAUSES.resume:
                gc.enable()


def without_cyclic_gc(work: Callable[P, R]) -> Callable[P, R]:
    """``work`` run with the cyclic collector paused (for ``asyncio.to_thread``)."""

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with cyclic_gc_paused():
            return work(*args, **kwargs)

    return run
