"""Hostile bytes for Hypothesis: a known-good message changed a little (bytes replaced,
flipped, deleted, inserted, or the rest cut off), so that the change reaches deep into the
structure instead of failing at its first byte as random bytes do."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[bytes]) -> bytes:
    """One of ``seeds`` with one to four changes."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(("replace", "flip", "delete", "insert", "cut")))
        if action == "replace":
            data[position] = draw(st.integers(0, 255))
        elif action == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif action == "delete":
            del data[position:position + draw(st.integers(1, 8))]
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[position:]
        if not data:
            break
    return bytes(data)
