"""Expressions and templates: one Jinja-flavoured, sandboxed syntax for both.

A journey file can never run code, read files or reach the network: everything is
evaluated in Jinja's immutable sandbox, with only the names the journey language
defines. A missing value (``none``) never raises: every comparison with it is false,
arithmetic on it stays missing, and it renders as an empty string (or the
``default(...)`` filter's value).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, StrictUndefined, nodes
from jinja2.environment import TemplateExpression
from jinja2.exceptions import TemplateError, TemplateSyntaxError
from jinja2.parser import Parser
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from language import bounds


class Missing(ChainableUndefined):
    """A value that is not there. Comparisons are false; arithmetic stays missing."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return other is None or isinstance(other, Missing)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return 0

    # The ignores below: jinja2 types these operators as its Never-returning error raiser.
    def _false(self, *_: Any) -> bool:
        return False

    __lt__ = __le__ = __gt__ = __ge__ = _false  # type: ignore[assignment]

    def _self(self, *_: Any) -> Missing:
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _self  # type: ignore[assignment]
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _self  # type: ignore[assignment]
    __mod__ = __rmod__ = __pow__ = __rpow__ = __neg__ = __pos__ = _self  # type: ignore[assignment]

    def __contains__(self, _: object) -> bool:
        return False


class ExpressionError(ValueError):
    """An expression or template that cannot be compiled or evaluated.

    The message may hold customer data (Python's own messages quote values: "Invalid
    isoformat string: 'Ana'"): log ``kind``, never the message."""

    def __init__(self, message: str, kind: str = "ExpressionError") -> None:
        super().__init__(message)
        self.kind = kind

    @classmethod
    def of(cls, what: str, source: str, err: BaseException) -> ExpressionError:
        kind = "limit" if isinstance(err, bounds.Exceeded) else type(err).__name__
        error = TooLong if isinstance(err, bounds.TooLong) else cls
        return error(f"cannot {what} {source[:200]!r}: {err}", kind)


class TooLong(ExpressionError):
    """A rendered text over the limit of what one render may write."""


# What can go wrong inside Jinja's sandbox, whatever the data and the limits: each is the
# template's fault, and retrying cannot help. (Database errors in link() or coupon() are
# none of these: they stay retryable.)
_FAILURES = (TemplateError, TypeError, ValueError, ArithmeticError, LookupError, RecursionError, MemoryError,
             SyntaxError)


def _is_none(value: Any) -> bool:
    return value is None or isinstance(value, Missing)


def _number_filter(value: Any, places: int = 0) -> str:
    if _is_none(value):
        return ""
    if not 0 <= places <= 20:
        raise bounds.Exceeded("number() takes 0 to 20 places")
    return f"{value:,.{places}f}"


def _date_filter(value: Any, fmt: str = "%b %d, %Y") -> str:
    if _is_none(value):
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime | date):
        return value.strftime(fmt)
    return str(value)


class _Environment(ImmutableSandboxedEnvironment):
    """`customer.attributes.items` is the attribute named items, not a dict method.
    Operators, calls and filters that can make big values are bounded (language/bounds.py)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    bounded_iter = staticmethod(bounds.bounded_iter)
    bounded_output = staticmethod(bounds.bounded_output)
    bounded_data = staticmethod(bounds.bounded_output)
    bounded_concat = staticmethod(bounds.bounded_concat)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Namespace):
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        bounds.charge()
        bounds.check_binop(operator, left, right)
        return bounds.made(super().call_binop(context, operator, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        bounds.charge()
        args = bounds.check_call(__obj, args, kwargs)
        return bounds.made(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None

        def bounded(*args: Any, **kwargs: Any) -> str:
            bounds.check_format_spec(value.__self__)
            return str(wrapped(*args, **kwargs))

        return bounded


def _make_environment(undefined: type, *, autoescape: bool = False) -> ImmutableSandboxedEnvironment:
    env = _Environment(undefined=undefined, autoescape=autoescape, keep_trailing_newline=False)
    env.tests["none"] = _is_none
    env.tests["missing"] = _is_none
    env.filters["number"] = _number_filter
    env.filters["date"] = _date_filter
    env.filters = {name: bounds.bounded_filter(name, f) for name, f in env.filters.items()}
    # lipsum(10**9) writes a billion paragraphs; the others are not part of the language.
    env.globals = {"range": bounds.bounded_range, "dict": dict}
    return env


# Runtime: missing values are forgiving. Checking: unknown names are reported by the
# validator from the syntax tree, before a journey can go live.
RUNTIME = _make_environment(Missing)
PARSER = _make_environment(StrictUndefined)
# An email's HTML part: every value is escaped, so a name cannot add markup or script.
RUNTIME_HTML = _make_environment(Missing, autoescape=True)
RUNTIME_HTML.bounded_data = lambda text: Markup(bounds.bounded_output(text))  # type: ignore[attr-defined]


def _wrap(value: Any) -> Any:
    """None becomes Missing, recursively through mappings, so comparisons stay safe."""
    if value is None:
        return Missing()
    if isinstance(value, Mapping):
        return Namespace({k: _wrap(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return [_wrap(v) for v in value]
    return value


class Namespace(dict):
    """A read-only mapping whose keys also read as attributes (``customer.tier``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            return Missing(name=name)

    def __missing__(self, key: str) -> Any:
        return Missing(name=key)


def build_context(values: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]]) -> dict:
    context = {name: _wrap(value) for name, value in values.items()}
    context.update({name: bounds.unbudgeted(function) for name, function in functions.items()})
    return context


