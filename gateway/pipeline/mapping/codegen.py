"""Turn a compiled mapping's reading into Python functions, one per canonical object.

Reading field by field through the plan objects of ``compiled.py`` costs a few method calls
per field, which is most of what mapping a message costs once its segments are matched.  The
common shapes (a part's fields read from one segment, a value from the first segment with a
tag, a list over the segments or groups of one tag) are written out here as straight-line
code at start-up; every other field calls its plan, so the generated function always means
what the plans mean.  ``tests/unit/test_mappings.py`` holds the two to the same answers.

The generated text is built from identifiers and numbers the compiler checked (tags, group
names, positions); field names go in as repr() literals; nothing read from a message is ever
part of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.pipeline.mapping.compiled import (
    FieldPlan,
    ObjectField,
    Text,
    ValueField,
    holds_all,
    value_at,
)
from gateway.pipeline.mapping.paths import Step
from gateway.wire.edifact.lexer import unescape


def install(root: ObjectField) -> None:
    """Give ``root`` and every object below it its generated reader."""
    _Generator().reader(root, on_segment=False)


class _Generator:
    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"value_at": value_at, "unescape": unescape,
                                          "holds_all": holds_all}
        self.count = 0
        #: id of an ObjectField -> the name of its generated reader in the namespace
        self.readers: dict[int, str] = {}

    def name(self, value: object, prefix: str) -> str:
        self.count += 1
        key = f"{prefix}{self.count}"
        self.namespace[key] = value
        return key

    def reader(self, plan: ObjectField, on_segment: bool) -> str:
        """Generate (once) the reader of ``plan``, whose scope is a segment or an instance;
        return the name it has in the namespace."""
        for child in plan.fields:
            if isinstance(child, ObjectField):
                self.reader(child, self._child_on_segment(child, on_segment))
        lines = ["def read(scope, ctx):", "    values = {}",
                 "    flat_of = ctx.extract.flat", "    release = ctx.extract.release"]
        if on_segment:
            lines += self._direct(plan)
            rest = [f for f in plan.fields if not _is_direct(f)]
        else:
            rest = list(plan.fields)
        for field in rest:
            lines += self._field(field, on_segment)
        lines.append("    return values")
        source = "\n".join(lines) + "\n"
        scope: dict[str, Any] = dict(self.namespace)
        exec(compile(source, f"<mapping reader {plan.path}>", "exec"), scope)
        reader: Callable[..., dict[str, Any]] = scope["read"]
        object.__setattr__(plan, "_reader", reader)
        self.readers[id(plan)] = self.name(reader, "reader")
        return self.readers[id(plan)]

    @staticmethod
    def _child_on_segment(child: ObjectField, on_segment: bool) -> bool:
        steps = child.locator.steps
        return on_segment if not steps else not steps[-1].group

    def _direct(self, plan: ObjectField) -> list[str]:
        """A part's fields from the scope segment's matched values, in one pass."""
        fields = [f for f in plan.fields if _is_direct(f)]
        if not fields:
            return []
        interpret = self.name(plan.interpret, "interpret")
        lines = ["    flat = flat_of(scope)",
                 "    if flat is None:",  # a segment its pattern did not take
                 f"        return {interpret}(scope, ctx)"]
        for field in fields:
            assert isinstance(field, ValueField)
            index = field.sources[0].position.flat
            key = repr(field.name)
            lines.append(f"    text = flat[{index}]")
            lines.append("    if text:")
            lines += _unescaped("        ")
            if isinstance(field.convert, Text):
                lines.append(f"        values[{key}] = text")
            else:
                convert = self.name(field.convert, "convert")
                lines += [f"        value = {convert}.read(text, scope, ctx)",
                          "        if value is not None:",
                          f"            values[{key}] = value"]
            if field.required:
                lines += ["    else:", f"        {self.name(field, 'plan')}.missing(scope, ctx)"]
        return lines

    def _field(self, field: FieldPlan, on_segment: bool) -> list[str]:
        steps = _inline_steps(field)
        if on_segment or steps is None:
            return [f"    {self.name(field, 'plan')}.read(scope, ctx, values)"]
        key = repr(field.name)
        loops = " ".join(self._loop(i, step) for i, step in enumerate(steps))
        last = f"s{len(steps) - 1}"
        plan = self.name(field, "plan")
        # one step without conditions loops straight over the pool; else over a generator
        found = loops.removeprefix(f"for {last} in ") if len(steps) == 1 and \
            not steps[0].conditions else f"({last} {loops})"
        if isinstance(field, ValueField):
            position = field.sources[0].position
            at = self.name(position, "position")
            lines = [f"    for {last} in {found}:",
                     f"        flat = flat_of({last})",
                     "        if flat is None:",
                     f"            text = value_at({last}, {at}, ctx)",
                     "        else:",
                     f"            text = flat[{position.flat}]",
                     "            if text:",
                     *_unescaped("                "),
                     "        if text:",
                     f"            values[{key}] = text",
                     "            break"]
            if field.required:
                lines += ["    else:", f"        {plan}.missing(scope, ctx)"]
            return lines
        assert isinstance(field, ObjectField)
        reader = self.readers[id(field)]
        if field.many:
            return [f"    values[{key}] = [{reader}({last}, ctx) {loops}]"]
        # one object: the first found; when none, the plan says what is missing
        return [f"    for {last} in {found}:",
                f"        values[{key}] = {reader}({last}, ctx)",
                "        break",
                "    else:",
                f"        {plan}.read(scope, ctx, values)"]

    def _loop(self, index: int, step: Step) -> str:
        source = "scope" if index == 0 else f"s{index - 1}"
        pool = "groups" if step.group else "segments"
        loop = f"for s{index} in {source}.{pool}.get({step.name!r}, ())"
        if not step.conditions:
            return loop
        conditions = self.name(step.conditions, "conditions")
        target = f"s{index}.trigger" if step.group else f"s{index}"
        return f"{loop} if holds_all({target}, {conditions}, ctx)"


def _unescaped(indent: str) -> list[str]:
    """Take release characters out of ``text`` (matched values keep them)."""
    return [f"{indent}if release and release in text:",
            f"{indent}    text = unescape(text, release)"]


def _is_direct(field: FieldPlan) -> bool:
    """A single value of the scope's own segment."""
    return isinstance(field, ValueField) and field.single \
        and not field.sources[0].locator.steps


def _inline_steps(field: FieldPlan) -> tuple[Step, ...] | None:
    """The steps of a field written out as loops: a plain text value from the first segment
    its path finds, or objects over the segments or groups theirs finds; None for the rest
    (their plan reads them)."""
    if isinstance(field, ValueField):
        steps = field.sources[0].locator.steps
        return steps if field.plain and steps else None
    if isinstance(field, ObjectField) and field.locator.steps:
        return field.locator.steps
    return None
