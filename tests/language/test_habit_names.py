"""Windows and habits (language/habits.py) as the validator checks them: names, argument
counts, windows that must be durations, and where in the text each problem is."""

from __future__ import annotations

from datetime import date

import pytest

from language.checks_expressions import analyze
from language.habits import parse_window, whole_years
from language.segment_sql import compile_problems


def findings(source: str, scope: str = "condition") -> list[tuple[str, str]]:
    return [(f.message, f.snippet) for f in analyze(source, "expression", scope).findings]  # type: ignore[arg-type]


@pytest.mark.parametrize("source", [
    "customer.orders_in('90d') >= 3 and customer.spent_in('365d') > 500",
    "customer.bought('coffee') and customer.days_until_due <= 2",
    "customer.bought('coffee', '30d') or 'tea' in customer.categories",
    "customer.age >= 18 and customer.purchase_interval_days < 30",
    "customer.clicks_in('30d') == 0 and customer.replies_in('2w') == 0 and customer.messages_in('24h') < 2",
    "customer.days_since_last_click is none or customer.days_since_last_click > 60",
])
def test_habits_are_valid_in_conditions_and_rules(source: str) -> None:
    assert findings(source) == []
    assert findings(source, "rule") == []
    assert compile_problems(source) == []


def test_a_journey_may_ask_about_a_category_it_computes() -> None:
    assert findings("customer.bought(trigger.properties.category, '90d')") == []
    assert compile_problems("customer.bought(customer.tier)") == [
        "customer.bought() takes a quoted product or category, e.g. customer.bought('coffee')"]


def test_habits_in_texts() -> None:
    source = "You ordered {{ customer.orders_in('365d') }} times; next due in {{ customer.days_until_due }} days"
    assert [f.message for f in analyze(source, "template", "message").findings] == []


@pytest.mark.parametrize(("source", "message", "snippet"), [
    ("customer.orders_in('90') > 1", "customer.orders_in(): '90' is not a duration", "90"),
    ("customer.orders_in('0d') > 1", "customer.orders_in(): a window must be longer than zero", "0d"),
    ("customer.clicks_in('-3d') > 1", "customer.clicks_in(): a window must be longer than zero", "-3d"),
    ("customer.spent_in('9999d') > 1", "customer.spent_in(): too long", "9999d"),
    ("customer.orders_in(90) > 1", "customer.orders_in() takes a quoted window such as '90d'", "customer.orders_in("),
    ("customer.replies_in(customer.tier)", "customer.replies_in() takes a quoted window", "customer.replies_in("),
    ("customer.orders_in() > 1", "customer.orders_in() takes 1 argument(s), e.g. customer.orders_in('30d')",
     "customer.orders_in("),
    ("customer.bought()", "customer.bought() takes 1 or 2 argument(s), e.g. customer.bought('coffee')",
     "customer.bought("),
    ("customer.bought('a', '1d', '2d')", "customer.bought() takes 1 or 2 argument(s)", "customer.bought("),
    ("customer.messages_in(window='30d')", "customer.messages_in() takes 1 argument(s)", "customer.messages_in("),
    ("customer.bought(3)", "customer.bought() takes a product or category as quoted text", "customer.bought("),
    ("customer.bought('coffee', 30)", "customer.bought() takes a quoted window", "customer.bought("),
    ("customer.orders_in > 2", "customer.orders_in is a function: call it, e.g. customer.orders_in('30d')",
     "customer.orders_in"),
    ("customer.ordrs_in('30d')", "customer has no field 'ordrs_in' (did you mean 'orders_in'?)", "customer.ordrs_in"),
])
def test_bad_habits_are_explained_where_they_are(source: str, message: str, snippet: str) -> None:
    found = findings(source)
    assert len(found) == 1 and found[0][0].startswith(message) and found[0][1] == snippet, found
    assert compile_problems(source)  # and a rule cannot use it either


@pytest.mark.parametrize(("rule", "problem"), [
    ("customer.orders_in('90')", "customer.orders_in(): '90' is not a duration"),
    ("customer.orders_in > 1", "customer.orders_in is a function"),
    ("customer.categories == 'coffee'", "use 'in', e.g. 'coffee' in customer.categories"),
    ("3 in customer.categories", "categories are text"),
    ("customer.bought('x', '0d')", "a window must be longer than zero"),
    ("customer.tier.upper() == 'A'", "cannot be used in segment rules"),
])
def test_rules_refuse_what_the_database_cannot_answer(rule: str, problem: str) -> None:
    problems = compile_problems(rule)
    assert len(problems) == 1 and problem in problems[0], problems


def test_windows_are_positive_durations() -> None:
    assert parse_window("90d").days == 90 and parse_window("24h").total_seconds() == 86400
    for bad in ("90", "0d", "-1d", 90, None, "3651d"):
        with pytest.raises(ValueError):
            parse_window(bad)


@pytest.mark.parametrize(("birthday", "today", "age"), [
    (date(1990, 3, 2), date(2026, 3, 2), 36),
    (date(1990, 3, 3), date(2026, 3, 2), 35),
    (date(1992, 2, 29), date(2026, 2, 28), 33),  # a leap-day birthday counts from 1 March
    (date(1992, 2, 29), date(2026, 3, 1), 34),
    (date(1992, 2, 29), date(2028, 2, 29), 36),
    (date(2026, 3, 3), date(2026, 3, 2), -1),  # a birthday in the future: below zero, not hidden
    (None, date(2026, 3, 2), None),
])
def test_age_is_whole_years(birthday: date | None, today: date, age: int | None) -> None:
    assert whole_years(birthday, today) == age
