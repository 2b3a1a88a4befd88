"""Segment rules compiled to SQL select exactly the customers the runtime's expression
evaluation finds them true for: on SQLite and PostgreSQL, for the rules of docs/language.md,
the shipped segments.yaml's, and edge cases (missing values, `not`, `in`, attributes, days
to the microsecond, averages)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from language.segment_sql import CUSTOMERS, compile_problems, compile_rule, rule_segments
from store.db import session_scope
from tests.segments.population import NOW, runtime_contexts, runtime_members, seed

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "language.md"


def _doc_rules() -> list[str]:
    """The rules of the segments.yaml example in the language reference."""
    marker = "```yaml\n# journeys/segments.yaml\n"
    text = DOC.read_text(encoding="utf-8")
    assert marker in text, f"{DOC} has no segments.yaml example"
    found = yaml.safe_load(text.split(marker, 1)[1].split("```", 1)[0])
    return [s["rule"] for s in found["segments"].values() if "rule" in s]


DOC_RULES = [
    "customer.days_since_last_purchase >= 30",
    "customer.days_since_last_purchase >= 180",
    "customer.total_spent >= 10 * average.total_spent",
    "customer.orders_count == 0",
    "customer.tier in ['gold', 'platinum']",
]
SHIPPED_RULES = [s["rule"] for s in yaml.safe_load((ROOT / "journeys" / "segments.yaml").read_text())
                 ["segments"].values() if "rule" in s]
# Conditions the language reference and the shipped journeys write, as rules would.
CONDITIONS = [
    "customer.points >= 500 and in_segment('vip')",
    "customer.tier == 'platinum'",
    "customer.total_spent > 500",
    "customer.orders_count >= 1 and customer.sms_consent == 'opted_in'",
    "customer.days_since_last_purchase >= 60",
]
EDGES = [
    # days since the last purchase: every operator, both sides, non-integers, none
    "not (customer.days_since_last_purchase >= 30)",
    "customer.days_since_last_purchase < 30",
    "customer.days_since_last_purchase <= 30",
    "customer.days_since_last_purchase > 30",
    "customer.days_since_last_purchase == 30",
    "customer.days_since_last_purchase != 30",
    "customer.days_since_last_purchase >= 29.5",
    "customer.days_since_last_purchase < 29.5",
    "customer.days_since_last_purchase == 30.5",
    "customer.days_since_last_purchase == -1",
    "customer.days_since_last_purchase <= 0",
    "30 <= customer.days_since_last_purchase",
    "180 > customer.days_since_last_purchase",
    "customer.days_since_last_purchase is none",
    "customer.days_since_last_purchase is not none",
    "customer.days_since_last_purchase + 0 >= 30",
    "customer.days_since_last_purchase - 1 < 29",
    "customer.days_since_last_purchase * 2 > customer.orders_count * 20",
    "customer.days_since_last_purchase >= average.days_since_last_purchase",
    "customer.days_since_last_purchase",
    "not customer.days_since_last_purchase",
    "customer.days_since_last_purchase >= 100000000",
    "customer.days_since_last_purchase > -100000000",
    # text fields: none, !=, not, ordering by code point, in with none
    "customer.tier not in ['gold', 'platinum']",
    "customer.tier in ['gold', none]",
    "customer.tier in []",
    "customer.tier == none",
    "customer.tier != none",
    "none == customer.tier",
    "customer.tier != 'gold'",
    "not customer.tier",
    "customer.tier",
    "customer.tier < 'h'",
    "customer.first_name >= 'Z'",
    "customer.first_name > 'zo'",
    "customer.first_name < customer.last_name",
    "customer.locale == customer.tier",
    "customer.locale != customer.tier",
    "customer.tier | default('silver') == 'silver'",
    "customer.tier is none or customer.tier == ''",
    "customer.sms_consent == 'opted_in' and not customer.orders_count",
    # numbers: computed fields, division, chained comparisons, booleans as numbers
    "customer.avg_order_value > 100",
    "customer.avg_order_value is none",
    "not (customer.avg_order_value > 100)",
    "customer.avg_order_value >= average.avg_order_value",
    "customer.total_spent / customer.orders_count > 100",
    "customer.total_spent / 3 >= 50",
    "-customer.total_spent < -500",
    "0 < customer.orders_count < 3",
    "customer.orders_count == true",
    "customer.orders_count == 0 or customer.total_spent > 1000",
    "customer.orders_count * 1.5 == 3",
    "customer.points >= 500",
    "customer.points > average.points",
    "customer.points == 0",
    "not customer.points",
    "customer.orders_count >= average.orders_count",
    "customer.total_spent < 10 * average.total_spent",
    # segments
    "in_segment('vip')",
    "not in_segment('vip')",
    "'active' in customer.segments",
    "'active' not in customer.segments",
    "customer.segments",
    "not customer.segments",
    "customer.tier in customer.segments",
    # attributes: every JSON type against numbers, text, booleans and none
    "customer.attributes.score >= 3",
    "not (customer.attributes.score >= 3)",
    "customer.attributes.score == 3",
    "customer.attributes.score != 3",
    "customer.attributes.score == none",
    "customer.attributes.score is not none",
    "customer.attributes.score in [1, 2, 3, 'abc']",
    "customer.attributes.score not in [1, 2, 3, 'abc']",
    "customer.attributes.score | default(0) >= 2",
    "customer.attributes.score * 2 > 5",
    "customer.attributes.score > customer.orders_count",
    "customer.attributes.score",
    "not customer.attributes.score",
    "customer.attributes.vip",
    "not customer.attributes.vip",
    "customer.attributes.vip == true",
    "customer.attributes.vip == false",
    "customer.attributes.vip == 'yes'",
    "customer.attributes.store == 'north'",
    "customer.attributes.store != 'north'",
    "customer.attributes.store == customer.locale",
    "customer.attributes.store != customer.locale",
    "customer.attributes.store < 'n'",
    "customer.attributes['store'] in ['north', 'south']",
    "customer.attributes.nested.city == 'Oslo'",
    "customer.attributes.nested.city is none",
    "customer.attributes['nested']['city'] != 'Oslo'",
    "customer.attributes['a b'] == 1",
    "customer.attributes.tags",
    "customer.attributes.nested",
    "customer.attributes.missing_key is none",
    # dates
    "customer.first_purchase_at == customer.last_purchase_at",
    "customer.first_purchase_at < customer.last_purchase_at",
    "customer.first_purchase_at is none",
    "customer.birthday is none",
    "customer.birthday",
]
# Windows and habits (language/habits.py): every field and method, windows at their edges.
HABITS = [
    "customer.orders_in('30d') >= 1",
    "customer.orders_in('90d') == 0",
    "customer.orders_in('365d') > 2",
    "customer.orders_in('1h')",
    "not customer.orders_in('2w')",
    "customer.orders_in('30d') < customer.orders_in('90d')",
    "customer.spent_in('365d') >= 100",
    "customer.spent_in('30d') == 0",
    "customer.spent_in('90d') > customer.total_spent / 2",
    "customer.spent_in('365d') / customer.orders_in('365d') > 50",
    "customer.bought('coffee')",
    "customer.bought('latte')",
    "customer.bought('Coffee') and not customer.bought('tea')",
    "customer.bought('coffee', '30d')",
    "customer.bought('mugs', '365d') or customer.bought('sencha', '90d')",
    "not customer.bought('beans', '2w')",
    "'coffee' in customer.categories",
    "'tea' not in customer.categories",
    "customer.categories",
    "not customer.categories",
    "customer.tier in customer.categories",
    "customer.attributes.store in customer.categories",
    "customer.age >= 18",
    "customer.age == 36",
    "customer.age < 1",
    "customer.age is none",
    "customer.age > 30 and customer.age < 40",
    "customer.age",
    "customer.purchase_interval_days <= 30",
    "customer.purchase_interval_days == 0",
    "customer.purchase_interval_days is none",
    "customer.purchase_interval_days > 90",
    "customer.purchase_interval_days == 6",
    "customer.purchase_interval_days == 7",
    "customer.purchase_interval_days == 13",
    "customer.purchase_interval_days == 29",
    "customer.purchase_interval_days + 0 == 30",
    "customer.days_until_due == 0",
    "customer.days_until_due == -1",
    "customer.days_until_due <= 0",
    "customer.days_until_due <= 3 and customer.days_until_due >= -7",
    "customer.days_until_due is not none",
    "customer.days_until_due > 100",
    "customer.clicks_in('30d') >= 1",
    "customer.clicks_in('90d') == 0",
    "customer.clicks_in('1h')",
    "customer.replies_in('30d') > 0",
    "customer.replies_in('365d') == 0",
    "customer.messages_in('30d') >= 2",
    "customer.messages_in('14d') == 0",
    "customer.messages_in('30d') > 0 and customer.clicks_in('30d') == 0",
    "customer.days_since_last_click >= 30",
    "customer.days_since_last_click < 14",
    "customer.days_since_last_click == 0",
    "customer.days_since_last_click is none",
    "customer.days_since_last_click + 0 == 30",
]
ALL_RULES = list(dict.fromkeys(DOC_RULES + _doc_rules() + SHIPPED_RULES + CONDITIONS + EDGES + HABITS))


def test_the_documented_rules_are_all_covered() -> None:
    assert _doc_rules() == DOC_RULES  # the example is read, and this list keeps up with it
    assert len(SHIPPED_RULES) == 14


def test_every_rule_compiles_for_both_databases() -> None:
    for rule in ALL_RULES:
        assert compile_problems(rule) == [], rule
        statement = select(CUSTOMERS.c.id).where(compile_rule(rule, NOW))
        for dialect in (sqlite.dialect(), postgresql.psycopg.dialect()):
            assert "FROM customers" in str(statement.compile(dialect=dialect))


@pytest.mark.parametrize("seed_value", [1, 2])
def test_sql_selects_exactly_the_customers_the_runtime_does(db, seed_value: int) -> None:
    seed(db, seed_value, 300)
    wrong = {}
    with runtime_contexts(db) as contexts, session_scope(db, readonly=True) as session:
        for rule in ALL_RULES:
            selected = set(session.execute(select(CUSTOMERS.c.id).where(compile_rule(rule, NOW))).scalars())
            expected, undefined = runtime_members(rule, contexts)
            if selected - undefined != expected:
                wrong[rule] = {"only_sql": sorted(selected - undefined - expected)[:5],
                               "only_runtime": sorted(expected - selected)[:5]}
    assert wrong == {}


def test_days_since_last_purchase_in_general_form_agrees_to_the_microsecond(db) -> None:
    """The general (arithmetic) form of days_since_last_purchase, which does not use
    the index-friendly rewrite, floors like timedelta.days on both databases."""
    seed(db, 3, 200)
    with runtime_contexts(db) as contexts, session_scope(db, readonly=True) as session:
        for days in (-2, -1, 0, 1, 29, 30, 31, 180):
            rule = f"customer.days_since_last_purchase + 0 == {days}"
            selected = set(session.execute(select(CUSTOMERS.c.id).where(compile_rule(rule, NOW))).scalars())
            assert selected == runtime_members(rule, contexts)[0], rule


@pytest.mark.parametrize(("rule", "problem"), [
    ("customer.tier == 5", "compares text with a number"),
    ("customer.tier ~ 'x'", "'~' cannot be used"),
    ("customer.first_name | upper == 'A'", "the filter 'upper' cannot be used"),
    ("now() > customer.last_purchase_at", "now() cannot be used"),
    ("clicked('survey')", "clicked() cannot be used"),
    ("customer.points < none", "use 'is none'"),
    ("customer.attributes.items == 1", "write customer.attributes['items']"),
    ("customer.attributes._secret == 1", "write customer.attributes['_secret']"),
    ("customer.attributes.a == customer.attributes.b", "are both attributes"),
    ("customer.attributes == 1", "cannot be compared"),
    ("customer.segments == 'vip'", "use 'in'"),
    ("'vip' in customer.tier", "'in' needs a list"),
    ("customer.tier in [customer.locale]", "a list of literals"),
    ("customer.x > 1", "customer has no field 'x'"),
    ("customer.tier.upper() == 'A'", "cannot be used in segment rules"),
    ("average.tier == 'gold'", "average takes one numeric customer field"),
    ("average", "average needs a field"),
    ("trigger.type == 'purchase'", "unknown name 'trigger'"),
    ("1 / 0 > customer.points", "division by zero"),
    ("customer.orders_count // 2 > 1", "'//' cannot be used"),
    ("customer.orders_count if customer.tier else 0", "cannot be used in segment rules"),
    ("customer.tier + 'x' == 'ax'", "'+' needs numbers"),
    ("customer.last_purchase_at > '2026-01-01'", "compares a date and time with text"),
    ("customer.attributes.since < customer.last_purchase_at", "attributes can be compared with numbers"),
    ("customer.tier is string", "the test 'is string' cannot be used"),
    ("customer.tier in ['gold'] == true", "rather than chaining"),
    ("customer.points >=", "does not compile"),
    ("in_segment(customer.tier)", "one quoted segment name"),
    ("customer.attributes.score | default(0, true) > 1", "default takes one literal value"),
    ("(customer.points > 1) == true", "cannot be compared"),
    ("customer.tier", None),
])
def test_rules_that_cannot_become_sql_are_explained(rule: str, problem: str | None) -> None:
    problems = compile_problems(rule)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0], problems


def test_rules_name_the_segments_they_read() -> None:
    assert rule_segments("customer.points >= 500 and in_segment('vip')") == {"vip"}
    assert rule_segments("'active' in customer.segments or not in_segment('x')") == {"active", "x"}
    assert rule_segments("customer.segments") == {"*"}
    assert rule_segments("customer.orders_count == 0") == set()


def test_now_must_carry_a_time_zone() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        compile_rule("customer.orders_count == 0", datetime(2026, 1, 1))
    assert compile_rule("customer.orders_count == 0", datetime(2026, 1, 1, tzinfo=UTC)) is not None


def test_a_rule_the_database_cannot_run_is_a_validation_error(tmp_path: Path) -> None:
    from language.validate import validate_directory

    (tmp_path / "segments.yaml").write_text(
        "segments:\n"
        "  odd: {rule: \"customer.tier == 5\"}\n"
        "  fine: {rule: \"customer.orders_count == 0\"}\n"
        "  keyed: {rule: \"customer.attributes.items >= 1\"}\n")
    errors = [(p.line, p.message) for p in validate_directory(tmp_path).errors]
    assert errors == [(2, "customer.tier == 5 compares text with a number"),
                      (4, "write customer.attributes['items'] rather than .items: 'items' is not read as an "
                          "attribute with a dot")]
