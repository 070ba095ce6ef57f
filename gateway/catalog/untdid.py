"""Read the official UN/EDIFACT directory files (UNTDID, as published by UN/CEFACT):
the segment directory (EDSD/TRSD), the message specifications (EDMD/TRMD) and the code lists
(UNCL).  Text in, specs out; the files are read (from the UN zips) by gateway/app/schemas.py.

Change indicators (+ * # | X -) stand beside positions and identifiers; entries marked '-'
(deleted) are left out, everything else (including X, "marked for deletion") is kept.
"""

from __future__ import annotations

import re

from gateway.catalog.specs import (
    ComponentSpec,
    ElementSpec,
    GroupSpec,
    MessageSpec,
    Representation,
    SegmentRef,
    SegmentSpec,
)

_CHANGE = r"[+*#|X-]"
_SEGMENT_HEAD = re.compile(
    rf"^\s*(?:{_CHANGE}{{1,2}}\s+)?([A-Z][A-Z0-9]{{2}})\s{{2,}}([A-Z][A-Z0-9 ,./()&'-]*?)\s*$")
_ELEMENT = re.compile(
    rf"^(\d{{3}})\s*{_CHANGE}{{0,2}}\s+([CSE]?\d{{3,4}})\s+(.*?)\s+([MC])"
    r"(?:\s+(\d+))?(?:\s+((?:an|a|n)(?:\.\.)?\d+))?\s*$")
_COMPONENT = re.compile(
    rf"^\s+{_CHANGE}{{0,2}}\s*(\d{{4}})\s+(.*?)\s+([MC])\s+((?:an|a|n)(?:\.\.)?\d+)\s*$")


_ENTRY_START = re.compile(rf"^(\d{{3}}\s|\s+{_CHANGE}{{0,2}}\s*\d{{4}}\s)")


def _joined_lines(text: str) -> list[str]:
    """D.01B wraps a long element name onto the next line: join such pairs."""
    lines: list[str] = []
    pending = ""
    for line in text.splitlines():
        if pending:
            line, pending = f"{pending} {line.strip()}", ""
        if _ENTRY_START.match(line) and not _ELEMENT.match(line) \
                and not _COMPONENT.match(line):
            pending = line.rstrip()
            continue
        lines.append(line)
    return lines


def parse_segment_directory(text: str) -> dict[str, SegmentSpec]:
    """EDSD (D.01B) or TRSD (D.96B) text -> segment specs by tag."""
    segments: dict[str, SegmentSpec] = {}
    tag = name = ""
    elements: list[ElementSpec] = []
    for line in _joined_lines(text):
        head = _SEGMENT_HEAD.match(line)
        if head:
            _close_segment(segments, tag, name, elements)
            tag, name, elements = head.group(1), head.group(2), []
            continue
        element = _ELEMENT.match(line)
        if element and tag:
            elements.append(ElementSpec(
                id=element.group(2), name=element.group(3).strip(),
                mandatory=element.group(4) == "M", repeat=int(element.group(5) or 1),
                representation=Representation.parse(element.group(6))
                if element.group(6) else None))
            continue
        component = _COMPONENT.match(line)
        if component and elements:
            last = elements[-1]
            elements[-1] = ElementSpec(
                last.id, last.name, last.mandatory, last.repeat, None,
                (*last.components, ComponentSpec(
                    component.group(1), component.group(2).strip(), component.group(3) == "M",
                    Representation.parse(component.group(4)))))
    _close_segment(segments, tag, name, elements)
    return segments


def _close_segment(segments: dict[str, SegmentSpec], tag: str, name: str,
                   elements: list[ElementSpec]) -> None:
    if tag and elements:
        segments[tag] = SegmentSpec(tag, name, tuple(elements))


_TABLE_SEGMENT = re.compile(
    rf"^(\d{{4}})\s*{_CHANGE}{{0,2}}\s+([A-Z][A-Z0-9]{{2}})\s+(.*?)\s{{2,}}([MC])\s+(\d+)(.*)$")
