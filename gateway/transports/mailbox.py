"""Partner mailboxes on disk: ``<root>/<partner>/inbox`` (they upload) and ``outbox`` (we
answer).  Files appear in an outbox atomically and durably: written under a hidden name,
synced, renamed, and the directory synced, so an answer the database records as written
survives a power cut (POSIX fsync(2): a file's data and its directory entry are synced
separately).

Answer names are made from what the partner uploaded, which is hostile (DESIGN rule 6):
``answer_name`` always gives a name every file system takes."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from pathlib import Path

from gateway.errors import TransportError
from gateway.transports.durable import make_folder, sync_folder, write_file

INBOX = "inbox"
OUTBOX = "outbox"
#: Every answer ``NAME`` has its detached signature beside it as ``NAME.p7s``.
SIGNATURE_SUFFIX = ".p7s"
#: The longest name a Linux file system takes (NAME_MAX, in bytes of the UTF-8 name).
NAME_MAX_BYTES = 255
#: Punctuation an answer's name keeps; with letters and digits of any script, what file
#: systems and the partners' tools (Windows ones too) read plainly.
SAFE_PUNCTUATION = frozenset("-_.+=@,~()[]")
#: What stands for each character of an uploaded name that is not kept.
REPLACEMENT = "_"


def _safe(ch: str) -> bool:
    """A letter or digit (Unicode categories L and N: never a control, format, separator or
    surrogate character, nor U+FFFD, which marks bytes that were not UTF-8) or safe
    punctuation."""
    return ch in SAFE_PUNCTUATION or unicodedata.category(ch)[0] in "LN"


def name_refusal(name: str) -> str | None:
    """Why ``name`` is not a safe file name in an outbox, or None when it is."""
    if not name:
        return "it is empty"
    if name.startswith("."):
        return "it starts with a dot (hidden, or '.' and '..')"
    unsafe = next((ch for ch in name if not _safe(ch)), None)
    if unsafe is not None:
        return f"it holds the character U+{ord(unsafe):04X}"
    if len(name.encode("utf-8")) > NAME_MAX_BYTES:
        return f"it is longer than {NAME_MAX_BYTES} bytes"
    return None


def delivery_refusal(partner_id: str, file_name: str) -> str | None:
    """Why no file goes into this partner's outbox under this name, on disk or in the
    database (``sftp.mailbox_store``), or None: both must be safe names."""
    for name, what in ((partner_id, "partner id"), (file_name, "outbox file name")):
        refusal = name_refusal(name)
        if refusal is not None:
            return f"refusing {what} {name!r}: {refusal}"
    return None


def answer_name(uploaded: str, submission_id: int, suffix: str) -> str:
    """The outbox name of the answer to a submission: ``<uploaded>.<submission id>.<suffix>``,
    with what cannot be kept of the uploaded name given up first.

    Each character of ``uploaded`` (NFC-normalised) that is not safe becomes ``_``, and so does
    a leading dot (never hidden); the result is cut, at a character boundary, to what fits in
    NAME_MAX_BYTES beside ``.<id>.<suffix>``, which is always kept whole so the name always
    names its submission.  An empty upload name gives ``<id>.<suffix>``.  A safe upload name
    that fits is kept as it is (in NFC)."""
    tail = f"{submission_id}.{suffix}"
    if submission_id < 0 or name_refusal(tail) is not None:
        raise ValueError(f"not an answer's id and suffix: {submission_id!r}, {suffix!r}")
    stem = "".join(ch if _safe(ch) else REPLACEMENT
                   for ch in unicodedata.normalize("NFC", uploaded))
    if stem.startswith("."):
        stem = REPLACEMENT + stem[1:]
    # Room for the signature's suffix too: NAME.p7s must fit as well as NAME.
    budget = NAME_MAX_BYTES - len(SIGNATURE_SUFFIX) - len(tail.encode("utf-8")) - 1
    stem = stem.encode("utf-8")[:max(budget, 0)].decode("utf-8", errors="ignore")
    return f"{stem}.{tail}" if stem else tail


class Mailboxes:
    def __init__(self, root: Path) -> None:
        self.root = root

    def home(self, partner_id: str) -> Path:
        return self.root / partner_id

    def prepare(self, partner_ids: tuple[str, ...]) -> None:
        """Create every partner's inbox and outbox (idempotent, durable)."""
        for partner_id in partner_ids:
            for folder in (INBOX, OUTBOX):
                make_folder(self.home(partner_id) / folder)

    def deliver(self, partner_id: str, file_name: str, body: bytes) -> Path:
        """Write a file into a partner's outbox; the same name twice leaves one file.  Only a
        safe name is written (see ``answer_name``): anything else is refused, whoever asks."""
        (outcome,) = self.deliver_many([(partner_id, file_name, body)])
        if isinstance(outcome, TransportError):
            raise outcome
        return outcome

    def deliver_many(self, files: Sequence[tuple[str, str, bytes]]
                     ) -> list[Path | TransportError]:
        """``deliver`` for each (partner id, file name, body), each file fsynced and each
        outbox folder once for all its files (the fsync that makes the names durable): what
        a batch of answers costs in fsyncs is about one per file, not two."""
        outcomes: list[Path | TransportError] = []
        folders: dict[Path, list[int]] = {}
        for partner_id, file_name, body in files:
            try:
                target = self._write(partner_id, file_name, body)
            except TransportError as exc:
                outcomes.append(exc)
                continue
            folders.setdefault(target.parent, []).append(len(outcomes))
            outcomes.append(target)
        for folder, written in folders.items():
            try:
                sync_folder(folder)
            except OSError as exc:
                failure = TransportError(f"cannot sync {folder}: {exc.strerror}")
                failure.__cause__ = exc
                for index in written:
                    outcomes[index] = failure
        return outcomes

    def _write(self, partner_id: str, file_name: str, body: bytes) -> Path:
        refusal = delivery_refusal(partner_id, file_name)
        if refusal is not None:
            raise TransportError(refusal)
        outbox = self.home(partner_id) / OUTBOX
        target = outbox / file_name
        try:
            make_folder(outbox)
            write_file(target, body, sync=False)
        except OSError as exc:
            raise TransportError(f"cannot write {target}: {exc.strerror}") from exc
        return target


