"""Check one expression or template: it compiles, and uses only names its place allows.

The result lists findings (problems inside the text, each with the snippet to point
at) and references (step ids, segments, coupon series, splits) for the reference check,
which knows the journey and the configuration.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from jinja2 import nodes

from language.bounds import length_problem, tree_problems
from language.checks_values import url_problem
from language.expressions import PARSER, ExpressionError, parse_expression, parse_template
from language.habits import FIELDS as HABIT_FIELDS
from language.habits import METHODS, example, parse_window
from language.shape import did_you_mean
from language.walk import Mode, Scope

CUSTOMER_FIELDS = (
    "id", "first_name", "last_name", "email", "locale", "timezone", "birthday", "attributes",
    "points", "tier", "total_spent", "orders_count", "avg_order_value", "first_purchase_at",
    "last_purchase_at", "days_since_last_purchase", "segments", "sms_consent", "referral_code",
    *HABIT_FIELDS, *METHODS,
)  # fmt: skip
NUMERIC_CUSTOMER_FIELDS = (
    "points", "total_spent", "orders_count", "avg_order_value", "days_since_last_purchase",
)  # fmt: skip
EVENT_FIELDS = ("id", "type", "occurred_at", "properties")
JOURNEY_FIELDS = ("id", "version", "entered_at", "days_in_journey", "variant")
PHONE_FIELDS = ("phone", "phone_number", "mobile", "msisdn")
FIELDS = {
    "customer": CUSTOMER_FIELDS,
    "trigger": EVENT_FIELDS,
    "event": EVENT_FIELDS,
    "journey": JOURNEY_FIELDS,
    "average": NUMERIC_CUSTOMER_FIELDS,
}

# function -> (fewest, most) arguments, and what its quoted argument names.
FUNCTIONS: dict[str, tuple[int, int, str | None]] = {
    "now": (0, 0, None),
    "clicked": (0, 1, "sending_step"),
    "sent": (1, 1, "sending_step"),
    "replied": (1, 1, "ask_step"),
    "answer": (1, 1, "ask_step"),
    "in_segment": (1, 1, "segment"),
    "link": (1, 1, None),
    "coupon": (1, 1, "coupon"),
    "reward_code": (1, 1, "reward_step"),
}
_BASE = {"customer", "trigger", "journey", "brand", "now", "clicked", "replied", "answer", "sent", "in_segment",
         "reward_code"}
SCOPE_NAMES: dict[str, set[str]] = {
    "condition": _BASE,
    "value": _BASE,
    "event": _BASE | {"event"},
    "message": _BASE | {"link", "coupon"},
    "rule": {"customer", "average", "in_segment"},
    "run_key": {"trigger"},
}
ALL_NAMES = set().union(*SCOPE_NAMES.values())
_WHY_NOT = {
    "event": "'event' is only available in trigger.where, wait_for.where, exit_on.where and goal.value",
    "link": "link() can only be used in message texts (send_sms, ask, templates)",
    "coupon": "coupon() can only be used in message texts (send_sms, ask, templates)",
    "average": "'average' is only available in segment rules",
}

ReferenceKind = Literal["sending_step", "ask_step", "segment", "coupon", "split", "reward_step"]


@dataclass(frozen=True)
class Finding:
    message: str
    snippet: str  # the text to point at inside the expression
    severity: Literal["error", "warning"] = "error"
    value: str | None = None


@dataclass(frozen=True)
class Reference:
    kind: ReferenceKind
    name: str
    snippet: str


@dataclass
class Analysis:
    findings: list[Finding] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)


def analyze(source: str, mode: Mode, scope: Scope) -> Analysis:
    """Compile ``source`` and check every name, field, function and filter it uses."""
    result = Analysis()
    if reason := length_problem(source, mode):  # checked first: a long source is not even parsed
        result.findings.append(Finding(reason, "", value=source[:80] + "..."))
        return result
    try:
        tree = parse_expression(source) if mode == "expression" else parse_template(source)
    except ExpressionError as err:
        hint = ""
        if mode == "expression" and "{{" in source:
            hint = " (conditions are written without {{ }}, e.g. customer.points >= 500)"
        result.findings.append(Finding(f"does not compile: {err}{hint}", "", value=source))
        return result
    except RecursionError:  # the parser recurses: hundreds of brackets inside each other
        result.findings.append(Finding("does not compile: brackets or parentheses nested too deeply", "",
                                       value=source))
        return result
    limits = tree_problems(tree)
    result.findings += [Finding(message, snippet, value=snippet or None) for message, snippet in limits]
    if not limits:  # a tree too deep to compile is too deep to walk as well
        try:
            _Checker(scope, result, _local_names(tree)).visit(tree)
        except RecursionError:
            result.findings[:] = [Finding("does not compile: brackets or parentheses nested too deeply", "",
                                          value=source)]
    return result


def _local_names(tree: nodes.Node) -> set[str]:
    """Names a template defines itself ({% for x in ... %}, {% set x = ... %})."""
    names = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    if any(True for _ in tree.find_all(nodes.For)):
        names.add("loop")
    return names


def _chain(node: nodes.Node) -> tuple[str, list[str]] | None:
    """``customer.attributes['x']`` -> ("customer", ["attributes", "x"]), if rooted at a name."""
    parts: list[str] = []
    while True:
        if isinstance(node, nodes.Getattr):
            parts.append(node.attr)
            node = node.node
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            parts.append(node.arg.value)
            node = node.node
        elif isinstance(node, nodes.Name):
            return node.name, parts[::-1]
        else:
            return None


def _literal_targets(node: nodes.Node) -> Iterator[str]:
    """The quoted URLs an argument may be: itself, a default(...), either branch of an if."""
    if isinstance(node, nodes.Const) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, nodes.Filter) and node.name == "default":
        for part in (node.node, *node.args):
            if part is not None:
                yield from _literal_targets(part)
    elif isinstance(node, nodes.CondExpr):
        for part in (node.expr1, node.expr2):
            if part is not None:
                yield from _literal_targets(part)


def _dotted(root: str, attrs: list[str]) -> str:
    return ".".join([root, *attrs])


class _Checker:
    def __init__(self, scope: Scope, result: Analysis, local: set[str]) -> None:
        self.scope = scope
        self.result = result
        self.local = local
        self.allowed = SCOPE_NAMES[scope]

    def error(self, message: str, snippet: str, value: str | None = None) -> None:
        self.result.findings.append(Finding(message, snippet, value=value))

    def visit(self, node: nodes.Node) -> None:
        if isinstance(node, nodes.Call):
            self.call(node)
            return
        chain = _chain(node) if isinstance(node, nodes.Getattr | nodes.Getitem) else None
        if chain is not None:
            self.value(*chain)
            return
        if isinstance(node, nodes.Name) and node.ctx == "load":
            self.value(node.name, [])
        elif isinstance(node, nodes.Filter | nodes.Test):
            self.filter_or_test(node)
        for child in node.iter_child_nodes():
            self.visit(child)

    def filter_or_test(self, node: nodes.Filter | nodes.Test) -> None:
        known = PARSER.filters if isinstance(node, nodes.Filter) else PARSER.tests
        what = "filter" if isinstance(node, nodes.Filter) else "test"
        if node.name not in known:
            self.error(f"unknown {what} '{node.name}'" + did_you_mean(node.name, list(known)), node.name, node.name)

    def name_allowed(self, name: str, snippet: str) -> bool:
        if name in self.local:
            return True
        if name not in ALL_NAMES:
            self.error(f"unknown name '{name}'" + did_you_mean(name, self.allowed), snippet, name)
            return False
        if name not in self.allowed:
            reason = _WHY_NOT.get(name, f"'{name}' cannot be used here")
            if self.scope == "rule":
                reason = "segment rules may only use customer.<field>, average.<field> and in_segment()"
            elif self.scope == "run_key":
                reason = "run_key may only read the trigger event, e.g. trigger.properties.cart_id"
            self.error(reason, snippet, name)
            return False
        return True

    def value(self, root: str, attrs: list[str]) -> None:
        snippet = _dotted(root, attrs[:1])
        if not self.name_allowed(root, snippet) or root in self.local:
            return
        if root in FUNCTIONS:
            self.error(f"{root} is a function: call it, e.g. {root}('...')", root, root)
            return
        fields = FIELDS.get(root)
        if fields is None:
            return
        if not attrs:
            if root == "average":
                self.error("average needs a field, e.g. average.total_spent", root, root)
            return
        name = attrs[0]
        if root == "customer" and name in PHONE_FIELDS:
            self.error("the customer's phone number is never exposed to templates or expressions", snippet, snippet)
        elif name not in fields:
            self.error(f"{root} has no field '{name}'" + did_you_mean(name, fields), snippet, snippet)
        elif root == "customer" and name in METHODS:
            self.error(f"customer.{name} is a function: call it, e.g. {example(name)}", snippet, snippet)
        elif root == "journey" and name == "variant":
            self.error("journey.variant is a function: journey.variant('<split name>')", snippet, snippet)
        elif len(attrs) > 1 and root in ("trigger", "event") and name in ("id", "type"):
            self.error(f"{root}.{name} has no field '{attrs[1]}'", _dotted(root, attrs[:2]), _dotted(root, attrs[:2]))

    def call(self, node: nodes.Call) -> None:
        callee = node.node
        for arg in self._arguments(node):
            self.visit(arg)
        if isinstance(callee, nodes.Name):
            self.function(callee.name, node)
            return
        chain = _chain(callee)
        if chain == ("journey", ["variant"]):
            if self.name_allowed("journey", "journey.variant"):
                self.quoted_argument("journey.variant", node, "split", 1, 1)
            return
        if chain is not None and chain[0] == "customer" and len(chain[1]) == 1 and chain[1][0] in METHODS:
            if self.name_allowed("customer", "customer"):
                self.habit(chain[1][0], node)
            return
        if chain is not None and chain[1]:
            # A method on a value (customer.first_name.upper()): check the value itself.
            self.value(chain[0], chain[1][:-1] if len(chain[1]) > 1 else chain[1])
            return
        self.visit(callee)

    def habit(self, method: str, node: nodes.Call) -> None:
        """customer.orders_in('90d'), customer.bought('coffee'[, '90d']): see language.habits."""
        snippet = f"customer.{method}("
        takes = METHODS[method]
        fewest = sum(required for _, required in takes)
        if node.kwargs or node.dyn_args or node.dyn_kwargs or not fewest <= len(node.args) <= len(takes):
            counts = f"{fewest}" if fewest == len(takes) else f"{fewest} or {len(takes)}"
            self.error(f"customer.{method}() takes {counts} argument(s), e.g. {example(method)}", snippet,
                       f"customer.{method}")
            return
        for (kind, _), arg in zip(takes, node.args, strict=False):
            if kind == "name":  # a product or category: quoted, or a value such as trigger.properties.category
                if isinstance(arg, nodes.Const) and not isinstance(arg.value, str):
                    self.error(f"customer.{method}() takes a product or category as quoted text, e.g. "
                               f"{example(method)}", snippet, f"customer.{method}")
                continue
            if not (isinstance(arg, nodes.Const) and isinstance(arg.value, str)):
                self.error(f"customer.{method}() takes a quoted window such as '90d' (a duration)", snippet,
                           f"customer.{method}")
                continue
            try:
                parse_window(arg.value)
            except ValueError as err:
                self.error(f"customer.{method}(): {err}", arg.value, arg.value)

    def _arguments(self, node: nodes.Call) -> Iterator[nodes.Node]:
        yield from node.args
        yield from (kw.value for kw in node.kwargs)
        yield from (n for n in (node.dyn_args, node.dyn_kwargs) if n is not None)

    def function(self, name: str, node: nodes.Call) -> None:
        if name in self.local or not self.name_allowed(name, name):
            return
        if name not in FUNCTIONS:
            self.error(f"'{name}' is not a function", name, name)
            return
        fewest, most, kind = FUNCTIONS[name]
        self.quoted_argument(name, node, kind, fewest, most)
        if name == "link" and node.args:
            for target in _literal_targets(node.args[0]):
                if reason := url_problem(target):
                    self.error(f"link() target {reason}", target, target)

    def quoted_argument(self, name: str, node: nodes.Call, kind: str | None, fewest: int, most: int) -> None:
        count = len(node.args) + len(node.kwargs)
        if not fewest <= count <= most:
            takes = f"{fewest}" if fewest == most else f"{fewest} or {most}"
            self.error(f"{name}() takes {takes} argument(s), got {count}", name + "(", name)
            return
        if kind is None or not node.args:
            return
        arg = node.args[0]
        if not (isinstance(arg, nodes.Const) and isinstance(arg.value, str)):
            self.error(f"{name}() takes a quoted name, e.g. {name}('welcome')", name + "(", name)
            return
        self.result.references.append(Reference(kind, arg.value, arg.value))  # type: ignore[arg-type]
