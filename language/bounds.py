"""Bounds on what one expression or template may cost, at compile time and at run time.

Jinja's sandbox stops a journey file from reaching the system, but not from asking for
a billion characters (``'a' * 10**9``, ``'x'.center(10**9)``, ``'%*d' % (10**9, 1)``), a
number with a billion digits (``customer.points ** 10**9``) or a billion loop turns. The
checks here refuse such requests *before* the work is done, so one journey can never
exhaust a worker:

- the source is at most ``MAX_EXPRESSION_CHARS`` / ``MAX_TEMPLATE_CHARS`` long and its
  syntax tree at most ``MAX_DEPTH`` deep (Jinja's code generation is cubic in depth);
  macros, blocks, includes and recursive loops are not part of the language;
- every value an operator or method makes is at most ``MAX_SIZE`` characters (or
  items), an integer at most ``MAX_INT_BITS`` bits, an exponent at most ``MAX_EXPONENT``;
- one evaluation takes at most ``MAX_STEPS`` steps (loop turns, operators, calls,
  filters, outputs), makes values of at most ``MAX_MADE`` characters in all (10,000
  items of 10,000 characters each would be 100 MB), writes at most ``MAX_OUTPUT``
  characters and uses at most
  ``MAX_SECONDS`` of CPU time (a last resort: comparisons and slices are not counted
  as steps).
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from jinja2 import nodes
from jinja2.visitor import NodeTransformer

MAX_EXPRESSION_CHARS = 2_000
MAX_TEMPLATE_CHARS = 10_000
MAX_DEPTH = 32
MAX_SIZE = 10_000
MAX_INT_BITS = 10_000  # about 3,000 digits
MAX_EXPONENT = 100
MAX_STEPS = 100_000
MAX_OUTPUT = 100_000
MAX_MADE = 1_000_000  # characters (or items) all the operators, calls and filters of one evaluation make
MAX_SECONDS = 2.0
MAX_VALUE_BYTES = 10_000  # a `set` value or `emit` property, as JSON: what a customer record may carry

# Not part of the journey language, and each a way to recurse or loop without a loop turn.
_FORBIDDEN: dict[type[nodes.Node], str] = {
    nodes.Macro: "macro",
    nodes.CallBlock: "call",
    nodes.Block: "block",
    nodes.Extends: "extends",
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from",
}


class Exceeded(ValueError):
    """A limit was reached: the message says which (it never holds the values)."""


class TooLong(Exceeded):
    """The rendered text as a whole is over ``MAX_OUTPUT`` characters."""


# --- the source: checked by the validator (with positions) and again when compiled ---------


def length_problem(source: str, mode: str) -> str | None:
    most = MAX_EXPRESSION_CHARS if mode == "expression" else MAX_TEMPLATE_CHARS
    if len(source) > most:
        what = "an expression" if mode == "expression" else "a template"
        return f"{what} is at most {most:,} characters (this one has {len(source):,})"
    return None


def tree_problems(tree: nodes.Node) -> list[tuple[str, str]]:
    """(message, snippet to point at) for each construct over the limits."""
    problems: list[tuple[str, str]] = []
    deepest = 0
    stack: list[tuple[nodes.Node, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        keyword = _FORBIDDEN.get(type(node))
        if keyword is not None:
            problems.append((f"'{{% {keyword} %}}' is not part of the journey language", keyword))
        if isinstance(node, nodes.For) and node.recursive:
            problems.append(("recursive loops are not part of the journey language", "recursive"))
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())
    if deepest > MAX_DEPTH:
        problems.append((f"nested {deepest} levels deep: at most {MAX_DEPTH} (split it up, or use fewer "
                         "chained operators or parentheses)", ""))
    return problems


class _Bounded(NodeTransformer):
    """Route loop turns and outputs through the budget (``environment.bounded_*``)."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _call("bounded_iter", node.iter)
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        # The template's own text apart from values: an HTML part escapes values only.
        node.nodes = [_call("bounded_data" if isinstance(child, nodes.TemplateData) else "bounded_output", child)
                      for child in node.nodes]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _call("bounded_concat", *node.nodes)


def _call(name: str, *args: nodes.Node) -> nodes.Call:
    return nodes.Call(nodes.EnvironmentAttribute(name), list(args), [], None, None, lineno=args[0].lineno)


def bound_tree(tree: nodes.Template) -> nodes.Template:
    result = _Bounded().visit(tree)
    assert isinstance(result, nodes.Template)
    return result


# --- the budget of one evaluation ---------------------------------------------------------