_TABLE_GROUP = re.compile(
    rf"^(\d{{4}})\s*{_CHANGE}{{0,2}}\s+─+\s*Segment group\s+(\d+)\s*─+\s*([MC])\s+(\d+)")
_CLOSERS = frozenset("┘┴")


def parse_message(text: str, message_type: str, version: str, release: str,
                  agency: str = "UN") -> MessageSpec:
    """The segment table (section 4.3.1) of one message specification, decoded from CP437.

    Groups open on a "Segment group N" line; the box characters ┘ and ┴ after a segment's
    repeat count close one group each."""
    root: list[SegmentRef | GroupSpec] = []
    stack: list[tuple[str, bool, int, list[SegmentRef | GroupSpec]]] = []
    table = text[text.rindex("Segment table"):]
    for line in table.splitlines():
        group = _TABLE_GROUP.match(line)
        if group:
            stack.append((f"SG{group.group(2)}", group.group(3) == "M", int(group.group(4)),
                          []))
            continue
        segment = _TABLE_SEGMENT.match(line)
        if not segment:
            continue
        target = stack[-1][3] if stack else root
        target.append(SegmentRef(segment.group(2), segment.group(4) == "M",
                                 int(segment.group(5))))
        for _ in range(sum(1 for ch in segment.group(6) if ch in _CLOSERS)):
            name, mandatory, repeat, content = stack.pop()
            closed = GroupSpec(name, mandatory, repeat, tuple(content))
            (stack[-1][3] if stack else root).append(closed)
    if stack:
        raise ValueError(f"{message_type}: segment group {stack[-1][0]} is never closed")
    return MessageSpec(message_type, version, release, agency, tuple(root))


_BLOCK_SEPARATOR = re.compile(r"^\s*─{10,}\s*$", re.MULTILINE)
_BLOCK_HEAD = re.compile(rf"^\s*{_CHANGE}?\s*(\d{{4}})\s")
#: Change indicators stand in the first two columns; a code starts by column 8, while the
#: continuation of a code's name (column 10) or description (column 13 or 14) starts later.
_INDICATOR_COLUMNS = 2
_LAST_CODE_COLUMN = 8
_LABELS = ("Desc:", "Repr:", "Note:")


def parse_code_lists(text: str) -> dict[str, tuple[str, ...]]:
    """UNCL text -> the valid codes of each coded data element.

    Entries are separated by a rule; each starts with the element ("1001  Document name
    code"), then Desc, Repr and optional Note paragraphs, then one line per code with the value
    first (left-aligned in D.01B, right-aligned in D.96B) and its description indented further
    below it."""
    lists: dict[str, tuple[str, ...]] = {}
    for block in _BLOCK_SEPARATOR.split(text):
        lines = list(block.splitlines())
        head_index = next((i for i, line in enumerate(lines) if line.strip()), None)
        if head_index is None:
            continue
        head = _BLOCK_HEAD.match(lines[head_index])
        if head is None:
            continue
        codes = _codes(lines[head_index + 1:])
        if codes:
            lists[head.group(1)] = tuple(sorted(set(codes)))
    return lists


def _codes(lines: list[str]) -> list[str]:
    codes: list[str] = []
    after_repr = in_note = False
    for line in lines:
        stripped = line.strip()
        if not stripped:
            in_note = False
            continue
        if stripped.startswith("Repr:"):
            after_repr = True
            continue
        if stripped.startswith(_LABELS):
            in_note = stripped.startswith("Note:")
            continue
        if not after_repr or in_note:
            continue
        indicators = line[:_INDICATOR_COLUMNS]
        body = "".join(" " if ch in "+*#|X-" else ch for ch in indicators) + \
            line[_INDICATOR_COLUMNS:]
        indent = len(body) - len(body.lstrip())
        if 1 <= indent <= _LAST_CODE_COLUMN and "-" not in indicators:
            codes.append(body.split()[0])
    return codes
