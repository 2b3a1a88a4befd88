"""Read a YAML file into plain data, remembering where every key and value was written.

Every problem the validator reports points at a line and column, so the loader keeps a
map from data paths (``("steps", 2, "send_sms", "text")``) to source positions. It
also refuses what PyYAML would silently accept: duplicate keys (the last one would win)
and YAML 1.1 surprises (``yes`` / ``no`` / ``on`` becoming booleans, ``10:00`` becoming
600): scalars follow the YAML 1.2 core schema, so ``choices: [yes, no]`` stays text.

Any input gives problems, never an exception, in bounded time and memory: a file is at
most ``MAX_FILE_BYTES``, nests at most ``MAX_DEPTH`` lists and mappings deep (a workflow
input must still be able to carry it), and holds at most ``MAX_VALUES`` values once its
aliases are expanded (an "alias bomb" of a few KB would otherwise expand to billions).
Tags other than the core schema's (``!!binary``, ``!!timestamp``, ``!custom``...), control
characters and numbers without a finite 64-bit value are problems at their position.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.events import AliasEvent, CollectionStartEvent, NodeEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import Reader, ReaderError

from language.problems import Problem, show_value

Path_ = tuple[Any, ...]

MAX_FILE_BYTES = 128 * 1024  # 30 times the largest shipped journey; the worst file validates in about 2 s
# Lists and mappings inside each other. A workflow input is parsed with a JSON nesting
# limit of 200 (measured: 98 nested `if` steps, 49 `choose`, 40 `split` already fail);
# 64 leaves room for the input's own wrapping and the model's defaults.
MAX_DEPTH = 64
MAX_VALUES = 50_000  # keys, values and items, counting each alias as what it repeats
MAX_INT = 2**63 - 1
_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null")}
_COLLECTION_TAGS: dict[type, str] = {SequenceNode: _CORE + "seq", MappingNode: _CORE + "map"}


class _Refused(ComposerError):
    """A file the loader will not read further (too deep, too many values)."""


class _CoreLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars: only true/false are booleans.

    It refuses what a journey never needs (tags, deep nesting) while composing, before
    any node is constructed; ``tag_problems`` collects the tags it refused.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0
        self.tag_problems: list[tuple[Node, str]] = []
        # How many values the file holds with its aliases expanded, counted as it is
        # composed (an alias counts what it repeats): the builder never expands a bomb.
        self.values = 0
        self.sizes: dict[int, int] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            node = super().compose_node(parent, index)
            self._count(self.sizes.get(id(node), 1), event)  # not yet sized: it refers to itself
            return node
        if isinstance(event, CollectionStartEvent):
            if self.depth >= MAX_DEPTH:
                raise _Refused(
                    None, None,
                    f"nested more than {MAX_DEPTH} lists and mappings deep: a journey cannot be run nested this deep",
                    event.start_mark,  # type: ignore[arg-type]
                )
            self.depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            if isinstance(event, CollectionStartEvent):
                self.depth -= 1
        if node is None:
            return node
        self._count(1, event)
        self.sizes[id(node)] = self._size(node)
        if getattr(event, "tag", None) is not None:
            self._check_tag(event, node)
        return node

    def _size(self, node: Node) -> int:
        if isinstance(node, SequenceNode):
            return 1 + sum(self.sizes.get(id(item), 1) for item in node.value)
        if isinstance(node, MappingNode):
            return 1 + sum(self.sizes.get(id(k), 1) + self.sizes.get(id(v), 1) for k, v in node.value)
        return 1

    def _count(self, values: int, event: Any) -> None:
        self.values += values
        if self.values > MAX_VALUES:
            raise _Refused(
                None, None,
                f"the file holds more than {MAX_VALUES:,} values once its aliases (*name) are expanded: "
                "write it with fewer aliases, or split the journey",
                event.start_mark,
            )

    def _check_tag(self, event: NodeEvent, node: Node) -> None:
        """Only the core schema's own tags, and only where a plain value would have it."""
        tag = event.tag  # type: ignore[attr-defined]
        if isinstance(node, ScalarNode):
            plain = self.resolve(ScalarNode, node.value, (True, False))
            fits = tag == _CORE + "str" or (tag in _SCALAR_TAGS and tag == plain)
        else:
            fits = tag == _COLLECTION_TAGS.get(type(node))
        if not fits:
            shown = "!!" + tag[len(_CORE):] if tag.startswith(_CORE) else tag
            self.tag_problems.append((
                node,
                f"the YAML tag {shown} is not allowed: journeys use plain text, numbers, "
                "true/false, lists and mappings (quote a text that would read as something else)",
            ))
            # Read it as if untagged, so the rest of the file is still checked.
            node.tag = self.resolve(type(node), node.value, (True, False)) if isinstance(node, ScalarNode) \
                else _COLLECTION_TAGS[type(node)]


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
    # Values the loader already reported (a tag, a control character, an infinite
    # number): the shape check says nothing more about them.
    reported: set[Path_] = field(default_factory=set)

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
        # A message may quote a written key: bounded and printable like a value.
        return Problem(self.file, span.line, span.column, severity, show_value(message, 1000), shown)  # type: ignore[arg-type]


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
        self.tagged = {id(node) for node, _ in loader.tag_problems}

    def build(self, node: Node, path: Path_) -> Any:
        self.doc.values[path] = _span(node)
        if id(node) in self.tagged:
            self.doc.reported.add(path)
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
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

    def _scalar(self, node: ScalarNode, path: Path_) -> Any:
        try:
            value = self.loader.construct_object(node)
        except (yaml.YAMLError, ValueError) as err:  # ValueError: an int of over 4,300 digits
            reason = _reason(err) if isinstance(err, yaml.YAMLError) else _value_problem(10 * MAX_INT)
            self.doc.problems.append(self.doc.problem(_span(node), str(reason), node.value))
            self.doc.reported.add(path)
            return node.value
        reason = _value_problem(value)
        if reason:
            self.doc.problems.append(self.doc.problem(_span(node), reason, node.value))
            self.doc.reported.add(path)
            return value if isinstance(value, str) else node.value  # never inf or a huge int
        return value

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


