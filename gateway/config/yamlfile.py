"""Load YAML with the line and column of every value, and validate it against a pydantic model
so that an error reads ``routing.yaml:12:9 rules[1].deliver[0]: unknown agency 'x'``.

A configuration file is read by the gateway while it runs (the routing table is reloaded hot),
so no file may stop or stall it: every way a document can fail to load is a ConfigError naming
file and line, found in time and memory bounded by the file's size.  YAML aliases make a
document a graph, not a tree: an alias inside its own anchor is a cycle (``&a [*a]``), and
aliases of aliases grow exponentially (the "billion laughs": 9 lines expand to 10^9 values).
The loader refuses a cycle at once, lets aliases add at most ALIAS_VALUES values beyond the
values written, and refuses nesting deeper than MAX_DEPTH (the composer and the conversion are
recursive; Python's stack would otherwise end the load with a RecursionError).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from gateway.config.files import check_size, read_text
from gateway.errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)
_BOOL = "tag:yaml.org,2002:bool"
#: The only tags a list or mapping may carry (the ones YAML gives them when none is written).
_PLAIN_COLLECTIONS = frozenset({"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"})
#: Deeper than any configuration needs (a mapping file nests about ten levels).
MAX_DEPTH = 64
#: Values aliases may add to a document beyond those written in it (each alias written counts
#: once already): ample for anchors reused as intended, far below an alias bomb.
ALIAS_VALUES = 100_000
#: Validation errors listed in one ConfigError; the rest are counted.
MAX_LISTED_ERRORS = 20


class StrictLoader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true and false.  YAML 1.1 also reads yes, no, on and off as
    booleans, and ``origin_countries: [NO]`` would mean Norway is False.

    Also counts the values written (for the alias budget) and bounds the nesting while
    composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0
        self.values = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self.values += 1
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
StrictLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                   list("tTfF"))
Location = tuple[int, int]
PathKey = tuple[str | int, ...]


def load_model(path: Path, model: type[Model], context: dict[str, Any] | None = None) -> Model:
    """Read ``path`` and validate it as ``model``; raise ConfigError naming file:line:col."""
    return load_model_text(read_text(path), str(path), model, context)


def load_model_text(text: str, name: str, model: type[Model],
                    context: dict[str, Any] | None = None,
                    context_of: Callable[[Any], dict[str, Any]] | None = None) -> Model:
    """Validate YAML ``text`` read from ``name`` (for errors) as ``model``; ``context_of``
    derives the validation context from the document itself.  Every document is validated
    with a context of its own, where a model checks what spans items (two partners, two
    rules) at the line of the item that breaks it."""
    return load_with_places(text, name, model, context, context_of)[0]


def load_with_places(text: str, name: str, model: type[Model],
                     context: dict[str, Any] | None = None,
                     context_of: Callable[[Any], dict[str, Any]] | None = None
                     ) -> tuple[Model, dict[PathKey, Location]]:
    """Like ``load_model_text``, and also where each value stands, for checks made later
    (a mapping file's paths are checked against the directory after its shape)."""
    data, where = parse(text, name)
    context = {**(context or {}), **(context_of(data) if context_of is not None else {})}
    try:
        return model.model_validate(data, context=context), where
    except ValidationError as exc:
        raise ConfigError(describe(exc, where, name)) from exc


def place(where: dict[PathKey, Location], key: PathKey, name: str) -> str:
    """``file:line:col field`` for an error found after loading."""
    line, column = _nearest(key, where)
    return f"{name}:{line}:{column} {_dotted(key) or '(top level)'}"


def parse(text: str, name: str) -> tuple[Any, dict[PathKey, Location]]:
    """YAML text -> plain data plus a map from each value's path to its (line, column)."""
    check_size(name, len(text))
    try:
        loader = StrictLoader(text)  # reads the whole text: refuses characters YAML forbids
        node = loader.get_single_node()
        loader.dispose()
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}{_yaml_place(exc, text)}: not valid YAML: "
                          f"{getattr(exc, 'problem', None) or _reason(exc)}") from exc
    if node is None:
        raise ConfigError(f"{name}: the file is empty")
    expand = _Expansion(name, StrictLoader(""), budget=loader.values + ALIAS_VALUES)
    return expand.value(node, ()), expand.where


