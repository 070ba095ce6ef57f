"""The Routing pages (issue 14, parts 2 and 3): the table in force with each rule's hits, the
history of versions with their diffs and who changed what, and the maker-checker change: one
admin proposes a whole routing.yaml (checked as ``gateway routes check`` does, replayed over
stored traffic as ``gateway routes diff`` does), another approves it (or anyone rejects it),
and only then is routing.yaml written atomically and reloaded through the validated path.

Each decision locks its proposal (SELECT ... FOR UPDATE), checks its state and writes the
change and its audit row in one transaction: a double click or a replayed POST decides
nothing twice.  The application parts come in through console.routing_desk (the console may
not import gateway.app)."""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.console.guard import VISITOR, see_other
from gateway.console.pages import client_of, positive_id
from gateway.console.routing_desk import Applied, RoutingDesk, RoutingFile
from gateway.errors import ConfigError, QueryRefused
from gateway.pipeline.routing_diff import SAMPLE, RoutingDiff
from gateway.store import audit
from gateway.store import routing_proposals as proposals

Render = Callable[..., web.Response]
#: The replay's days when the form does not say, and the most it may say.
DEFAULT_DAYS = 7
MAX_DAYS = 31
#: Versions in the history, proposals in the list.
HISTORY = 20
PROPOSALS = 20
#: References kept in a stored replay per agency (the counts are whole).
STORED_SAMPLE = 20


@dataclass(frozen=True, slots=True)
class DiffLine:
    kind: str  # "add", "remove", "hunk" or "same"
    text: str


def text_diff(before: str, after: str) -> list[DiffLine]:
    """A unified diff of two routing.yaml texts, line by line, for the page to colour."""
    kinds = {"+": "add", "-": "remove", "@": "hunk", " ": "same"}
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), "before", "after",
                                 lineterm="", n=2)
    return [DiffLine(kinds.get(line[:1], "same"), line) for line in lines
            if not line.startswith(("--- before", "+++ after"))]