def _value_problem(value: Any) -> str | None:
    if isinstance(value, str):
        bad = Reader.NON_PRINTABLE.search(value)
        if bad:
            return f"a control character (U+{ord(bad.group()):04X}) is not allowed in a text"
    elif isinstance(value, float) and not math.isfinite(value):
        return "not a finite number: write a number such as 1.5 or 1e6"
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        return f"the number is too large: numbers are at most {MAX_INT:,} either way"
    return None


def _position(text: str, index: int) -> Span:
    line = text.count("\n", 0, index) + 1
    return Span(line, index - (text.rfind("\n", 0, index) + 1) + 1, index, index + 1)


def _reason(err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None)
    context = getattr(err, "context", None)
    parts = [p for p in (context, problem) if p]
    return "YAML syntax: " + ("; ".join(parts) if parts else str(err).splitlines()[0])


def load_text(text: str, file: str) -> YamlDocument:
    """Parse ``text``; syntax errors become problems with their position, never exceptions."""
    doc = YamlDocument(file=file, text=text)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_FILE_BYTES:
        doc.problems.append(doc.problem(Span(1, 1), _too_big(size)))
        return doc
    try:
        loader = _CoreLoader(text)
    except ReaderError as err:  # a character YAML does not allow anywhere in a file
        char = err.character if isinstance(err.character, int) else 0
        doc.problems.append(
            doc.problem(_position(text, err.position), f"a control character (U+{char:04X}) is not allowed in a file")
        )
        return doc
    try:
        node = loader.get_single_node()
        for at, message in loader.tag_problems:
            doc.problems.append(doc.problem(_span(at), message))
        if node is not None:
            doc.data = _Builder(loader, doc).build(node, ())
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        span = Span(mark.line + 1, mark.column + 1, mark.index, mark.index) if mark else Span(1, 1)
        doc.problems.append(doc.problem(span, str(err.problem) if isinstance(err, _Refused) else _reason(err)))
        doc.data = None
    except yaml.YAMLError as err:
        doc.problems.append(doc.problem(Span(1, 1), _reason(err)))
        doc.data = None
    finally:
        loader.dispose()
    return doc


def _too_big(size: int) -> str:
    return f"the file is {size:,} bytes: a journeys file may have at most {MAX_FILE_BYTES:,} bytes (128 KiB)"


def load_file(path: Path, file: str | None = None) -> YamlDocument:
    name = file or str(path)
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)  # never read more than the limit
        if len(raw) > MAX_FILE_BYTES:
            doc = YamlDocument(file=name, text="")
            doc.problems.append(doc.problem(Span(1, 1), _too_big(path.stat().st_size)))
            return doc
        text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # as read_text() did
    except (OSError, UnicodeDecodeError) as err:
        doc = YamlDocument(file=name, text="")
        doc.problems.append(doc.problem(Span(1, 1), f"cannot read the file: {err}"))
        return doc
    return load_text(text, name)
