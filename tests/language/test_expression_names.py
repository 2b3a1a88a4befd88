"""The names, fields, functions and filters each place in a journey may use."""

from __future__ import annotations

import pytest

from language.checks_expressions import Reference, analyze


def messages(source: str, mode: str = "expression", scope: str = "condition") -> list[str]:
    return [f.message for f in analyze(source, mode, scope).findings]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "source",
    [
        "customer.points >= 500 and in_segment('vip')",
        "customer.days_since_last_purchase >= 60 and not clicked('survey')",
        "customer.attributes.shoe_size == 42 and customer.attributes['favourite-store']",
        "trigger.properties.cart_id and trigger.occurred_at.hour > 9",
        "journey.variant('offer') == 'a' and journey.days_in_journey > 3",
        "answer('nps') | int >= 9 and replied('nps') and sent('nps') and clicked()",
        "customer.first_name.upper() == 'A' and now().year > 2000",
        "'vip' in customer.segments and customer.sms_consent == 'opted_in'",
        "customer.total_spent is none or customer.tier is not none",
    ],
)
def test_valid_conditions(source: str) -> None:
    assert messages(source) == []


def test_templates_may_loop_and_use_text_functions() -> None:
    source = (
        "{% for s in customer.segments %}{{ s | upper }}{{ loop.index }}{% endfor %}"
        "{{ coupon('WELCOME10') }} {{ link('https://x') }} {{ customer.points | number }}"
    )
    assert messages(source, "template", "message") == []


def test_references_are_collected_for_the_reference_check() -> None:
    analysis = analyze(
        "clicked('a') and sent('b') and answer('c') and in_segment('d') and journey.variant('e')",
        "expression",
        "condition",
    )
    assert analysis.references == [
        Reference("sending_step", "a", "a"),
        Reference("sending_step", "b", "b"),
        Reference("ask_step", "c", "c"),
        Reference("segment", "d", "d"),
        Reference("split", "e", "e"),
    ]
    coupon = analyze("{{ coupon('WELCOME10') }}", "template", "message")
    assert coupon.references == [Reference("coupon", "WELCOME10", "WELCOME10")]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("customer.phone", "the customer's phone number is never exposed"),
        ("customer.phone_number", "the customer's phone number is never exposed"),
        ("customer.first_nme", "customer has no field 'first_nme' (did you mean 'first_name'?)"),
        ("trigger.propertys.x", "trigger has no field 'propertys' (did you mean 'properties'?)"),
        ("trigger.type.x", "trigger.type has no field 'x'"),
        ("journey.varient('a')", "journey has no field 'varient' (did you mean 'variant'?)"),
        ("journey.variant", "journey.variant is a function"),
        ("clicked", "clicked is a function: call it"),
        ("customer()", "'customer' is not a function"),
        ("clicked(customer.id)", "clicked() takes a quoted name"),
        ("replied()", "replied() takes 1 argument(s), got 0"),
        ("clicked('a', 'b')", "clicked() takes 0 or 1 argument(s), got 2"),
        ("custmer.points", "unknown name 'custmer' (did you mean 'customer'?)"),
        ("event.type", "'event' is only available in"),
        ("link('https://x')", "link() can only be used in message texts"),
        ("average.points", "'average' is only available in segment rules"),
        ("customer.points | floor", "unknown filter 'floor'"),
        ("customer.points is positive", "unknown test 'positive'"),
    ],
)
def test_problems_in_conditions(source: str, message: str) -> None:
    found = messages(source)
    assert len(found) == 1 and found[0].startswith(message), found


def test_event_only_where_an_event_is_matched() -> None:
    assert messages("event.properties.amount > 1", scope="event") == []
    assert messages("event.nope", scope="event") == [
        "event has no field 'nope' (expected one of: id, occurred_at, properties, type)"
    ]


def test_segment_rules_use_customer_fields_and_numeric_averages_only() -> None:
    assert messages("customer.total_spent >= 10 * average.total_spent", scope="rule") == []
    assert messages("average.tier", scope="rule")[0].startswith("average has no field 'tier'")
    assert messages("in_segment('vip')", scope="rule") == []  # it compiles to SQL too
    assert messages("clicked('x')", scope="rule") == [
        "segment rules may only use customer.<field>, average.<field> and in_segment()"
    ]
    assert messages("average > 1", scope="rule") == ["average needs a field, e.g. average.total_spent"]


def test_syntax_errors() -> None:
    assert messages("customer.points >")[0].startswith("does not compile:")
    assert messages("{{ customer.first_name }", "template", "message")[0].startswith("does not compile:")


@pytest.mark.parametrize(
    ("source", "template", "reads"),
    [
        ("customer.sms_consent == 'opted_in'", False, {"sms_consent"}),
        ("customer.points >= 500 and customer['tier'] == 'gold'", False, {"points", "tier"}),
        ("customer.orders_in('30d') > 1 and in_segment('vip')", False, {"orders_in"}),
        ("Hi {{ customer.first_name | default('there') }}", True, {"first_name"}),
        ("No customer here: {{ brand }}", True, set()),
        ("{{ customer }}", True, None),  # the whole customer
        ("{% set c = customer %}{{ c.points }}", True, None),  # through a variable
        ("customer[field] == 1", False, None),  # a field not named
        ("customer.(", False, None),  # unreadable: may read anything
    ],
)
def test_customer_reads_names_the_fields_an_expression_reads(source: str, template: bool,
                                                             reads: set[str] | None) -> None:
    from language.expressions import customer_reads
    assert customer_reads(source, template=template) == (None if reads is None else frozenset(reads))


@pytest.mark.parametrize(
    ("source", "template", "reads"),
    [
        ("Your cart: {{ trigger.properties.cart_id }}", True, True),
        ("{% if trigger %}back{% endif %} soon", True, True),
        ("{% set t = trigger %}{{ t.type }}", True, True),  # through a variable
        ("Hi {{ customer.first_name }}, {{ brand }} misses you", True, False),
        ("Plain text, no variables", True, False),
        ("{{ triggers }} and {{ customer.trigger }}", True, False),  # other names, a field named so
        ("trigger.properties.amount > 10", False, True),
        ("{{ trigger.", True, True),  # unreadable: may read anything
    ],
)
def test_reads_name_says_whether_a_template_uses_a_variable(source: str, template: bool, reads: bool) -> None:
    from language.expressions import reads_name
    assert reads_name(source, "trigger", template=template) is reads
