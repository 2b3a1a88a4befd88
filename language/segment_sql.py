"""Segment rules as SQL: a rule from segments.yaml becomes one boolean SQLAlchemy
expression over the ``customers`` table, so the database (SQLite or PostgreSQL), not a
Python loop, finds a segment's members.

The SQL agrees with the runtime (``language.expressions`` over
``core.customers.records.customer_view``) customer by customer:

* A missing value is ``none``. Every comparison is compiled as "the comparison holds",
  never NULL (SQL's ``NOT (NULL >= 30)`` would be NULL, the runtime's
  ``not (none >= 30)`` is true); ``== none`` holds for a missing value and ``!=``
  holds when exactly one side is missing, as at runtime.
* ``customer.days_since_last_purchase`` is whole days since the last purchase, floored
  (``(now - last_purchase_at).days``). Compared with a number it becomes a comparison
  of ``last_purchase_at`` with a moment, which the column's index serves.
* ``customer.points`` is the ledger balance at ``now`` (what the runtime reads), not the
  cached column; ``customer.avg_order_value`` is none without orders.
* ``customer.attributes.<key>`` (or ``['key']``, nested keys too) reads the JSON
  attribute with the type the comparison needs; a value of another type (a text
  compared with a number) counts as missing, where the runtime would stop with an
  error. JSON booleans are numbers 1 and 0, as in Python.
* ``average.<field>`` is the mean over all customers who have a value: AVG ignores
  none, so ``average.avg_order_value`` is over customers with orders, and
  ``average.days_since_last_purchase`` over customers who bought.
* ``in_segment('x')`` and ``'x' in customer.segments`` read the stored memberships.
* Windows and habits (``language.habits``) are correlated subqueries over the
  ``purchases``, ``purchase_items``, ``clicks``/``links``, ``events`` and ``messages``
  rows of the customer, bounded by ``now``: a window is ``now - w < moment <= now``;
  whole days and ``purchase_interval_days`` in exact integer microseconds, floored as
  at runtime; ``age`` from the birthday's year and month-day against ``now``'s UTC date.
* ``/`` is true division; division by zero is none (the runtime would stop).
* Text is ordered by code point, as in Python (PostgreSQL: ``COLLATE "C"``).

Supported: ``and``, ``or``, ``not``, ``== != < <= > >=`` (chained too), ``in`` /
``not in`` with a list of literals or ``customer.segments``, ``+ - * /``, unary
``-``, literals (numbers, text, true/false, none), ``is none`` / ``is not none``
(also ``is defined`` / ``is undefined``), ``| default(<literal>)``,
``in_segment('<name>')``, and the habit methods with literal arguments
(``customer.orders_in('90d')``, ``customer.bought('coffee'[, '30d'])``) and
``'<text>' in customer.categories``. Anything else is a compile problem, reported by
``compile_problems`` when a journeys directory is validated.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from jinja2 import nodes
from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    Integer,
    String,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.type_api import TypeEngine
from sqlalchemy.sql.visitors import InternalTraversal
from sqlmodel import SQLModel

from language.expressions import ExpressionError, parse_expression
from language.habits import METHODS, NUMBER_METHODS, REPLY_EVENT, SENT_STATUSES, example, parse_window
from store.tables import (
    Click,
    Customer,
    Event,
    Link,
    Message,
    PointsEntry,
    Purchase,
    PurchaseItem,
    SegmentMembership,
)

__all__ = ["RuleError", "compile_problems", "compile_rule", "rule_reads", "rule_segments"]

CUSTOMERS = SQLModel.metadata.tables[Customer.__tablename__]
MEMBERSHIPS = SQLModel.metadata.tables[SegmentMembership.__tablename__]
LEDGER = SQLModel.metadata.tables[PointsEntry.__tablename__]
PURCHASES = SQLModel.metadata.tables[Purchase.__tablename__]
ITEMS = SQLModel.metadata.tables[PurchaseItem.__tablename__]
CLICKS = SQLModel.metadata.tables[Click.__tablename__]
LINKS = SQLModel.metadata.tables[Link.__tablename__]
MESSAGES = SQLModel.metadata.tables[Message.__tablename__]
EVENTS = SQLModel.metadata.tables[Event.__tablename__]

NUMBER, TEXT, DATETIME, DATE, JSON, SEGMENTS, ATTRIBUTES, BOOL, NONE, CATEGORIES = (
    "number", "text", "datetime", "date", "json", "segments", "attributes", "condition", "none",
    "categories")  # fmt: skip
_KIND_NAMES = {NUMBER: "a number", TEXT: "text", DATETIME: "a date and time", DATE: "a date",
               SEGMENTS: "a list of segments", ATTRIBUTES: "the attributes", BOOL: "a condition", NONE: "none",
               CATEGORIES: "a list of categories"}
_LISTS = (SEGMENTS, CATEGORIES)

TEXT_FIELDS = ("id", "first_name", "last_name", "email", "locale", "timezone", "tier", "sms_consent")
NUMBER_FIELDS = ("points", "total_spent", "orders_count", "avg_order_value", "days_since_last_purchase")
DATETIME_FIELDS = ("first_purchase_at", "last_purchase_at")
# Python dicts answer these as methods (the runtime's customer.attributes.items is
# dict.items): such keys must be written customer.attributes['items'].
# What data each customer field and method reads (``rule_reads``): the event path
# re-evaluates a rule at once when an event changes what it reads (core.segments.immediate).
PURCHASES_DATA, CLICKS_DATA, REPLIES_DATA, MESSAGES_DATA, CONSENT_DATA, PROFILE_DATA, LOYALTY_DATA, SEGMENTS_DATA = (
    "purchases", "clicks", "replies", "messages", "consent", "profile", "loyalty", "segments")  # fmt: skip
_FIELD_READS = {
    **dict.fromkeys(("orders_count", "total_spent", "avg_order_value", "days_since_last_purchase",
                     "first_purchase_at", "last_purchase_at", "categories", "purchase_interval_days",
                     "days_until_due", "orders_in", "spent_in", "bought"), PURCHASES_DATA),
    "days_since_last_click": CLICKS_DATA, "clicks_in": CLICKS_DATA, "replies_in": REPLIES_DATA,
    "messages_in": MESSAGES_DATA, "sms_consent": CONSENT_DATA, "points": LOYALTY_DATA, "tier": LOYALTY_DATA,
    "segments": SEGMENTS_DATA,
}  # any other field (attributes, names, birthday, age, locale, ...) is the profile
_DICT_METHODS = frozenset(n for n in dir(dict) if not n.startswith("_"))
_MICROS_PER_DAY = 86_400_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NOT_CONST = object()


class RuleError(ValueError):
    """A segment rule that cannot become SQL; the message says why, for the marketer."""


@dataclass(frozen=True)
class _Value:
    """One compiled sub-expression: what kind of value it is, and its SQL or constant."""

    kind: str
    sql: Any = None  # the SQL expression; None for constants and JSON attributes
    const: Any = _NOT_CONST  # the value, when known at compile time
    table: Any = None  # JSON: the customers table (or alias) the attribute is read from
    path: tuple[str, ...] = ()  # JSON: the keys under customer.attributes
    days_of: Any = None  # days_since_last_purchase: the last_purchase_at column
    text: str = ""  # how the rule wrote it, for messages

    @property
    def is_const(self) -> bool:
        return self.const is not _NOT_CONST


# --- SQL constructs the two databases spell differently ----------------------------------


class _JsonAttribute(ColumnElement):
    """customer.attributes at ``keys``, read as ``mode``: number | text | missing | truthy.

    number and text are NULL when the JSON value is missing or of another type."""

    inherit_cache = False  # never cached: a rule's SQL is built once per refresh
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement),
                           ("keys", InternalTraversal.dp_string_list), ("mode", InternalTraversal.dp_string)]

    def __init__(self, column: Any, keys: tuple[str, ...], mode: str) -> None:
        self.column = column
        self.keys = keys
        self.mode = mode
        types: dict[str, TypeEngine[Any]] = {"number": Float(), "text": String(), "missing": Boolean(),
                                             "truthy": Boolean()}
        self.type = types[mode]

    def get_children(self, **_: Any) -> list[Any]:
        return [self.column]


@compiles(_JsonAttribute, "sqlite")
def _json_sqlite(element: _JsonAttribute, compiler: Any, **kw: Any) -> str:
    path = "$" + "".join(f'."{key}"' for key in element.keys)

    def col() -> str:
        return compiler.process(element.column, **kw)

    def arg() -> str:
        return compiler.process(literal(path, String()), **kw)

    def kind() -> str:
        return f"json_type({col()}, {arg()})"

    def value() -> str:
        return f"json_extract({col()}, {arg()})"

    if element.mode == "number":
        return (f"(CASE {kind()} WHEN 'integer' THEN {value()} WHEN 'real' THEN {value()} "
                "WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)")
    if element.mode == "text":
        return f"(CASE WHEN {kind()} = 'text' THEN {value()} END)"
    if element.mode == "missing":
        return f"(COALESCE({kind()}, 'null') = 'null')"
    return (f"(CASE {kind()} WHEN 'true' THEN 1 WHEN 'integer' THEN {value()} <> 0 "
            f"WHEN 'real' THEN {value()} <> 0 WHEN 'text' THEN {value()} <> '' "
            f"WHEN 'array' THEN json_array_length({col()}, {arg()}) > 0 "
            f"WHEN 'object' THEN {value()} <> '{{}}' ELSE 0 END)")


@compiles(_JsonAttribute, "postgresql")
def _json_postgresql(element: _JsonAttribute, compiler: Any, **kw: Any) -> str:
    def node() -> str:
        keys = "".join(f" -> {compiler.process(literal(key, String()), **kw)}" for key in element.keys)
        return f"({compiler.process(element.column, **kw)}{keys})"

    def kind() -> str:
        return f"json_typeof({node()})"

    def scalar() -> str:
        return f"({node()} #>> '{{}}')"

    if element.mode == "number":
        return (f"(CASE {kind()} WHEN 'number' THEN CAST({scalar()} AS DOUBLE PRECISION) "
                f"WHEN 'boolean' THEN CASE WHEN {scalar()} = 'true' THEN CAST(1 AS DOUBLE PRECISION) "
                "ELSE CAST(0 AS DOUBLE PRECISION) END END)")
    if element.mode == "text":
        return f"(CASE WHEN {kind()} = 'string' THEN {scalar()} END)"
    if element.mode == "missing":
        return f"(COALESCE({kind()}, 'null') = 'null')"
    return (f"(CASE {kind()} WHEN 'boolean' THEN {scalar()} = 'true' "
            f"WHEN 'number' THEN CAST({scalar()} AS DOUBLE PRECISION) <> 0 "
            f"WHEN 'string' THEN {scalar()} <> '' WHEN 'array' THEN json_array_length({node()}) > 0 "
            f"WHEN 'object' THEN EXISTS (SELECT 1 FROM json_object_keys({node()})) ELSE FALSE END)")


def _sqlite_micros(col: str) -> str:
    """Microseconds since 1970 of a UTC moment SQLite keeps as 'YYYY-MM-DD HH:MM:SS.ffffff' text."""
    return (f"(CAST(strftime('%s', {col}) AS INTEGER) * 1000000 "
            f"+ CAST(substr(substr({col}, 21) || '000000', 1, 6) AS INTEGER))")


class _DaysSince(ColumnElement):
    """Whole days from ``column`` to a fixed moment, floored like timedelta.days; NULL if NULL."""

    inherit_cache = False
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement),
                           ("now_micros", InternalTraversal.dp_plain_obj)]
    type = BigInteger()

    def __init__(self, column: Any, now: datetime) -> None:
        self.column = column
        self.now_micros = (now - _EPOCH) // timedelta(microseconds=1)

    def get_children(self, **_: Any) -> list[Any]:
        return [self.column]


@compiles(_DaysSince, "sqlite")
def _days_sqlite(element: _DaysSince, compiler: Any, **kw: Any) -> str:
    # SQLite keeps UTC as 'YYYY-MM-DD HH:MM:SS.ffffff' text: whole seconds from
    # strftime, microseconds from the text, all in exact integer arithmetic.
    def diff() -> str:
        return f"({int(element.now_micros)} - {_sqlite_micros(compiler.process(element.column, **kw))})"

    day = _MICROS_PER_DAY
    return f"(CASE WHEN {diff()} >= 0 THEN {diff()} / {day} ELSE -(({day - 1} - {diff()}) / {day}) END)"


@compiles(_DaysSince, "postgresql")
def _days_postgresql(element: _DaysSince, compiler: Any, **kw: Any) -> str:
    # EXTRACT(EPOCH ...) is an exact numeric on PostgreSQL 14 and later.
    now = Decimal(int(element.now_micros)).scaleb(-6)
    col = compiler.process(element.column, **kw)
    return f"CAST(floor((CAST('{now}' AS NUMERIC) - EXTRACT(EPOCH FROM {col})) / 86400) AS BIGINT)"


class _Age(ColumnElement):
    """Whole years from the date ``column`` to ``today``, as ``language.habits.whole_years``; NULL if NULL."""

    inherit_cache = False
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement), ("today", InternalTraversal.dp_plain_obj)]
    type = Integer()

    def __init__(self, column: Any, today: date) -> None:
        self.column = column
        self.today = today

    def get_children(self, **_: Any) -> list[Any]:
        return [self.column]


@compiles(_Age, "sqlite")
def _age_sqlite(element: _Age, compiler: Any, **kw: Any) -> str:
    col = compiler.process(element.column, **kw)  # a date is 'YYYY-MM-DD' text
    today = element.today
    return (f"({today.year} - CAST(substr({col}, 1, 4) AS INTEGER) - "
            f"(CASE WHEN substr({col}, 6, 2) || substr({col}, 9, 2) > '{today:%m%d}' THEN 1 ELSE 0 END))")


@compiles(_Age, "postgresql")
def _age_postgresql(element: _Age, compiler: Any, **kw: Any) -> str:
    col = compiler.process(element.column, **kw)
    today = element.today
    return (f"({today.year} - CAST(EXTRACT(YEAR FROM {col}) AS INTEGER) - "
            f"(CASE WHEN to_char({col}, 'MMDD') > '{today:%m%d}' THEN 1 ELSE 0 END))")


class _Interval(ColumnElement):
    """floor((last - first) / (count - 1)) in whole days, exactly; only used when count >= 2."""

    inherit_cache = False
    _traverse_internals = [("first", InternalTraversal.dp_clauseelement), ("last", InternalTraversal.dp_clauseelement),
                           ("count", InternalTraversal.dp_clauseelement)]
    type = BigInteger()

    def __init__(self, first: Any, last: Any, count: Any) -> None:
        self.first, self.last, self.count = first, last, count

    def get_children(self, **_: Any) -> list[Any]:
        return [self.first, self.last, self.count]


@compiles(_Interval, "sqlite")
def _interval_sqlite(element: _Interval, compiler: Any, **kw: Any) -> str:
    first, last, count = (compiler.process(part, **kw) for part in (element.first, element.last, element.count))
    # last >= first: integer division floors.
    return f"(({_sqlite_micros(last)} - {_sqlite_micros(first)}) / (NULLIF({count} - 1, 0) * {_MICROS_PER_DAY}))"


@compiles(_Interval, "postgresql")
def _interval_postgresql(element: _Interval, compiler: Any, **kw: Any) -> str:
    first, last, count = (compiler.process(part, **kw) for part in (element.first, element.last, element.count))
    def micros(col: str) -> str:  # EXTRACT(EPOCH ...) is exact numeric (PostgreSQL 14+): so is this
        return f"CAST(EXTRACT(EPOCH FROM {col}) * 1000000 AS BIGINT)"

    return f"(({micros(last)} - {micros(first)}) / (NULLIF({count} - 1, 0) * CAST({_MICROS_PER_DAY} AS BIGINT)))"


class _CodePointOrder(ColumnElement):
    """Text ordered by code point, as Python orders str (PostgreSQL: COLLATE "C")."""

    inherit_cache = False
    _traverse_internals = [("inner", InternalTraversal.dp_clauseelement)]
    type = String()

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def get_children(self, **_: Any) -> list[Any]:
        return [self.inner]


@compiles(_CodePointOrder)
def _order_default(element: _CodePointOrder, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.inner, **kw)


@compiles(_CodePointOrder, "postgresql")
def _order_postgresql(element: _CodePointOrder, compiler: Any, **kw: Any) -> str:
    return f'({compiler.process(element.inner, **kw)} COLLATE "C")'


# --- the compiler -----------------------------------------------------------------------

_ORDERING: dict[str, Callable[[Any, Any], Any]] = {
    "lt": operator.lt, "lteq": operator.le, "gt": operator.gt, "gteq": operator.ge}  # fmt: skip
_FLIPPED = {"lt": "gt", "lteq": "gteq", "gt": "lt", "gteq": "lteq", "eq": "eq", "ne": "ne"}
_SYMBOL = {"eq": "==", "ne": "!=", "lt": "<", "lteq": "<=", "gt": ">", "gteq": ">=", "in": "in", "notin": "not in"}
_ARITHMETIC: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    nodes.Add: ("+", operator.add), nodes.Sub: ("-", operator.sub),
    nodes.Mul: ("*", operator.mul), nodes.Div: ("/", operator.truediv),
}  # fmt: skip


def _text(node: nodes.Node) -> str:
    """A short rendering of a node for messages."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{_text(node.node)}.{node.attr}"
    if isinstance(node, nodes.Getitem):
        return f"{_text(node.node)}[{_text(node.arg)}]"
    if isinstance(node, nodes.Const):
        return "none" if node.value is None else repr(node.value)
    if isinstance(node, nodes.Call):
        return f"{_text(node.node)}(...)"
    return type(node).__name__.lower()