def _checked(tree: nodes.Node) -> None:
    problems = bounds.tree_problems(tree)
    if problems:
        raise bounds.Exceeded(problems[0][0])


@lru_cache(maxsize=1024)
def _compiled_expression(source: str) -> TemplateExpression:
    """Compiled within bounds: the source's length and depth are checked before Jinja's
    code generation, which takes time cubic in the depth (250 chained `+`: 30 s)."""
    if reason := bounds.length_problem(source, "expression"):
        raise ExpressionError(reason, "limit")
    try:
        parser = Parser(RUNTIME, source, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            raise TemplateSyntaxError("chunk after expression", parser.stream.current.lineno)
        _checked(expr)
        body = [nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)]
        template = RUNTIME.from_string(bounds.bound_tree(nodes.Template(body, lineno=1)))
    except _FAILURES as err:
        raise ExpressionError.of("compile", source, err) from err
    return TemplateExpression(template, undefined_to_none=False)


@lru_cache(maxsize=1024)
def _compiled_template(source: str, html: bool = False) -> Any:
    env = RUNTIME_HTML if html else RUNTIME
    if not html and (reason := bounds.length_problem(source, "template")):
        raise ExpressionError(reason, "limit")
    try:
        tree = env.parse(source)
        _checked(tree)
        return env.from_string(bounds.bound_tree(tree))
    except _FAILURES as err:
        raise ExpressionError.of("compile template", source, err) from err


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """The value of an expression; ``Missing`` comes back as None. Raises ExpressionError,
    never anything else, whatever the data ('abc' >= 3, a division by zero, a limit)."""
    compiled = _compiled_expression(expression)
    try:
        with bounds.budget():
            value = compiled(**context)
    except _FAILURES as err:
        raise ExpressionError.of("evaluate", expression, err) from err
    return None if isinstance(value, Missing) else value


def is_true(expression: str, context: Mapping[str, Any]) -> bool:
    return bool(evaluate(expression, context))


def render(template: str, context: Mapping[str, Any], *, html: bool = False) -> str:
    """The rendered text; raises ExpressionError (TooLong over bounds.MAX_OUTPUT characters).
    ``html``: values are HTML-escaped (an email's HTML part; its length is bounded by the model)."""
    compiled = _compiled_template(template, html)
    try:
        with bounds.budget():
            return "".join(compiled.generate(**context))
    except _FAILURES as err:
        raise ExpressionError.of("render", template, err) from err


def parse_expression(source: str) -> nodes.Expr:
    """The syntax tree of an expression; raises ExpressionError with the parser's reason."""
    try:
        return PARSER.parse("{{ " + source + " }}").body[0].nodes[0]  # type: ignore[attr-defined]
    except TemplateError as err:
        raise ExpressionError(str(err)) from err
    except RecursionError as err:
        raise ExpressionError("nested too deeply to read") from err
    except (AttributeError, IndexError) as err:
        raise ExpressionError(f"{source!r} is not a single expression") from err


def parse_template(source: str) -> nodes.Template:
    try:
        return PARSER.parse(source)
    except TemplateError as err:
        raise ExpressionError(str(err)) from err
    except RecursionError as err:
        raise ExpressionError("nested too deeply to read") from err


@lru_cache(maxsize=1024)
def reads_name(source: str, name: str, *, template: bool) -> bool:
    """Whether an expression (or a template) uses the variable ``name`` at all; True when
    it cannot be read, so that a caller skipping what is unused never skips what is used."""
    try:
        tree: nodes.Node = parse_template(source) if template else parse_expression(source)
    except ExpressionError:
        return True
    return any(node.name == name for node in tree.find_all(nodes.Name))


@lru_cache(maxsize=1024)
def customer_reads(source: str, *, template: bool) -> frozenset[str] | None:
    """The fields of ``customer`` that an expression (or a template) names, as in
    ``customer.points`` or ``customer['points']``; None when it uses ``customer`` any other
    way (whole, through a variable) or cannot be read: then it may see every field."""
    try:
        tree: nodes.Node = parse_template(source) if template else parse_expression(source)
    except ExpressionError:
        return None
    named: set[str] = set()
    uses = 0
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        inner = node.node  # type: ignore[attr-defined]
        if isinstance(inner, nodes.Name) and inner.name == "customer":
            field = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)  # type: ignore[attr-defined]
            if not isinstance(field, str):
                return None
            named.add(field)
            uses += 1
    loads = sum(1 for name in tree.find_all(nodes.Name) if name.name == "customer")
    return frozenset(named) if loads == uses else None