def normalised(text: str) -> str:
    """A textarea's value as the browser posts it (CR LF line ends: HTML, form submission)
    put back into the file's line ends."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def replay_json(diff: RoutingDiff, days: int) -> dict[str, Any]:
    """What is stored with a proposal and shown to its approver."""
    def side(changes: dict[str, list[str]]) -> dict[str, Any]:
        return {agency: {"count": len(refs), "sample": refs[:STORED_SAMPLE]}
                for agency, refs in changes.items()}
    return {"days": days, "replayed": diff.replayed, "gained": side(diff.gained),
            "lost": side(diff.lost), "unroutable": {"count": len(diff.unroutable),
                                                    "sample": diff.unroutable[:STORED_SAMPLE]}}


def days_of(text: str | None) -> int | None:
    """The form's days: 1 to MAX_DAYS; empty is the default; anything else is None."""
    if text is None or not text.strip():
        return DEFAULT_DAYS
    value = positive_id(text.strip())
    return None if value is None else min(value, MAX_DAYS)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class RoutingPages:
    def __init__(self, pool: Any, render: Render, desk: RoutingDesk | None) -> None:
        self._pool = pool
        self._render = render
        self._desk = desk

    # --- reading ------------------------------------------------------------------------

    async def routing(self, request: web.Request) -> web.Response:
        in_force = None if self._desk is None else self._desk.in_force()
        hits_problem = ""
        async with self._pool.acquire() as connection:
            versions = await proposals.versions(connection, HISTORY)
            previous = None if not versions else await proposals.applied_before(
                connection, versions[-1].id)
            open_and_recent = await proposals.recent(connection, PROPOSALS)
            try:
                hits = await proposals.rule_counts(connection)
            except QueryRefused as exc:
                hits, hits_problem = {}, str(exc)
        history = _history(versions, previous)
        version_in_force = None if in_force is None else in_force[0]
        return self._render(request, "routing.html", in_force=in_force, hits=hits,
                            hits_problem=hits_problem, versions=history,
                            proposals=open_and_recent, version_in_force=version_in_force,
                            entry=next((e for e in history
                                        if e.version.id == version_in_force), None))

    async def routing_proposal(self, request: web.Request) -> web.Response:
        proposal_id = positive_id(request.query.get("id"))
        if proposal_id is None:
            return self._render(request, "refused.html", status=400,
                                reason="Name a proposal: /routing/proposal?id=N")
        async with self._pool.acquire() as connection:
            proposal = await proposals.get(connection, proposal_id)
        if proposal is None:
            return self._render(request, "refused.html", status=404,
                                reason=f"There is no routing proposal {proposal_id}")
        message = ""
        if proposal.state == "proposed" and self._desk is not None:
            try:
                stale = (await self._desk.read()).sha256 != proposal.base_sha256
            except ConfigError as exc:
                stale, message = False, f"routing.yaml cannot be read now: {exc}"
            if stale:
                message = ("routing.yaml has changed since this proposal was made: approving "
                           "it would supersede it. Propose again from the file as it is now.")
        return self._proposal_page(request, proposal, message)

    def _proposal_page(self, request: web.Request, proposal: proposals.Proposal,
                       message: str = "", status: int = 200, problems: tuple[str, ...] = ()
                       ) -> web.Response:
        return self._render(request, "routing_proposal.html", status=status,
                            proposal=proposal, diff=text_diff(proposal.base_body, proposal.body),
                            replay=proposal.replay, message=message, problems=problems,
                            sample=SAMPLE)

    # --- proposing ----------------------------------------------------------------------

    async def routing_propose_form(self, request: web.Request) -> web.Response:
        desk = self._desk
        if desk is None:
            return self._unavailable(request)
        try:
            current = await desk.read()
        except ConfigError as exc:
            return self._form(request, "", str(DEFAULT_DAYS), problems=(str(exc),), status=503)
        return self._form(request, current.text, str(DEFAULT_DAYS))

    async def routing_propose(self, request: web.Request) -> web.Response:
        desk = self._desk
        if desk is None:
            return self._unavailable(request)
        form = await request.post()
        text = normalised(str(form.get("routing_yaml", "")))
        days_text = str(form.get("days", ""))
        days = days_of(days_text)
        if days is None:
            return self._form(request, text, days_text, status=400, problems=(
                f"Days: a whole number from 1 to {MAX_DAYS}.",))
        if not text.strip():
            return self._form(request, text, days_text, status=400,
                              problems=("Give the whole routing.yaml text.",))
        try:
            current = await desk.read()
        except ConfigError as exc:
            return self._form(request, text, days_text, status=503, problems=(str(exc),))
        if text == current.text:
            return self._form(request, text, days_text, status=400, problems=(
                "This is routing.yaml as it is: there is nothing to change.",))
        checked = await desk.check(text)
        if checked.table is None:
            return self._form(request, text, days_text, status=400, problems=checked.errors,
                              checked=True)
        diff = await desk.replay(current.text, text, days)
        return await self._store(request, text, current, days, diff)

    async def _store(self, request: web.Request, text: str, current: RoutingFile, days: int,
                     diff: RoutingDiff) -> web.Response:
        visitor = request[VISITOR]
        replay = replay_json(diff, days)
        async with self._pool.acquire() as connection, connection.transaction():
            proposal_id = await proposals.propose(
                connection, body=text, base_sha256=current.sha256, base_body=current.text,
                proposer=visitor.user.name, days=days, replay=replay)
            await audit.record(connection, visitor.audit(
                "routing_proposed", client_of(request), f"routing proposal {proposal_id}",
                base_sha256=current.sha256, sha256=digest(text), days=days,
                replayed=diff.replayed, gained=_counts(diff.gained),
                lost=_counts(diff.lost)))
        return see_other(f"/routing/proposal?id={proposal_id}")

    def _form(self, request: web.Request, text: str, days: str, *, status: int = 200,
              problems: tuple[str, ...] = (), checked: bool = False) -> web.Response:
        return self._render(request, "routing_propose.html", status=status, text=text,
                            days=days, problems=problems, checked=checked, max_days=MAX_DAYS,
                            lines=list(enumerate(text.splitlines(), 1)) if checked else [])

    def _unavailable(self, request: web.Request) -> web.Response:
        return self._render(request, "refused.html", status=503, reason=(
            "Routing changes are made through gateway serve's own console (this console "
            "was started without the routing table's parts)."))

    # --- deciding -----------------------------------------------------------------------

    async def routing_approve(self, request: web.Request) -> web.Response:
        desk = self._desk
        if desk is None:
            return self._unavailable(request)
        proposal_id = positive_id(str((await request.post()).get("proposal", "")))
        if proposal_id is None:
            return self._render(request, "refused.html", status=400,
                                reason="Name the proposal to approve")
        visitor = request[VISITOR]
        written: list[str] = []  # the file's text before, once the proposal's is written
        try:
            async with self._pool.acquire() as connection, connection.transaction():
                await proposals.lock_writes(connection)  # one writer of routing.yaml at once
                proposal = await proposals.get(connection, proposal_id, for_update=True)
                refusal = _refusal(proposal, proposal_id, visitor.user.name, approving=True)
                if refusal is not None:
                    return await self._refused(request, proposal, *refusal)
                assert proposal is not None
                outcome = await self._approve(request, connection, desk, proposal, written)
        except BaseException as exc:
            if written:  # the commit failed after the write: no file change without its record
                await desk.restore(proposal_id, written[0])
            if not isinstance(exc, ConfigError):
                raise
            # routing.yaml unreadable or unwritable: nothing decided
            return await self._after(request, proposal_id, f"Nothing was changed: {exc}", 503)
        if outcome is not None:  # superseded: said on the proposal's page
            return await self._after(request, proposal_id, outcome, 409)
        applied = await desk.apply(proposal_id)
        return await self._after(request, proposal_id, _applied_message(applied),
                                 200 if applied.version is not None else 202)

    async def _approve(self, request: web.Request, connection: Any, desk: RoutingDesk,
                       proposal: proposals.Proposal, written: list[str]) -> str | None:
        """Inside the approval's transaction; the superseding note, or None once written
        (the last step before the commit: a failure before it leaves the file alone)."""
        visitor = request[VISITOR]
        current = await desk.read()
        checked = await desk.check(proposal.body)
        note = None
        if current.sha256 != proposal.base_sha256:
            note = ("routing.yaml has changed since this proposal was made (someone edited "
                    "the file, or another proposal was applied): propose again from the "
                    "file as it is now")
        elif checked.table is None:
            note = "no longer valid: " + "; ".join(checked.errors)
        if note is not None:
            await proposals.decide(connection, proposal.id, "superseded", None, note)
            await audit.record(connection, visitor.audit(
                "routing_superseded", client_of(request), f"routing proposal {proposal.id}",
                note=note, file_sha256=current.sha256))
            return f"Not applied: {note}."
        await proposals.decide(connection, proposal.id, "approved", visitor.user.name)
        others = await proposals.supersede_based_on(
            connection, proposal.base_sha256, proposal.id,
            f"routing proposal {proposal.id} was applied to the same file first")
        await audit.record(connection, visitor.audit(
            "routing_approved", client_of(request), f"routing proposal {proposal.id}",
            proposer=proposal.proposer, sha256=digest(proposal.body),
            base_sha256=proposal.base_sha256, superseded=others))
        await desk.write(proposal.id, proposal.body)
        written.append(current.text)
        return None

    async def routing_reject(self, request: web.Request) -> web.Response:
        proposal_id = positive_id(str((await request.post()).get("proposal", "")))
        if proposal_id is None:
            return self._render(request, "refused.html", status=400,
                                reason="Name the proposal to reject")
        visitor = request[VISITOR]
        async with self._pool.acquire() as connection, connection.transaction():
            proposal = await proposals.get(connection, proposal_id, for_update=True)
            refusal = _refusal(proposal, proposal_id, visitor.user.name, approving=False)
            if refusal is not None:
                return await self._refused(request, proposal, *refusal)
            assert proposal is not None
            await proposals.decide(connection, proposal_id, "rejected", visitor.user.name)
            await audit.record(connection, visitor.audit(
                "routing_rejected", client_of(request), f"routing proposal {proposal_id}",
                proposer=proposal.proposer))
        return see_other(f"/routing/proposal?id={proposal_id}")

    async def _refused(self, request: web.Request, proposal: proposals.Proposal | None,
                       reason: str, status: int) -> web.Response:
        if proposal is None:
            return self._render(request, "refused.html", status=404, reason=reason)
        return self._proposal_page(request, proposal, reason, status)

    async def _after(self, request: web.Request, proposal_id: int, message: str,
                     status: int) -> web.Response:
        async with self._pool.acquire() as connection:
            proposal = await proposals.get(connection, proposal_id)
        if proposal is None:
            return self._render(request, "refused.html", status=404, reason=message)
        return self._proposal_page(request, proposal, message, status)


