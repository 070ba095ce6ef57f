"""Load YAML with the line and column of every value, and validate it against a pydantic model
so that an error reads ``routing.yaml:12:9 rules[1].deliver[0]: unknown agency 'x'``."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from gateway.errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)
_BOOL = "tag:yaml.org,2002:bool"


class StrictLoader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true and false.  YAML 1.1 also reads yes, no, on and off as
    booleans, and ``origin_countries: [NO]`` would mean Norway is False."""


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
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    return load_model_text(text, str(path), model, context)


def load_model_text(text: str, name: str, model: type[Model],
                    context: dict[str, Any] | None = None,
                    context_of: Callable[[Any], dict[str, Any]] | None = None) -> Model:
    """Validate YAML ``text`` read from ``name`` (for errors) as ``model``; ``context_of``
    derives the validation context from the document itself."""
    data, where = parse(text, name)
    if context_of is not None:
        context = {**(context or {}), **context_of(data)}
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise ConfigError(describe(exc, where, name)) from exc


def load_with_places(text: str, name: str, model: type[Model]
                     ) -> tuple[Model, dict[PathKey, Location]]:
    """Like ``load_model_text``, and also where each value stands, for checks made later
    (a mapping file's paths are checked against the directory after its shape)."""
    data, where = parse(text, name)
    try:
        return model.model_validate(data), where
    except ValidationError as exc:
        raise ConfigError(describe(exc, where, name)) from exc


def place(where: dict[PathKey, Location], key: PathKey, name: str) -> str:
    """``file:line:col field`` for an error found after loading."""
    line, column = _nearest(key, where)
    return f"{name}:{line}:{column} {_dotted(key) or '(top level)'}"


def parse(text: str, name: str) -> tuple[Any, dict[PathKey, Location]]:
    """YAML text -> plain data plus a map from each value's path to its (line, column)."""
    try:
        node = yaml.compose(text, Loader=StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise ConfigError(f"{name}{at}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    where: dict[PathKey, Location] = {}
    if node is None:
        raise ConfigError(f"{name}: the file is empty")
    return _convert(node, (), where, name), where


def _convert(node: yaml.Node, path: PathKey, where: dict[PathKey, Location], name: str) -> Any:
    where[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in result:
                line = key_node.start_mark.line + 1
                raise ConfigError(f"{name}:{line}:{key_node.start_mark.column + 1} "
                                  f"{_dotted((*path, key))}: key given twice")
            result[key] = _convert(value_node, (*path, key), where, name)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(v, (*path, i), where, name) for i, v in enumerate(node.value)]
    return StrictLoader(  # a scalar: let the safe loader resolve its tag (int, bool, ...)
        ""
    ).construct_object(node, deep=True)


def describe(exc: ValidationError, where: dict[PathKey, Location], name: str) -> str:
    lines = []
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if isinstance(p, str | int))
        line, column = _nearest(loc, where)
        reason = error["msg"]
        if error["type"] == "extra_forbidden":
            reason = "unknown field (not allowed here)"
        lines.append(f"{name}:{line}:{column} {_dotted(loc) or '(top level)'}: {reason}")
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
