"""Container numbers as the port alarms compare them (ISO 6346: owner code of three letters,
category identifier U, J, Z or R, six-digit serial number and a check digit).

A partner writes one number many ways ("mscu 123456-5", lower case); each is brought to one
spelling here before it is compared or stored, and what is not a container number at all (a
trailer plate, NUL bytes, 4,000 characters) is left out rather than compared (DESIGN rule 6)."""

from __future__ import annotations

import re

_ISO_6346 = re.compile(r"[A-Z]{3}[UJZR][0-9]{7}")
#: What partners put between the parts of a number (ISO 6346 prints it "MSCU 123456 5").
_SEPARATORS = str.maketrans("", "", " -/.")


def container_number(text: str | None) -> str | None:
    """``text`` in the one spelling of ISO 6346, or None when it is not a container number.
    The check digit is not verified: a wrong one is the carrier's typo, and the same typo
    in the declaration and the port's report still names the same box."""
    if text is None or not text.isascii() or len(text) > 20:
        return None
    plain = text.translate(_SEPARATORS).upper()
    return plain if _ISO_6346.fullmatch(plain) else None