class _Compiler:
    def __init__(self, now: datetime, table: Any) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.now = now
        self.table = table
        self.segments: set[str] = set()
        self.reads: set[str] = set()  # which data (_FIELD_READS) the rule reads

    # -- entry points ----------------------------------------------------------------------

    def condition(self, node: nodes.Node) -> Any:
        """A non-NULL SQL boolean: whether the runtime's bool(value) is true."""
        if isinstance(node, nodes.And):
            return and_(self.condition(node.left), self.condition(node.right))
        if isinstance(node, nodes.Or):
            return or_(self.condition(node.left), self.condition(node.right))
        if isinstance(node, nodes.Not):
            return not_(self.condition(node.node))
        return self.truth(self.value(node))

    def truth(self, v: _Value) -> Any:
        if v.kind == BOOL:
            return v.sql
        if v.is_const:
            return true() if v.const else false()
        if v.kind == NUMBER:
            return func.coalesce(v.sql != 0, false())
        if v.kind == TEXT:
            return func.coalesce(v.sql != "", false())
        if v.kind in (DATETIME, DATE):
            return v.sql.is_not(None)
        if v.kind == JSON:
            return _JsonAttribute(v.table.c.attributes, v.path, "truthy")
        if v.kind == SEGMENTS:
            self.segments.add("*")
            return exists().where(MEMBERSHIPS.c.customer_id == self.table.c.id)
        if v.kind == CATEGORIES:
            return exists().where(*self.items_of(v.table), ITEMS.c.category.is_not(None))
        raise RuleError(f"{v.text} is not a condition: compare it, e.g. customer.attributes.vip == true")

    # -- values ----------------------------------------------------------------------------

    def value(self, node: nodes.Node) -> _Value:
        if isinstance(node, nodes.Const):
            return self.const(node.value)
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            return self.field(node)
        if isinstance(node, nodes.Name):
            if node.name in ("customer", "average"):
                raise RuleError(f"{node.name} needs a field, e.g. {node.name}.total_spent")
            raise RuleError(f"unknown name '{node.name}': segment rules use customer.<field> and average.<field>")
        if isinstance(node, nodes.Compare):
            return _Value(BOOL, sql=self.compare(node), text="a comparison")
        if isinstance(node, nodes.And | nodes.Or | nodes.Not):
            return _Value(BOOL, sql=self.condition(node), text="a condition")
        if isinstance(node, nodes.Test):
            return _Value(BOOL, sql=self.test(node), text="a test")
        if type(node) in _ARITHMETIC:
            return self.arithmetic(node)  # type: ignore[arg-type]
        if isinstance(node, nodes.Neg | nodes.Pos):
            return self.unary(node)
        if isinstance(node, nodes.Call):
            if isinstance(node.node, nodes.Getattr) and isinstance(node.node.node, nodes.Name) \
                    and node.node.node.name == "customer":
                return self.habit(node.node.attr, node)
            return _Value(BOOL, sql=self.call(node), text="in_segment(...)")
        if isinstance(node, nodes.Filter):
            return self.filter(node)
        if isinstance(node, nodes.List | nodes.Tuple):
            raise RuleError("a list can only follow 'in', e.g. customer.tier in ['gold', 'platinum']")
        names: dict[type[nodes.Node], str] = {
            nodes.FloorDiv: "'//'", nodes.Mod: "'%'", nodes.Pow: "'**'", nodes.Concat: "'~'",
            nodes.CondExpr: "'... if ... else ...'", nodes.Dict: "a mapping"}
        what = names.get(type(node), type(node).__name__)
        raise RuleError(f"{what} cannot be used in segment rules")

    def const(self, value: Any) -> _Value:
        if value is None:
            return _Value(NONE, const=None, text="none")
        if isinstance(value, bool):
            return _Value(NUMBER, const=value, text="true" if value else "false")
        if isinstance(value, int):
            if abs(value) >= 2**63:
                raise RuleError(f"the number {value} is too large")
            return _Value(NUMBER, const=value, text=str(value))
        if isinstance(value, float):
            if not math.isfinite(value):
                raise RuleError(f"{value} is not a usable number")
            return _Value(NUMBER, const=value, text=repr(value))
        if isinstance(value, str):
            return _Value(TEXT, const=value, text=repr(value))
        raise RuleError(f"{value!r} cannot be used in segment rules")

    def field(self, node: nodes.Getattr | nodes.Getitem) -> _Value:
        parts: list[tuple[str, bool]] = []  # (key, written with a dot)
        inner: nodes.Node = node
        while isinstance(inner, nodes.Getattr | nodes.Getitem):
            if isinstance(inner, nodes.Getattr):
                parts.append((inner.attr, True))
            elif isinstance(inner.arg, nodes.Const) and isinstance(inner.arg.value, str):
                parts.append((inner.arg.value, False))
            else:
                raise RuleError(f"{_text(inner)}: only quoted keys can be used in segment rules, "
                                "e.g. customer.attributes['store']")
            inner = inner.node
        if not isinstance(inner, nodes.Name):
            raise RuleError(f"{_text(node)} cannot be used in segment rules")
        parts.reverse()
        text = _text(node)
        if inner.name == "customer":
            return self.customer_field(self.table, [p for p, _ in parts], [dot for _, dot in parts], text)
        if inner.name == "average":
            return self.average(parts, text)
        raise RuleError(f"unknown name '{inner.name}': segment rules use customer.<field> and average.<field>")

    def customer_field(self, table: Any, keys: list[str], dotted: list[bool], text: str) -> _Value:
        name, rest = keys[0], keys[1:]
        self.reads.add(_FIELD_READS.get(name, PROFILE_DATA))
        if name == "attributes":
            for key, dot in zip(rest, dotted[1:], strict=True):
                if dot and (key in _DICT_METHODS or key.startswith("_")):
                    raise RuleError(f"write customer.attributes['{key}'] rather than .{key}: "
                                    f"'{key}' is not read as an attribute with a dot")
                if not key or any(c in key for c in "\"\\") or any(ord(c) < 32 for c in key):
                    raise RuleError(f"the attribute name {key!r} cannot be used in segment rules")
            if not rest:
                return _Value(ATTRIBUTES, text=text)
            return _Value(JSON, table=table, path=tuple(rest), text=text)
        if rest:
            raise RuleError(f"customer.{name} has no field '{rest[0]}'")
        column = getattr(table.c, name, None) if name not in ("points", "segments") else None
        if name in TEXT_FIELDS:
            return _Value(TEXT, sql=column, text=text)
        if name in DATETIME_FIELDS:
            return _Value(DATETIME, sql=column, text=text)
        if name == "birthday":
            return _Value(DATE, sql=column, text=text)
        if name in ("orders_count", "total_spent"):
            return _Value(NUMBER, sql=column, text=text)
        if name == "avg_order_value":
            orders = table.c.orders_count
            return _Value(NUMBER, sql=case((orders != 0, cast(table.c.total_spent, Float) / orders)), text=text)
        if name == "days_since_last_purchase":
            return _Value(NUMBER, sql=_DaysSince(table.c.last_purchase_at, self.now), days_of=table.c.last_purchase_at,
                          text=text)
        if name == "points":
            balance = (select(func.coalesce(func.sum(LEDGER.c.points), 0))
                       .where(LEDGER.c.customer_id == table.c.id, LEDGER.c.occurred_at <= self.now,
                              or_(LEDGER.c.expires_at.is_(None), LEDGER.c.expires_at > self.now))
                       .scalar_subquery())
            return _Value(NUMBER, sql=balance, text=text)
        if name == "segments":
            return _Value(SEGMENTS, text=text)
        if name == "categories":
            return _Value(CATEGORIES, table=table, text=text)
        if name == "age":
            return _Value(NUMBER, sql=_Age(table.c.birthday, self.now.astimezone(UTC).date()), text=text)
        if name in ("purchase_interval_days", "days_until_due"):
            return _Value(NUMBER, sql=self.interval(table, until_due=name == "days_until_due"), text=text)
        if name == "days_since_last_click":
            last = (select(func.max(CLICKS.c.clicked_at)).select_from(self.clicks())
                    .where(LINKS.c.customer_id == table.c.id, CLICKS.c.bot.is_(None), CLICKS.c.clicked_at <= self.now)
                    .scalar_subquery())
            return _Value(NUMBER, sql=_DaysSince(last, self.now), text=text)
        if name in METHODS:
            raise RuleError(f"customer.{name} is a function: call it, e.g. {example(name)}")
        raise RuleError(f"customer has no field '{name}'")

    # -- windows and habits (language.habits) -------------------------------------------------

    def clicks(self) -> Any:
        return CLICKS.join(LINKS, LINKS.c.code == CLICKS.c.link_code)

    def items_of(self, table: Any) -> list[Any]:
        return [ITEMS.c.customer_id == table.c.id, ITEMS.c.occurred_at <= self.now]

    def interval(self, table: Any, until_due: bool) -> Any:
        """Whole days between orders on average ((last - first) / (orders - 1), floored);
        with ``until_due``, that less the whole days since the last order. None under 2 orders."""
        mine = (PURCHASES.c.customer_id == table.c.id, PURCHASES.c.occurred_at <= self.now)
        count = select(func.count()).where(*mine).scalar_subquery()
        first = select(func.min(PURCHASES.c.occurred_at)).where(*mine).scalar_subquery()
        last = select(func.max(PURCHASES.c.occurred_at)).where(*mine).scalar_subquery()
        days: Any = _Interval(first, last, count)
        if until_due:
            days = days - _DaysSince(last, self.now)
        return case((count >= 2, days))

    def window(self, method: str, node: nodes.Node | None) -> datetime:
        """The start of the window an argument names (the window ends at now)."""
        if not (isinstance(node, nodes.Const) and isinstance(node.value, str)):
            raise RuleError(f"customer.{method}() takes a quoted window such as '90d'")
        try:
            return self.now - parse_window(node.value)
        except ValueError as err:
            raise RuleError(f"customer.{method}(): {err}") from None
        except OverflowError:
            raise RuleError(f"customer.{method}(): the window reaches before the calendar") from None

    def habit(self, method: str, node: nodes.Call) -> _Value:
        text = f"customer.{method}(...)"
        self.reads.add(_FIELD_READS.get(method, PROFILE_DATA))
        if method not in METHODS:
            raise RuleError(f"customer.{method}() cannot be used in segment rules")
        takes = METHODS[method]
        fewest = sum(required for _, required in takes)
        if node.kwargs or node.dyn_args or node.dyn_kwargs or not fewest <= len(node.args) <= len(takes):
            counts = f"{fewest}" if fewest == len(takes) else f"{fewest} or {len(takes)}"
            raise RuleError(f"customer.{method}() takes {counts} argument(s), e.g. {example(method)}")
        if method == "bought":
            name = node.args[0]
            if not (isinstance(name, nodes.Const) and isinstance(name.value, str)):
                raise RuleError("customer.bought() takes a quoted product or category, e.g. customer.bought('coffee')")
            where = [*self.items_of(self.table),
                     or_(ITEMS.c.category == name.value, ITEMS.c.product == name.value)]
            if len(node.args) == 2:
                where.append(ITEMS.c.occurred_at > self.window(method, node.args[1]))
            return _Value(BOOL, sql=exists().where(*where), text=text)
        start = self.window(method, node.args[0])
        assert method in NUMBER_METHODS
        me = self.table.c.id
        if method in ("orders_in", "spent_in"):
            span = (PURCHASES.c.customer_id == me, PURCHASES.c.occurred_at > start, PURCHASES.c.occurred_at <= self.now)
            if method == "orders_in":
                return _Value(NUMBER, sql=select(func.count()).where(*span).scalar_subquery(), text=text)
            spent = select(func.coalesce(func.sum(PURCHASES.c.total), 0.0)).where(*span).scalar_subquery()
            return _Value(NUMBER, sql=spent, text=text)
        if method == "clicks_in":
            query = (select(func.count()).select_from(self.clicks())
                     .where(LINKS.c.customer_id == me, CLICKS.c.bot.is_(None), CLICKS.c.clicked_at > start,
                            CLICKS.c.clicked_at <= self.now))
        elif method == "replies_in":
            query = select(func.count()).where(EVENTS.c.customer_id == me, EVENTS.c.type == REPLY_EVENT,
                                               EVENTS.c.occurred_at > start, EVENTS.c.occurred_at <= self.now)
        else:
            query = select(func.count()).where(MESSAGES.c.customer_id == me, MESSAGES.c.status.in_(SENT_STATUSES),
                                               MESSAGES.c.sent_at > start, MESSAGES.c.sent_at <= self.now)
        return _Value(NUMBER, sql=query.scalar_subquery(), text=text)

    def average(self, parts: list[tuple[str, bool]], text: str) -> _Value:
        if len(parts) != 1 or parts[0][0] not in NUMBER_FIELDS:
            fields = ", ".join(NUMBER_FIELDS)
            raise RuleError(f"{text}: average takes one numeric customer field ({fields})")
        everyone = CUSTOMERS.alias()
        of = self.customer_field(everyone, [parts[0][0]], [True], text)
        mean = select(cast(func.avg(of.sql), Float)).select_from(everyone).scalar_subquery()
        return _Value(NUMBER, sql=mean, text=text)

    def call(self, node: nodes.Call) -> Any:
        if not (isinstance(node.node, nodes.Name) and node.node.name == "in_segment"):
            raise RuleError(f"{_text(node.node)}() cannot be used in segment rules (only in_segment('<name>'))")
        if node.kwargs or node.dyn_args or node.dyn_kwargs or len(node.args) != 1 or not (
                isinstance(node.args[0], nodes.Const) and isinstance(node.args[0].value, str)):
            raise RuleError("in_segment takes one quoted segment name, e.g. in_segment('vip')")
        return self.member_of(node.args[0].value)

    def member_of(self, segment: str) -> Any:
        self.segments.add(segment)
        self.reads.add(SEGMENTS_DATA)
        return exists().where(MEMBERSHIPS.c.customer_id == self.table.c.id, MEMBERSHIPS.c.segment == segment)

    def filter(self, node: nodes.Filter) -> _Value:
        if node.name not in ("default", "d"):
            raise RuleError(f"the filter '{node.name}' cannot be used in segment rules (only default)")
        if node.kwargs or node.dyn_args or node.dyn_kwargs or len(node.args) != 1 or not isinstance(
                node.args[0], nodes.Const):
            raise RuleError("default takes one literal value in segment rules, e.g. default(0)")
        assert node.node is not None
        v, fallback = self.value(node.node), self.const(node.args[0].value)
        if v.is_const or fallback.kind == NONE:
            return v  # a literal is never undefined; default(none) changes nothing
        if v.kind == JSON:
            typed = self.as_kind(v, fallback.kind, "default")
            missing = _JsonAttribute(v.table.c.attributes, v.path, "missing")
            return replace(typed, sql=case((missing, self.sql(fallback)), else_=typed.sql))
        if v.kind != fallback.kind:
            raise RuleError(f"{v.text} is {_KIND_NAMES[v.kind]}: its default must be too, not {fallback.text}")
        return _Value(v.kind, sql=func.coalesce(v.sql, self.sql(fallback)), text=v.text)

    def unary(self, node: nodes.Neg | nodes.Pos) -> _Value:
        v = self.number(self.value(node.node), "-" if isinstance(node, nodes.Neg) else "+")
        if isinstance(node, nodes.Pos):
            return v
        if v.is_const:
            return _Value(NUMBER, const=-v.const, text=f"-{v.text}")
        return _Value(NUMBER, sql=-v.sql, text=f"-{v.text}")

    def arithmetic(self, node: nodes.BinExpr) -> _Value:
        symbol, python = _ARITHMETIC[type(node)]
        a = self.number(self.value(node.left), symbol)
        b = self.number(self.value(node.right), symbol)
        text = f"{a.text} {symbol} {b.text}"
        if a.is_const and b.is_const:
            try:
                return self.const(python(a.const, b.const))
            except ZeroDivisionError:
                raise RuleError(f"{text}: division by zero") from None
        left, right = self.sql(a), self.sql(b)
        if symbol == "/":
            return _Value(NUMBER, sql=cast(left, Float) / func.nullif(right, 0), text=text)
        return _Value(NUMBER, sql=python(left, right), text=text)

    def number(self, v: _Value, symbol: str) -> _Value:
        if v.kind == JSON:
            return self.as_kind(v, NUMBER, symbol)
        if v.kind != NUMBER:
            raise RuleError(f"'{symbol}' needs numbers: {v.text} is {_KIND_NAMES[v.kind]}")
        return v

    # -- comparisons -----------------------------------------------------------------------

    def test(self, node: nodes.Test) -> Any:
        if node.name not in ("none", "missing", "defined", "undefined"):
            raise RuleError(f"the test 'is {node.name}' cannot be used in segment rules (only is none / is not none)")
        if node.args or node.kwargs or node.dyn_args or node.dyn_kwargs:
            raise RuleError(f"is {node.name} takes no arguments")
        missing = self.missing(self.value(node.node))
        return not_(missing) if node.name == "defined" else missing

    def compare(self, node: nodes.Compare) -> Any:
        """Python's chained comparison: a < b < c is a < b and b < c."""
        holds = []
        left = self.value(node.expr)
        for index, operand in enumerate(node.ops):
            if operand.op in ("in", "notin"):
                if index != len(node.ops) - 1:
                    raise RuleError("write 'a in [...] and ...' rather than chaining a comparison after 'in'")
                found = self.contains(left, operand.expr)
                holds.append(not_(found) if operand.op == "notin" else found)
                break
            else:
                right = self.value(operand.expr)
                holds.append(self.compare_pair(operand.op, left, right))
            left = right
        return and_(*holds) if len(holds) > 1 else holds[0]

    def compare_pair(self, op: str, a: _Value, b: _Value) -> Any:
        for v in (a, b):
            if v.kind in (BOOL, ATTRIBUTES, *_LISTS):
                raise RuleError(f"{v.text} cannot be compared with {_SYMBOL[op]}"
                                + (": use 'in', e.g. 'vip' in customer.segments" if v.kind == SEGMENTS else "")
                                + (": use 'in', e.g. 'coffee' in customer.categories" if v.kind == CATEGORIES
                                   else ""))
        if op in ("eq", "ne"):
            same = self.equal(a, b)
            return not_(same) if op == "ne" else same
        if NONE in (a.kind, b.kind):
            raise RuleError(f"{a.text} {_SYMBOL[op]} {b.text}: a comparison with none is never true "
                            "(and an error at run time): use 'is none' or 'is not none'")
        if a.is_const and b.is_const:
            return self.python_compare(op, a, b)
        a, b = self.unify(a, b, op)
        if b.days_of is not None and a.is_const:
            a, b, op = b, a, _FLIPPED[op]
        if a.days_of is not None and b.is_const:
            rewritten = self.days_compare(op, a, b.const)
            if rewritten is not None:
                return rewritten
        left, right = self.sql(a), self.sql(b)
        if a.kind == TEXT:
            left = _CodePointOrder(left)
        return func.coalesce(_ORDERING[op](left, right), false())

    def python_compare(self, op: str, a: _Value, b: _Value) -> Any:
        python = {"eq": operator.eq, "ne": operator.ne, **_ORDERING}[op]
        try:
            return true() if python(a.const, b.const) else false()
        except TypeError:
            raise RuleError(f"{a.text} {_SYMBOL[op]} {b.text} cannot be compared") from None

    def equal(self, a: _Value, b: _Value) -> Any:
        """Whether a == b holds at runtime: both missing counts as equal."""
        if a.kind == NONE or b.kind == NONE:
            return self.missing(b if a.kind == NONE else a)
        if a.is_const and b.is_const:
            return self.python_compare("eq", a, b)
        original = (a, b)
        a, b = self.unify(a, b, "==")
        if a.is_const:
            a, b = b, a
        if b.is_const:
            if a.days_of is not None:
                rewritten = self.days_compare("eq", a, b.const)
                if rewritten is not None:
                    return rewritten
            return func.coalesce(a.sql == self.sql(b), false())
        if JSON not in (original[0].kind, original[1].kind):
            return a.sql.is_not_distinct_from(b.sql)
        both_missing = and_(self.missing(original[0]), self.missing(original[1]))
        return or_(func.coalesce(a.sql == b.sql, false()), both_missing)

    def contains(self, left: _Value, right_node: nodes.Node) -> Any:
        if isinstance(right_node, nodes.List | nodes.Tuple):
            items = []
            for item in right_node.items:
                if not isinstance(item, nodes.Const):
                    raise RuleError("'in' takes a list of literals, e.g. customer.tier in ['gold', 'platinum']")
                items.append(self.const(item.value))
            if left.kind in (BOOL, ATTRIBUTES, *_LISTS):
                raise RuleError(f"{left.text} cannot be looked up in a list")
            if not items:
                return false()
            return or_(*(self.equal(left, item) for item in items))
        right = self.value(right_node)
        if right.kind == CATEGORIES:
            if left.kind not in (TEXT, JSON):
                raise RuleError(f"categories are text: {left.text} is {_KIND_NAMES[left.kind]}")
            category = self.sql(left) if left.is_const else self.as_kind(left, TEXT, "in").sql
            return exists().where(*self.items_of(right.table), ITEMS.c.category == category)
        if right.kind != SEGMENTS:
            raise RuleError("'in' needs a list (customer.tier in ['gold', 'platinum']), customer.segments "
                            f"('vip' in customer.segments) or customer.categories, not {right.text}")
        if left.kind == TEXT and left.is_const:
            return self.member_of(left.const)
        if left.kind not in (TEXT, JSON):
            raise RuleError(f"segment names are text: {left.text} is {_KIND_NAMES[left.kind]}")
        self.segments.add("*")
        name = self.as_kind(left, TEXT, "in").sql
        return exists().where(MEMBERSHIPS.c.customer_id == self.table.c.id, MEMBERSHIPS.c.segment == name)

    def unify(self, a: _Value, b: _Value, symbol: str) -> tuple[_Value, _Value]:
        """Both sides of one type: a JSON attribute takes the type of the other side."""
        if a.kind == JSON and b.kind == JSON:
            raise RuleError(f"{a.text} and {b.text} are both attributes: compare an attribute with a value "
                            "or a customer field")
        if a.kind == JSON:
            a = self.as_kind(a, b.kind, symbol)
        elif b.kind == JSON:
            b = self.as_kind(b, a.kind, symbol)
        if a.kind != b.kind:
            raise RuleError(f"{a.text} {_SYMBOL.get(symbol, symbol)} {b.text} compares "
                            f"{_KIND_NAMES[a.kind]} with {_KIND_NAMES[b.kind]}")
        return a, b

    def as_kind(self, v: _Value, kind: str, symbol: str) -> _Value:
        if v.kind != JSON:
            return v
        if kind not in (NUMBER, TEXT):
            raise RuleError(f"{v.text} {_SYMBOL.get(symbol, symbol)} ...: attributes can be compared with numbers, "
                            "text, true/false and none")
        return _Value(kind, sql=_JsonAttribute(v.table.c.attributes, v.path, kind), text=v.text)

    def missing(self, v: _Value) -> Any:
        if v.is_const:
            return true() if v.const is None else false()
        if v.kind == JSON:
            return _JsonAttribute(v.table.c.attributes, v.path, "missing")
        if v.kind in (BOOL, ATTRIBUTES, *_LISTS):
            return false()  # a condition or a list is never none
        return v.sql.is_(None)

    def days_compare(self, op: str, days: _Value, c: Any) -> Any | None:
        """days_since_last_purchase OP c as a comparison of last_purchase_at with a moment
        (the index serves it): days >= k  <=>  last_purchase_at <= now - k days."""
        at = days.days_of
        try:
            if op == "eq":
                if c != math.floor(c):
                    return false()
                k = int(c)
                return func.coalesce(and_(at <= self.now - timedelta(days=k), at > self.now - timedelta(days=k + 1)),
                                     false())
            bound = {"gteq": math.ceil(c), "gt": math.floor(c) + 1, "lteq": math.floor(c) + 1, "lt": math.ceil(c)}[op]
            moment = self.now - timedelta(days=bound)
        except (OverflowError, ValueError):
            return None  # beyond the calendar: the general form handles it
        return func.coalesce(at <= moment if op in ("gteq", "gt") else at > moment, false())

    def sql(self, v: _Value) -> Any:
        if not v.is_const:
            return v.sql
        value = v.const
        if isinstance(value, bool):
            return literal(int(value), Integer())
        if isinstance(value, int):
            return literal(value, Integer() if abs(value) < 2**31 else BigInteger())
        if isinstance(value, float):
            return literal(value, Float())
        return literal(value, String())