def _refusal(proposal: proposals.Proposal | None, proposal_id: int, user: str, *,
             approving: bool) -> tuple[str, int] | None:
    """Why this decision cannot be taken (and the status), or None."""
    if proposal is None:
        return f"There is no routing proposal {proposal_id}", 404
    if proposal.state != "proposed":
        return (f"Proposal {proposal_id} is already {proposal.state}"
                + (f" (by {proposal.decider})" if proposal.decider else "")
                + ": nothing was changed.", 409)
    if approving and proposal.proposer.lower() == user.lower():
        return ("Maker-checker: a proposal is approved by another admin, never by the one "
                "who proposed it. Nothing was changed.", 403)
    return None


def _applied_message(applied: Applied) -> str:
    if applied.version is not None:
        return f"Approved: routing.yaml written and version {applied.version} is in force."
    if applied.refused:
        return ("Approved and written, but the reload refused the table (see the routing "
                "history for why); the previous table keeps routing.")
    return ("Approved and written; the reload has not judged the file yet (it waits until "
            "routing.yaml stays unchanged): see the routing history in a moment.")


def _counts(changes: dict[str, list[str]]) -> dict[str, int]:
    return {agency: len(references) for agency, references in changes.items()}


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    version: proposals.VersionEntry
    against: int | None
    diff: list[DiffLine]

    @property
    def origin(self) -> str:
        v = self.version
        if v.proposal is not None:
            return (f"console proposal {v.proposal}: proposed by {v.proposer}, "
                    f"approved by {v.decider}")
        return "edited in routing.yaml directly"


def _history(versions: list[proposals.VersionEntry],
             previous: tuple[int, str] | None) -> list[HistoryEntry]:
    """Each version with its diff against the applied version before it (newest first)."""
    entries: list[HistoryEntry] = []
    for position, version in enumerate(versions):
        older = next(((v.id, v.body) for v in versions[position + 1:]
                      if v.status == "applied"), previous)
        entries.append(HistoryEntry(version, None if older is None else older[0],
                                    [] if older is None else text_diff(older[1], version.body)))
    return entries