@dataclass
class Budget:
    steps: int = MAX_STEPS
    output: int = MAX_OUTPUT
    made: int = MAX_MADE
    # CPU time of this thread, not the wall clock: waiting for the database in link() or
    # coupon(), or for the GIL on a busy worker, must never fail a text.
    deadline: float = field(default_factory=lambda: time.thread_time() + MAX_SECONDS)
    collecting_since: float | None = None  # a garbage collection under way (not charged)

    def charge(self, chars: int = 0) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise Exceeded(f"more than {MAX_STEPS:,} steps (loop turns, operators, calls, filters)")
        if chars:
            self.output -= chars
            if self.output < 0:
                raise TooLong(f"the text is over {MAX_OUTPUT:,} characters")
        if time.thread_time() > self.deadline:
            raise Exceeded(f"took more than {MAX_SECONDS:g} s of CPU time")

    def made_value(self, value: Any) -> None:
        if isinstance(value, bool | int | float) or value is None:
            return
        self.made -= size(value, self.made + 1)
        if self.made < 0:
            raise Exceeded(f"values of more than {MAX_MADE:,} characters in all")


_BUDGET: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("expression_budget", default=None)


@contextlib.contextmanager
def budget() -> Iterator[Budget]:
    """A fresh budget for one evaluation or render."""
    spent = Budget()
    token = _BUDGET.set(spent)
    try:
        yield spent
    finally:
        _BUDGET.reset(token)