class _Expansion:
    """The composed node graph as plain data, expanded along the aliases within bounds."""

    def __init__(self, name: str, constructor: StrictLoader, budget: int) -> None:
        self.name = name
        self.where: dict[PathKey, Location] = {}
        self._constructor = constructor  # one for the document: it resolves scalar tags
        self._budget = budget
        self._open: set[int] = set()  # the collections being expanded: an alias to one is a cycle

    def value(self, node: yaml.Node, path: PathKey) -> Any:
        self._budget -= 1
        if self._budget < 0:
            self._refuse(node, path, f"aliases expand to more than {ALIAS_VALUES} values "
                         "beyond those written (an alias bomb)")
        if len(path) > MAX_DEPTH:
            self._refuse(node, path, f"nested deeper than {MAX_DEPTH} levels (through aliases)")
        self.where[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if node.tag not in _PLAIN_COLLECTIONS:  # e.g. !!python/object/apply on a list
            self._refuse(node, path, f"tag {_short(node.tag)!r} is not allowed here: a "
                         "configuration holds plain lists and mappings")
        if id(node) in self._open:
            self._refuse(node, path, "an alias inside its own anchor (a recursive alias)")
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            return [self.value(v, (*path, i)) for i, v in enumerate(node.value)]
        finally:
            self._open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self._refuse(key_node, path, "a key must be plain text, not a list or mapping")
            key = str(key_node.value)
            if key in result:
                self._refuse(key_node, (*path, key), "key given twice")
            result[key] = self.value(value_node, (*path, key))
        return result

    def _scalar(self, node: yaml.ScalarNode, path: PathKey) -> Any:
        """Let the safe loader resolve the scalar's tag (int, bool, date, ...).  Some texts
        its resolver or an explicit tag calls a value cannot be built (``2024-13-45`` is "a
        date", an int of 5,000 digits is over Python's limit, ``!!int`` with no digits raises
        IndexError inside PyYAML): whatever the loader raises is an error of the value, at its
        line."""
        try:
            return self._constructor.construct_object(node, deep=True)
        except Exception as exc:  # noqa: BLE001 - any failure to build one scalar (above)
            self._refuse(node, path, f"cannot read {_short(node.value)!r}: "
                         f"{getattr(exc, 'problem', None) or exc}")

    def _refuse(self, node: yaml.Node, path: PathKey, reason: str) -> Any:
        mark = node.start_mark
        field = _short(_dotted(path))
        raise ConfigError(f"{self.name}:{mark.line + 1}:{mark.column + 1}"
                          f"{' ' + field if field else ''}: {reason}")


def _yaml_place(exc: yaml.YAMLError, text: str) -> str:
    """``:line:col`` of a YAML error: a marked error has its mark, a reader error (a character
    YAML does not allow, such as NUL) only its position in the text."""
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return f":{mark.line + 1}:{mark.column + 1}"
    position = getattr(exc, "position", None)
    if isinstance(position, int):
        line = text.count("\n", 0, position) + 1
        column = position - text.rfind("\n", 0, position)
        return f":{line}:{column}"
    return ""


def _reason(exc: yaml.YAMLError) -> str:
    reason = getattr(exc, "reason", None)
    character = getattr(exc, "character", None)
    if reason and isinstance(character, str | int):
        code = character if isinstance(character, int) else ord(character)
        return f"character U+{code:04X}: {reason}"
    return str(exc)


def _short(text: object) -> str:
    value = str(text)
    return value if len(value) <= 40 else value[:37] + "..."


def describe(exc: ValidationError, where: dict[PathKey, Location], name: str) -> str:
    lines = []
    errors = exc.errors()
    for error in errors[:MAX_LISTED_ERRORS]:
        loc = tuple(p for p in error["loc"] if isinstance(p, str | int))
        line, column = _nearest(loc, where)
        reason = error["msg"]
        if error["type"] == "extra_forbidden":
            reason = "unknown field (not allowed here)"
        lines.append(f"{name}:{line}:{column} {_dotted(loc) or '(top level)'}: {reason}")
    if len(errors) > MAX_LISTED_ERRORS:
        lines.append(f"{name}: and {len(errors) - MAX_LISTED_ERRORS} more errors")
    return "\n".join(lines)


def _nearest(loc: PathKey, where: dict[PathKey, Location]) -> Location:
    for size in range(len(loc), -1, -1):
        if loc[:size] in where:
            return where[loc[:size]]
    return (1, 1)


def _dotted(path: PathKey) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text
