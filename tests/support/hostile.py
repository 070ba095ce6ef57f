"""Hostile shapes of an interchange, each about a given size: what bench/adversarial.py
measures and what the linear-time tests check (DESIGN rule 6: no input makes the work grow
faster than its size)."""

from __future__ import annotations

from collections.abc import Callable

from tests.support.edifact import cusdec_message, interchange

#: A message around one hostile segment: a valid CUSDEC with the segment added to its heading.
Shape = Callable[[int], bytes]


HOSTILE = "@HOSTILE@"


def _around(segment: str, *, syntax: str = "UNOC:3") -> bytes:
    """One CUSDEC D96B whose heading carries ``segment``, in the charset of ``syntax``."""
    message = cusdec_message(extra_heading=[HOSTILE])
    text = interchange([message], sender="DEMOVAN", syntax=syntax).decode("latin-1")
    codec = "utf-8" if syntax.startswith(("UNOW", "UNOY")) else "latin-1"
    return text.replace(HOSTILE, segment).encode(codec)


def release_characters(size: int) -> bytes:
    """`?'` over and over inside one free-text element (the lexer's old quadratic case)."""
    return _around("FTX+AAA+++" + "?'" * (size // 2))


def released_separators(size: int) -> bytes:
    """Every separator released, `??` too, in one element."""
    return _around("FTX+AAA+++" + "?+?:??" * (size // 6))


def long_element(size: int) -> bytes:
    """One element far longer than its an..512."""
    return _around("FTX+AAA+++" + "A" * size)


def many_components(size: int) -> bytes:
    """One element split into a component per character."""
    return _around("FTX+AAA+++" + ":A" * (size // 2))


def many_elements(size: int) -> bytes:
    return _around("FTX+AAA" + "+A" * (size // 2))


def many_segments(size: int) -> bytes:
    """One segment repeated far beyond its maximum."""
    return _around("'".join(["FTX+AAA+++X"] * (size // 12)))


def unknown_segments(size: int) -> bytes:
    """Segments the structure has no place for."""
    return _around("'".join(["ZZZ+1"] * (size // 6)))


def many_messages(size: int) -> bytes:
    """Small messages, each rejected (its trailer count is wrong)."""
    message = cusdec_message(unt_count=99)
    count = max(1, size // sum(len(s) + 2 for s in message))
    # each its own reference (ISO 9735: unique in the interchange; a repeated one is refused)
    return interchange([cusdec_message(str(n), unt_count=99) for n in range(1, count + 1)],
                       sender="DEMOVAN")


def non_ascii_digits(size: int) -> bytes:
    """Arabic-Indic digits where numbers stand, under UNOY (UTF-8)."""
    digits = "٠١٢٣٤٥٦٧٨٩"
    return _around("FTX+AAA+++" + digits * (size // 20), syntax="UNOY:4")


def control_characters(size: int) -> bytes:
    """NUL and other control characters, which no repertoire holds."""
    return _around("FTX+AAA+++" + "\x00\x01\x7f" * (size // 3))


def accepted_release_characters(size: int) -> bytes:
    """Valid declarations, accepted and mapped, whose free texts (C108: five an..70) are
    released separators: the release characters then go the whole way, through the mapping."""
    released = "FTX+AAA+++" + ":".join(["?+?:?'??" * 17] * 5)

    def message(reference: str) -> list[str]:
        return [released if s.startswith("FTX") else s
                for s in cusdec_message(reference, commodity_codes=("0303.55", "8471"))]

    count = max(1, size // sum(len(s) + 2 for s in message("1")))
    # each its own reference (ISO 9735: unique in the interchange; a repeated one is refused)
    return interchange([message(str(n)) for n in range(1, count + 1)], sender="DEMOVAN")


def accepted_many_items(size: int) -> bytes:
    """One valid declaration with as many goods items as the size allows (CUSDEC D96B SG30
    repeats up to 9,999 times): one message, deep in the structure."""
    per_item = 120
    codes = [f"{8400 + n % 99:04d}" for n in range(min(9_999, max(1, size // per_item)))]
    return interchange([cusdec_message(commodity_codes=codes)], sender="DEMOVAN")


SHAPES: dict[str, Shape] = {
    "accepted, released separators": accepted_release_characters,
    "accepted, many goods items": accepted_many_items,
    "release characters ?'": release_characters,
    "released separators ?+?:??": released_separators,
    "one long element": long_element,
    "many components": many_components,
    "many data elements": many_elements,
    "one segment repeated": many_segments,
    "unknown segments": unknown_segments,
    "many rejected messages": many_messages,
    "non-ASCII digits (UNOY)": non_ascii_digits,
    "control characters": control_characters,
}
