"""The processor's pause of the cyclic garbage collector."""

from __future__ import annotations

import gc

import pytest

from gateway.app.memory import cyclic_gc_paused, without_cyclic_gc


def test_the_collector_runs_again_after_the_last_of_nested_pauses() -> None:
    assert gc.isenabled()
    with cyclic_gc_paused():
        assert not gc.isenabled()
        with cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()


def test_a_failing_submission_does_not_leave_the_collector_paused() -> None:
    def fails() -> None:
        assert not gc.isenabled()
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        without_cyclic_gc(fails)()
    assert gc.isenabled()


def test_a_collector_paused_before_stays_paused() -> None:
    gc.disable()
    try:
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
