"""Compiled mappings: a message -> its canonical message, and back for the kinds a mapping
``renders`` (an agency's CustomsResponse -> CUSRES, ApplicationError -> APERAK)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast
from zoneinfo import ZoneInfo

from gateway.catalog.catalog import CompiledMessage
from gateway.model.arranged import Arranged
from gateway.model.canonical import Canonical, CanonicalMessage
from gateway.model.edifact import Interchange, Message
from gateway.pipeline.mapping.compiled import (
    Draft,
    ObjectField,
    ReadContext,
    emit,
    emit_text,
)
from gateway.pipeline.mapping.extract import Extractor
from gateway.pipeline.mapping.xml_read import CompiledXmlMapping
from gateway.pipeline.validate import arrange, segment_patterns
from gateway.wire.edifact.writer import OutSegment, Writer


@dataclass(frozen=True)
class CompiledMapping:
    name: str
    message: str
    release: str
    model: type[Canonical]
    root: ObjectField
    #: The message structure of the directory release the file was compiled against.
    structure: CompiledMessage
    renders: bool
    zone: ZoneInfo

    def read(self, interchange: Interchange, message: Message,
             arranged: Arranged | None = None) -> CanonicalMessage:
        """The canonical message; MappingError (BadValue, MissingValue) when the partner's
        message lacks or garbles what the canonical kind needs, pydantic's ValidationError
        when a value breaks the model's own constraints.  ``arranged``: what the validator
        found (the message in its groups, the values it matched), so as not to do it again."""
        tree = arranged.root if arranged is not None else arrange(message.segments,
                                                                   self.structure)
        delimiters = interchange.delimiters
        ctx = ReadContext(self.zone,
                          Extractor(segment_patterns(self.structure, delimiters),
                                    delimiters.release,
                                    arranged.flat if arranged is not None else None))
        values = self.root.read_object(tree, ctx)
        header = interchange.header
        values["source"] = {  # as Source; a dict is validated once, with the rest
            "syntax": "EDIFACT", "message_type": message.identifier.type,
            "release": message.identifier.directory, "sender": header.sender.id,
            "recipient": header.recipient.id, "interchange_reference": header.control_reference,
            "message_reference": message.reference}
        # The model is one of the union's (compile checks the kind against KINDS).
        return cast("CanonicalMessage", self.model.model_validate(values))

    def render(self, canonical: Canonical, reference: str) -> list[OutSegment]:
        """UNH .. UNT of one message carrying ``canonical`` (of this mapping's kind: the caller
        picked the mapping by it); ``reference`` is its 0062."""
        body = emit(self._draft(canonical), self.structure.spec.content)
        return [self._unh(reference), *body, ("UNT", [str(len(body) + 2), reference])]

    def render_text(self, canonical: Canonical, reference: str, writer: Writer) -> list[str]:
        """``render``'s segments as ``writer`` writes them (without the lists between)."""
        body = emit_text(self._draft(canonical), self.structure.spec.content, writer)
        return [writer.segment(*self._unh(reference)), *body,
                writer.segment("UNT", [str(len(body) + 2), reference])]

    def _draft(self, canonical: Canonical) -> Draft:
        draft = Draft()
        self.root.write_object(canonical, draft)
        return draft

    def _unh(self, reference: str) -> OutSegment:
        spec = self.structure.spec
        return ("UNH", [reference, [spec.type, spec.version, spec.release, spec.agency]])


@dataclass(frozen=True)
class Mappings:
    """Every compiled mapping, by (message type, release); XML mappings by the registry name
    of their document kind (``DEC-DMS``)."""

    by_message: dict[tuple[str, str], CompiledMapping] = field(default_factory=dict)
    by_xml_schema: dict[str, CompiledXmlMapping] = field(default_factory=dict)
    #: XML mapping files not compiled, each (file, why): their schema is not in the registry
    #: in force (an optional entry whose XSD is absent, or another deployment's).
    xml_skipped: tuple[tuple[str, str], ...] = ()

    def xml_mapping(self, name: str) -> CompiledXmlMapping | None:
        return self.by_xml_schema.get(name)

    def get(self, message_type: str, release: str) -> CompiledMapping | None:
        return self.by_message.get((message_type, release))

    def releases_of(self, message_type: str) -> list[str]:
        return sorted(release for kind, release in self.by_message if kind == message_type)

    def rendered_releases(self, kind: str) -> list[str]:
        return sorted(m.release for m in self.by_message.values()
                      if m.renders and m.model.__name__ == kind)
