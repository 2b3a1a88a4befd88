"""Read a YAML file into plain data, remembering where every key and value was written.

Every problem the validator reports points at a line and column, so the loader keeps a
map from data paths (``("steps", 2, "send_sms", "text")``) to source positions. It
also refuses what PyYAML would silently accept: duplicate keys (the last one would win)
and YAML 1.1 surprises (``yes`` / ``no`` / ``on`` becoming booleans, ``10:00`` becoming
600): scalars follow the YAML 1.2 core schema, so ``choices: [yes, no]`` stays text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from language.problems import Problem, show_value

Path_ = tuple[Any, ...]


class _CoreLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars: only true/false are booleans."""


_CoreLoader.yaml_implicit_resolvers = {}
_RESOLVERS = [
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?(?:0|[1-9][0-9]*)|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        # A dot or an exponent is required: "010" stays text rather than becoming 8 or 10.0.
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
]
for _tag, _pattern, _first in _RESOLVERS:
    _CoreLoader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


@dataclass(frozen=True)
class Span:
    """Where a node was written: 1-based line and column, and its character range."""

    line: int
    column: int
    start: int = 0
    end: int = 0


def _span(node: Node) -> Span:
    return Span(node.start_mark.line + 1, node.start_mark.column + 1, node.start_mark.index, node.end_mark.index)


_MISSING = object()


@dataclass
class YamlDocument:
    """A loaded YAML file: its data, the position of every key and value, its problems."""

    file: str
    text: str
    data: Any = None
    values: dict[Path_, Span] = field(default_factory=dict)
    keys: dict[Path_, Span] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    # --- positions --------------------------------------------------------------

    def position(self, path: Path_) -> Span:
        """Where the value at ``path`` was written, or its nearest written ancestor."""
        path = tuple(path)
        while path:
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), Span(1, 1))

    def key_position(self, path: Path_) -> Span:
        """Where the key of ``path`` was written (a mapping key), else its value."""
        return self.keys.get(tuple(path)) or self.position(path)

    def find(self, path: Path_, needle: str) -> Span:
        """Where ``needle`` appears inside the value at ``path``: points at a name in a text."""
        span = self.position(path)
        if needle and span.end > span.start:
            index = self.text.find(needle, span.start, span.end)
            if index >= 0:
                line = self.text.count("\n", 0, index) + 1
                column = index - (self.text.rfind("\n", 0, index) + 1) + 1
                return Span(line, column, index, index + len(needle))
        return span

    def get(self, path: Path_, default: Any = None) -> Any:
        node = self.data
        for part in path:
            node = _child(node, part)
            if node is _MISSING:
                return default
        return node

    def resolve(self, loc: Path_) -> Path_:
        """The data path a pydantic error ``loc`` refers to."""
        return self.match(loc)[1]

    def match(self, loc: Path_) -> tuple[tuple[int, ...], Path_]:
        """Which ``loc`` elements are data keys (their indices), and the data path they make.

        Pydantic locations mix data keys with union tags (``'send_sms'``,
        ``'function-after[...]'``). Rather than guess which is which, find the reading
        that follows the data the furthest, preferring to match later elements.
        """
        memo: dict[tuple[int, int], tuple[tuple[int, ...], Path_]] = {}

        def match(node: Any, i: int) -> tuple[tuple[int, ...], Path_]:
            if i == len(loc):
                return (), ()
            key = (i, id(node))
            if key in memo:
                return memo[key]
            options = [match(node, i + 1)]
            child = _child(node, loc[i])
            if child is not _MISSING:
                matched, path = match(child, i + 1)
                options.append(((i, *matched), (loc[i], *path)))
            best = max(options, key=lambda o: (len(o[0]), sorted(o[0], reverse=True)))
            memo[key] = best
            return best

        return match(self.data, 0)

    def problem(self, span: Span, message: str, value: Any = None, severity: str = "error") -> Problem:
        shown = None if value is None else show_value(value)
        return Problem(self.file, span.line, span.column, severity, message, shown)  # type: ignore[arg-type]


def _child(node: Any, part: Any) -> Any:
    if isinstance(node, dict):
        try:
            return node.get(part, _MISSING)
        except TypeError:
            return _MISSING
    if isinstance(node, list) and isinstance(part, int) and not isinstance(part, bool):
        return node[part] if 0 <= part < len(node) else _MISSING
    return _MISSING


# --- building -----------------------------------------------------------------------


class _Builder:
    def __init__(self, loader: _CoreLoader, doc: YamlDocument) -> None:
        self.loader = loader
        self.doc = doc
        self.active: set[int] = set()  # guards against recursive aliases

    def build(self, node: Node, path: Path_) -> Any:
        self.doc.values[path] = _span(node)
        if isinstance(node, ScalarNode):
            try:
                return self.loader.construct_object(node)
            except yaml.YAMLError as err:
                self.doc.problems.append(self.doc.problem(_span(node), _reason(err), node.value))
                return node.value
        if id(node) in self.active:
            self.doc.problems.append(self.doc.problem(_span(node), "an alias refers to itself"))
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            return None
        finally:
            self.active.discard(id(node))

    def _mapping(self, node: MappingNode, path: Path_) -> dict:
        result: dict = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.doc.problems.append(
                    self.doc.problem(_span(key_node), "a key must be a plain name, not a list or mapping")
                )
                continue
            key = self.build(key_node, (*path, "<key>"))
            self.doc.values.pop((*path, "<key>"), None)
            if key in result:
                first = self.doc.keys[(*path, key)]
                self.doc.problems.append(
                    self.doc.problem(
                        _span(key_node),
                        f"duplicate key '{key}' (first written at line {first.line}): only one can stay",
                        key,
                    )
                )
                continue
            self.doc.keys[(*path, key)] = _span(key_node)
            result[key] = self.build(value_node, (*path, key))
        return result


def _reason(err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None)
    context = getattr(err, "context", None)
    parts = [p for p in (context, problem) if p]
    return "YAML syntax: " + ("; ".join(parts) if parts else str(err).splitlines()[0])


def load_text(text: str, file: str) -> YamlDocument:
    """Parse ``text``; syntax errors become problems with their position, never exceptions."""
    doc = YamlDocument(file=file, text=text)
    loader = _CoreLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            doc.data = _Builder(loader, doc).build(node, ())
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        span = Span(mark.line + 1, mark.column + 1, mark.index, mark.index) if mark else Span(1, 1)
        doc.problems.append(doc.problem(span, _reason(err)))
        doc.data = None
    except yaml.YAMLError as err:
        doc.problems.append(doc.problem(Span(1, 1), _reason(err)))
        doc.data = None
    finally:
        loader.dispose()
    return doc


def load_file(path: Path, file: str | None = None) -> YamlDocument:
    name = file or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        doc = YamlDocument(file=name, text="")
        doc.problems.append(doc.problem(Span(1, 1), f"cannot read the file: {err}"))
        return doc
    return load_text(text, name)