def unbudgeted(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` is ours, called from an expression (``link()``, ``coupon()``,
    ``in_segment()``: queries and the ORM): its CPU time moves the deadline on, since it is
    not the journey file's doing and must never fail a text on a busy worker."""

    @wraps(function)
    def called(*args: Any, **kwargs: Any) -> Any:
        spent = _BUDGET.get()
        if spent is None:
            return function(*args, **kwargs)
        started = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent.deadline += time.thread_time() - started

    return called


def _not_charged_for_collections(phase: str, info: dict[str, Any]) -> None:
    """The garbage collector runs in whichever thread allocates when it is due: in a
    process holding many objects one full collection can take a second, and it is the
    process's cost, not the evaluation's that happened to trigger it."""
    spent = _BUDGET.get()
    if spent is None:
        return
    if phase == "start":
        spent.collecting_since = time.thread_time()
    elif spent.collecting_since is not None:
        spent.deadline += time.thread_time() - spent.collecting_since
        spent.collecting_since = None


gc.callbacks.append(_not_charged_for_collections)


def charge(chars: int = 0) -> None:
    spent = _BUDGET.get()
    if spent is not None:
        spent.charge(chars)


def made(value: Any) -> Any:
    """Count what an operator, call or filter made against the evaluation's budget."""
    spent = _BUDGET.get()
    if spent is not None:
        spent.made_value(value)
    return value


def bounded_iter(iterable: Any) -> Iterator[Any]:
    for item in iterable:
        charge()
        yield item


def bounded_output(value: Any) -> Any:
    text = str(value)
    charge(len(text))
    return text


def bounded_concat(*parts: Any) -> str:
    texts = [str(part) for part in parts]
    _check_size(sum(len(text) for text in texts), "text")
    charge()
    return made("".join(texts))


# --- sizes --------------------------------------------------------------------------------


def size(value: Any, most: int = MAX_SIZE) -> int:
    """About how many characters (or items) ``value`` holds; stops counting past ``most``."""
    total = 0
    stack = [value]
    while stack and total <= most:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, bool):
            total += 1
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        elif isinstance(item, list | tuple | set | frozenset):
            total += 1
            stack.extend(item)
        elif isinstance(item, dict):
            total += 1
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            total += 1
    return total


def _check_size(count: int, what: str) -> None:
    if count > MAX_SIZE:
        raise Exceeded(f"a {what} over {MAX_SIZE:,} characters or items")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse ``left <operator> right`` before it is computed if its result is too big."""
    sequence = (str, bytes, list, tuple)
    if operator == "*":
        if isinstance(left, sequence) and _is_int(right):
            _check_size(size(left) * max(right, 0), "value")
        elif isinstance(right, sequence) and _is_int(left):
            _check_size(size(right) * max(left, 0), "value")
        elif _is_int(left) and _is_int(right) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise Exceeded(f"a number over {MAX_INT_BITS:,} bits")
    elif operator == "**":
        if _is_int(right) and isinstance(left, int | float) and not isinstance(left, bool):
            if abs(right) > MAX_EXPONENT:
                raise Exceeded(f"an exponent over {MAX_EXPONENT}")
            if isinstance(left, int) and left.bit_length() * abs(right) > MAX_INT_BITS:
                raise Exceeded(f"a number over {MAX_INT_BITS:,} bits")
    elif operator == "+":
        if isinstance(left, sequence) and isinstance(right, sequence):
            _check_size(size(left) + size(right), "value")
    elif operator == "%" and isinstance(left, str):
        check_percent_format(left)


_PERCENT = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")


def check_percent_format(template: str) -> None:
    for match in _PERCENT.finditer(template):
        for part in match.groups():
            if part == "*":
                raise Exceeded("'*' widths in % formats are not allowed")
            if part is not None and int(part) > MAX_SIZE:
                raise Exceeded(f"a format width over {MAX_SIZE:,}")


def check_format_spec(template: str) -> None:
    """``'{:>1000000000}'.format(x)``: widths and precisions, also nested ones, are bounded."""
    from string import Formatter

    for _, _, spec, _ in Formatter().parse(template):
        if not spec:
            continue
        if "{" in spec:
            raise Exceeded("nested fields in format specifications are not allowed")
        if any(int(digits) > MAX_SIZE for digits in _DIGITS.findall(spec)):
            raise Exceeded(f"a format width over {MAX_SIZE:,}")


def check_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse a method call that would make a value over the limits; returns the
    arguments to call with (an iterable to join is read once, here)."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if isinstance(owner, str | bytes):
        if any(_is_int(value) and abs(value) > MAX_SIZE for value in (*args, *kwargs.values())):
            raise Exceeded(f"a number over {MAX_SIZE:,} given to {name}()")
        if name in ("translate", "maketrans"):
            raise Exceeded(f"{name}() is not allowed")
        if name == "expandtabs":
            tab = args[0] if args else kwargs.get("tabsize", 8)
            tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
            _check_size(len(owner) + tabs * max(tab, 0), "text")
        if name == "replace" and len(args) >= 2:
            _check_size(_replaced_size(owner, args[0], args[1]), "text")
        if name == "join" and args:
            items = list(args[0])
            _check_size(sum(size(item) for item in items) + len(owner) * max(len(items) - 1, 0), "text")
            return (items, *args[1:])
    elif _is_int(owner) and name == "to_bytes":
        length = args[0] if args else kwargs.get("length", 1)
        _check_size(length if _is_int(length) else 0, "value")
    return args


def _replaced_size(text: Any, old: Any, new: Any) -> int:
    if not isinstance(old, type(text)) or not isinstance(new, type(text)):
        return len(text)
    count = len(text) + 1 if not old else text.count(old)
    return len(text) + count * max(len(new) - len(old), 0)


# --- filters ---------------------------------------------------------------------------------


def _argument(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _guard_center(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    width = _argument(args, kwargs, 0, "width", 80)
    if _is_int(width):
        _check_size(width, "text")


def _guard_indent(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    width = _argument(args, kwargs, 0, "width", 4)
    each = len(width) if isinstance(width, str) else width if _is_int(width) else 0
    text = str(value)
    _check_size(len(text) + (text.count("\n") + 1) * max(each, 0), "text")


def _guard_count(name: str, default: Any) -> Callable[[Any, tuple[Any, ...], dict[str, Any]], None]:
    def guard(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        count = _argument(args, kwargs, 0, name, default)
        if _is_int(count):
            _check_size(count, "value")

    return guard


def _guard_wordwrap(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    width = _argument(args, kwargs, 0, "width", 79)
    wrap = _argument(args, kwargs, 2, "wrapstring", None) or "\n"
    text = str(value)
    lines = len(text) // max(width if _is_int(width) else 1, 1) + text.count("\n") + 1
    _check_size(len(text) + lines * len(str(wrap)), "text")


def _guard_join(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    separator = str(_argument(args, kwargs, 0, "d", ""))
    items = value if isinstance(value, list | tuple) else None
    if items is not None:
        _check_size(sum(size(item) for item in items) + len(separator) * max(len(items) - 1, 0), "text")


def _guard_replace(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    old, new = _argument(args, kwargs, 0, "old", ""), _argument(args, kwargs, 1, "new", "")
    _check_size(_replaced_size(str(value), str(old), str(new)), "text")


def _guard_format(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    check_percent_format(str(value))


def _guard_tojson(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    indent = _argument(args, kwargs, 0, "indent", None)
    if _is_int(indent) and indent > 16:
        raise Exceeded("tojson indents at most 16")


_FILTER_GUARDS: dict[str, Callable[[Any, tuple[Any, ...], dict[str, Any]], None]] = {
    "center": _guard_center,
    "indent": _guard_indent,
    "batch": _guard_count("linecount", 1),
    "slice": _guard_count("slices", 1),
    "wordwrap": _guard_wordwrap,
    "join": _guard_join,
    "replace": _guard_replace,
    "format": _guard_format,
    "tojson": _guard_tojson,
}


def bounded_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """The filter, charged one step and guarded where it can make a value bigger than its input."""
    guard = _FILTER_GUARDS.get(name)
    passes_context = 1 if getattr(original, "jinja_pass_arg", None) is not None else 0

    @wraps(original)  # keeps jinja_pass_arg: Jinja still hands in the context it asks for
    def filtered(*args: Any, **kwargs: Any) -> Any:
        charge()
        if guard is not None and len(args) > passes_context:
            value = args[passes_context]
            if name == "join" and not isinstance(value, list | tuple | str):
                value = list(value)  # read once, here, so it can be measured
                args = (*args[:passes_context], value, *args[passes_context + 1:])
            guard(value, args[passes_context + 1:], kwargs)
        return made(original(*args, **kwargs))

    return filtered


def bounded_range(*args: int) -> range:
    numbers = range(*args)
    _check_size(len(numbers), "range")
    return numbers
