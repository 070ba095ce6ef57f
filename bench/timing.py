"""What every benchmark here measures with: best-of wall time and peak traced memory."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable


def best_seconds(work: Callable[[], object], runs: int) -> float:
    """The fastest of ``runs`` runs: the least disturbed by the rest of a shared machine."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_bytes(work: Callable[[], object]) -> int:
    """Peak memory allocated by Python while ``work`` runs (tracemalloc, a run of its own)."""
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
