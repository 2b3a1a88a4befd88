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
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment


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
    """An expression or template that cannot be compiled or evaluated."""


def _is_none(value: Any) -> bool:
    return value is None or isinstance(value, Missing)


def _number_filter(value: Any, places: int = 0) -> str:
    if _is_none(value):
        return ""
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
    """`customer.attributes.items` is the attribute named items, not a dict method."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Namespace):
            return obj[attribute]
        return super().getattr(obj, attribute)


def _make_environment(undefined: type) -> ImmutableSandboxedEnvironment:
    env = _Environment(undefined=undefined, autoescape=False, keep_trailing_newline=False)
    env.tests["none"] = _is_none
    env.tests["missing"] = _is_none
    env.filters["number"] = _number_filter
    env.filters["date"] = _date_filter
    return env


# Runtime: missing values are forgiving. Checking: unknown names are reported by the
# validator from the syntax tree, before a journey can go live.
RUNTIME = _make_environment(Missing)
PARSER = _make_environment(StrictUndefined)


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
    context.update(functions)
    return context


@lru_cache(maxsize=1024)
def _compiled_expression(source: str) -> Any:
    try:
        return RUNTIME.compile_expression(source, undefined_to_none=False)
    except TemplateError as err:
        raise ExpressionError(f"cannot compile {source!r}: {err}") from err


@lru_cache(maxsize=1024)
def _compiled_template(source: str) -> Any:
    try:
        return RUNTIME.from_string(source)
    except TemplateError as err:
        raise ExpressionError(f"cannot compile template {source!r}: {err}") from err


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """The value of an expression; ``Missing`` comes back as None. Raises ExpressionError,
    never anything else, whatever the data ('abc' >= 3, a division by zero)."""
    try:
        value = _compiled_expression(expression)(**context)
    except (TemplateError, TypeError, ValueError, ArithmeticError) as err:
        raise ExpressionError(f"cannot evaluate {expression!r}: {err}") from err
    return None if isinstance(value, Missing) else value


def is_true(expression: str, context: Mapping[str, Any]) -> bool:
    return bool(evaluate(expression, context))


def render(template: str, context: Mapping[str, Any]) -> str:
    try:
        return _compiled_template(template).render(**context)
    except (TemplateError, TypeError, ValueError, ArithmeticError) as err:
        raise ExpressionError(f"cannot render {template!r}: {err}") from err


def parse_expression(source: str) -> nodes.Expr:
    """The syntax tree of an expression; raises ExpressionError with the parser's reason."""
    try:
        return PARSER.parse("{{ " + source + " }}").body[0].nodes[0]  # type: ignore[attr-defined]
    except TemplateError as err:
        raise ExpressionError(str(err)) from err
    except (AttributeError, IndexError) as err:
        raise ExpressionError(f"{source!r} is not a single expression") from err


def parse_template(source: str) -> nodes.Template:
    try:
        return PARSER.parse(source)
    except TemplateError as err:
        raise ExpressionError(str(err)) from err
