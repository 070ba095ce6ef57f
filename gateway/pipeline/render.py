"""The way back: a canonical answer (an agency's CustomsResponse, an ApplicationError) written
as an EDIFACT interchange through the mapping that ``renders`` its kind and release.

The canonical message's ``source`` says what to write: message type and release (CUSRES D96B
to answer a D96B declaration), sender and recipient (UNB), interchange and message references
(UNB 0020, UNH 0062).
"""

from __future__ import annotations

import datetime as dt

from gateway.errors import RenderError
from gateway.model.canonical import Canonical
from gateway.model.edifact import PartyId
from gateway.pipeline.contrl import AckEnvelope, write_written, writer_for
from gateway.pipeline.mapping.mapping import Mappings

#: Rendered interchanges use ISO 8859-1 (UNOC): agency texts are not limited to UNOA/UNOB.
SYNTAX_IDENTIFIER = "UNOC"


def render_interchange(canonical: Canonical, mappings: Mappings, prepared: dt.datetime,
                       syntax_version: str = "3", *, sender: PartyId | None = None,
                       recipient: PartyId | None = None) -> bytes:
    """``sender`` and ``recipient`` (with their UNB code qualifiers) default to the ids in
    ``canonical.source``, without qualifiers."""
    source = canonical.source
    kind = type(canonical).__name__
    mapping = mappings.get(source.message_type, source.release)
    if mapping is None or not mapping.renders or mapping.model is not type(canonical):
        releases = ", ".join(mappings.rendered_releases(kind)) or "none"
        raise RenderError(f"no mapping renders {kind} as {source.message_type} "
                          f"{source.release} (it renders in: {releases})")
    if syntax_version not in ("3", "4"):
        raise RenderError(f"syntax version {syntax_version!r}: 3 or 4")
    # Written straight from the mapping's drafts: what write_interchange makes of
    # mapping.render's segments, without the lists between (tests/unit/test_render_pinned.py).
    body = mapping.render_text(canonical, source.message_reference,
                               writer_for(SYNTAX_IDENTIFIER, syntax_version))
    envelope = AckEnvelope(sender=sender or PartyId(source.sender),
                           recipient=recipient or PartyId(source.recipient),
                           control_reference=source.interchange_reference, prepared=prepared)
    return write_written(envelope, SYNTAX_IDENTIFIER, syntax_version, body, messages=1)
