"""``gateway verify FILE [SIGNATURE]``: check an answer against its detached signature
(``FILE.p7s`` by default) and the trust anchors, with the project's own CMS code
(security.verify), and say who signed it when."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path
from typing import TextIO

from gateway.errors import ConfigError, SignatureInvalid
from gateway.security.cms import MAX_SIGNATURE_BYTES
from gateway.security.keys import load_trust_anchors
from gateway.security.verify import Verified, verify_detached
from gateway.transports.mailbox import SIGNATURE_SUFFIX

#: The largest file verified: answers are kilobytes, a CONTRL to a huge interchange megabytes.
MAX_CONTENT_BYTES = 256 * 1024 * 1024


def verify_file(file: Path, signature: Path | None, ca: Path, out: TextIO,
                err: TextIO) -> int:
    """0 and the signer on ``out`` when the signature verifies; 1 and why on ``err`` when
    not.  A file that cannot be read raises ConfigError (the command's exit 2)."""
    signature = signature or Path(f"{file}{SIGNATURE_SUFFIX}")
    anchors = load_trust_anchors(ca)
    content = read_bounded(file, MAX_CONTENT_BYTES)
    signed = read_bounded(signature, MAX_SIGNATURE_BYTES)
    try:
        verified = verify_detached(content, signed, anchors)
    except SignatureInvalid as exc:
        err.write(f"gateway: {file}: the signature {signature} does not verify: {exc}\n")
        return 1
    out.write(describe(file, verified))
    return 0


def describe(file: Path, verified: Verified) -> str:
    return "".join(f"verified: {file} signed by {s.subject} at {_time(s.signed_at)} "
                   f"(certificate sha256 {s.certificate_sha256})\n" for s in verified.signers)


def _time(when: dt.datetime | None) -> str:
    return "an unstated time" if when is None else f"{when:%Y-%m-%dT%H:%M:%SZ}"


def read_bounded(path: Path, limit: int) -> bytes:
    """A regular file of at most ``limit`` bytes (a FIFO would block, a device not end)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise ConfigError(f"{path}: cannot read: not a regular file")
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    finally:
        os.close(descriptor)
    if len(data) > limit:
        raise ConfigError(f"{path}: larger than {limit} bytes, more than is verified")
    return data