@functools.lru_cache(maxsize=512)  # the event path compiles the same few rules for every event
def _parse(rule: str) -> nodes.Node:
    try:
        return parse_expression(rule)
    except ExpressionError as err:
        raise RuleError(f"does not compile: {err}") from None


def compile_rule(rule: str, now: datetime, table: Any = None) -> ColumnElement[bool]:
    """The rule as a non-NULL boolean over ``customers`` (or ``table``, an alias of it),
    for the moment ``now``. Raises RuleError for a rule that cannot become SQL."""
    return _Compiler(now, CUSTOMERS if table is None else table).condition(_parse(rule))


def rule_segments(rule: str) -> set[str]:
    """The segments a rule reads (in_segment, customer.segments); '*' when any of them."""
    compiler = _Compiler(datetime.now(UTC), CUSTOMERS)
    compiler.condition(_parse(rule))
    return compiler.segments


def rule_reads(rule: str) -> frozenset[str]:
    """Which data a rule reads: purchases, clicks, replies, messages, consent, profile,
    loyalty (points, tier), segments. (The clock is read by every window and day count.)"""
    compiler = _Compiler(datetime.now(UTC), CUSTOMERS)
    compiler.condition(_parse(rule))
    return frozenset(compiler.reads)


def compile_problems(rule: str) -> list[str]:
    """Why ``rule`` cannot run as SQL, for the validator: [] when it can."""
    try:
        compile_rule(rule, datetime.now(UTC))
    except RuleError as err:
        return [str(err)]
    return []
