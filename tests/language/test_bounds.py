"""Hostile expressions and templates: refused in bounded time and memory, by the validator
(with positions) and at run time (an ExpressionError, never a worker exhausted); and
`${VAR}` in settings.yaml read only where configuration needs it."""

from __future__ import annotations

import gc
import resource
import time
from pathlib import Path

import pytest
from validation_helpers import where

from language import bounds
from language.expressions import ExpressionError, TooLong, build_context, evaluate, render
from language.validate import validate_directory

CONTEXT = build_context({"customer": {"points": 12, "first_name": "Ana", "segments": ["a", "b"]},
                         "brand": "Nordic Shoes"}, {})

HOSTILE_TEMPLATES = [
    "{{ 'a' * 10**9 }}",
    "{{ 'x'.center(10**9) }}",
    "{{ 'x'|center(10**9) }}",
    "{{ customer.points ** 1000000000 }}",
    "{{ ((10**100)**100)**100 }}",
    "{{ range(10**9)|list }}",
    "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
    "{{ '%*d' % (10**9, 1) }}",
    "{{ '%1000000000d' % 1 }}",
    "{{ '%1000000000d'|format(1) }}",
    "{{ '{:>1000000000}'.format(1) }}",
    "{{ '{:>{w}}'.format(1, w=10**9) }}",
    "{% set s = 'a' * 9000 %}{{ s ~ s }}",
    "{% set s = 'a' * 6000 %}{% set s = s + s %}",
    "{% set s = ['a' * 9999] * 1000 %}{{ s|join }}",
    "{{ range(10000)|join('x' * 9999) }}",
    "{{ ('a' * 9999).replace('a', 'bb') }}",
    "{{ 'x'.join(['a' * 9999, 'b']) * 1 }}",
    "{{ (1).to_bytes(10**9, 'big') }}",
    "{{ [1]|batch(10**9, 'x')|list }}",
    "{{ ('a\\n' * 5000)|indent(100) }}",
    "{{ customer.points|number(10**9) }}",
    "{{ customer.points|tojson(indent=10**9) }}",
    "{% set x %}{% for i in range(10000) %}" + "y" * 9000 + "{% endfor %}{% endset %}",
    "{% for i in range(10000) %}" + "y" * 9000 + "{% endfor %}",
    "{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "{% block a %}{{ self.a() }}{{ self.a() }}{% endblock %}",
    "{% for x in customer.segments recursive %}{{ loop(customer.segments) }}{% endfor %}",
    "{{ lipsum(10**9) }}",
    "{{ " + " + ".join(["customer.points"] * 250) + " }}",
    "{{" + "(" * 4000 + "x" + ")" * 4000 + "}}",
    "{{ customer.first_name }}" * 1000,
    "{{ ('a' * 9999)|list|map('center', 9999)|list|length }}",
    "{% set s = 'a' * 9999 %}{% for c in s %}{% set t = s * 1 %}{% endfor %}",
]


@pytest.mark.parametrize("template", HOSTILE_TEMPLATES, ids=range(len(HOSTILE_TEMPLATES)))
def test_hostile_templates_fail_fast_and_small(template: str) -> None:
    memory_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.process_time()  # CPU time: the bound is on our work, not on the machine's load
    with pytest.raises(ExpressionError):
        render(template, CONTEXT)
    assert time.process_time() - started < 3
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - memory_before < 100_000  # KiB: under 100 MB


def test_the_chained_plus_that_compiled_for_30_seconds_is_refused_at_once() -> None:
    source = " + ".join(["customer.points"] * 250)
    started = time.process_time()
    with pytest.raises(ExpressionError) as failed:
        evaluate(source, CONTEXT)  # over the length limit
    with pytest.raises(ExpressionError):
        evaluate(" + ".join(["customer.points"] * 100), CONTEXT)  # under it, but too deep
    assert time.process_time() - started < 1
    assert failed.value.kind == "limit"


def test_ordinary_uses_of_the_same_operators_still_work() -> None:
    text = render("{{ customer.first_name }} x{{ 'ab' * 3 }} {{ customer.points ** 2 }} {{ '%05d' % 42 }} "
                  "{{ '{:>4}'.format('a') }} {{ 'a'|center(5) }} {{ customer.segments|join(', ') }} "
                  "{% for s in customer.segments %}[{{ loop.index }}{{ s }}]{% endfor %} {{ 1234.5|number(1) }} "
                  "{{ 'a-b'.replace('-', ' ') }} {{ brand ~ '!' }}", CONTEXT)
    assert text == "Ana xababab 144 00042    a   a   a, b [1a][2b] 1,234.5 a b Nordic Shoes!"
    assert evaluate("customer.points * 2 > 20 and 'a' * 2 == 'aa'", CONTEXT) is True


def test_work_the_steps_do_not_count_stops_at_the_cpu_limit() -> None:
    # Each loop turn (a step) slices and compares 10,000 characters 400 times.
    slow = "{% set s = 'a' * 9999 %}{% for c in s %}" + "{% if s[::-1] == s[::-1] %}{% endif %}" * 200 + "{% endfor %}"
    with pytest.raises(ExpressionError, match="CPU time") as failed:
        render(slow, CONTEXT)
    assert failed.value.kind == "limit"


def _burn(seconds: float) -> None:
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def test_our_own_functions_called_from_a_text_are_not_charged_to_it(monkeypatch) -> None:
    # link() and coupon() query the database from inside a render: on a busy worker that
    # work must never make a text fail its CPU bound.
    monkeypatch.setattr(bounds, "MAX_SECONDS", 0.05)
    context = build_context({"customer": {"first_name": "Ana"}}, {"link": lambda url: _burn(0.2) or "https://l/x"})
    assert render("{{ customer.first_name }}: {{ link('https://a.example') }}", context) == "Ana: https://l/x"
    # Their cost is left out, not the text's own: the bound still stops a slow template.
    slow = "{% set s = 'a' * 9999 %}{% for c in s %}" + "{% if s[::-1] == s[::-1] %}{% endif %}" * 200 + "{% endfor %}"
    with pytest.raises(ExpressionError, match="CPU time"):
        render("{{ link('https://a.example') }}" + slow, context)


def test_a_garbage_collection_during_an_evaluation_moves_its_deadline_on() -> None:
    garbage = [[[] for _ in range(50)] for _ in range(20_000)]
    for inner in garbage:
        inner.append(inner)  # cycles: a collection has work to do
    del garbage
    with bounds.budget() as spent:
        before = spent.deadline
        gc.collect()
        assert spent.deadline > before
        assert spent.collecting_since is None


def test_a_text_over_the_output_limit_is_too_long() -> None:
    with pytest.raises(TooLong):
        render("{% for i in range(20) %}{{ 'y' * 9000 }}{% endfor %}", CONTEXT)


def test_failures_name_their_kind_and_the_kind_holds_no_customer_data() -> None:
    with pytest.raises(ExpressionError) as failed:
        render("{{ customer.first_name|date }}", CONTEXT)
    assert failed.value.kind == "ValueError" and "Ana" not in failed.value.kind
    with pytest.raises(ExpressionError) as limited:
        render("{{ 'a' * 10**9 }}", CONTEXT)
    assert limited.value.kind == "limit"


# --- the validator ------------------------------------------------------------------------

HEAD = """\
id: demo
name: Demo
trigger: {event: purchase}
steps:
"""


def test_the_validator_reports_length_depth_and_forbidden_tags_with_positions(check) -> None:
    deep = " + ".join(["customer.points"] * 40)
    long_condition = "customer.points > 1" + " or customer.points > 1" * 100
    report = check(
        HEAD
        + f'  - if: "{deep} > 1"\n    then: []\n'
        + f'  - if: "{long_condition}"\n    then: []\n'
        + '  - id: m\n    send_sms: {text: "{% macro f() %}x{% endmacro %}Hi"}\n'
        + '  - id: r\n    send_sms: {text: "{% for s in customer.segments recursive %}{{ s }}{% endfor %}"}\n'
    )
    assert where(report.errors) == [
        (5, 9, f"nested 41 levels deep: at most {bounds.MAX_DEPTH} (split it up, or use "
               "fewer chained operators or parentheses)"),
        (7, 9, f"an expression is at most 2,000 characters (this one has {len(long_condition):,})"),
        (10, 26, "'{% macro %}' is not part of the journey language"),
        (12, 53, "recursive loops are not part of the journey language"),
    ]
    assert report.catalog.journeys == {}


def test_a_template_file_over_the_length_limit_is_an_error(check, journeys_dir: Path) -> None:
    (journeys_dir / "templates" / "huge.yaml").write_text('text:\n  en: "' + "x" * 10_001 + '"\n')
    report = validate_directory(journeys_dir)
    assert [(Path(p.file).name, p.line, p.column, p.message) for p in report.errors] == [
        ("huge.yaml", 2, 7, "a template is at most 10,000 characters (this one has 10,001)"),
    ]


# --- ${VAR} in settings.yaml --------------------------------------------------------------


def test_environment_variables_are_read_only_in_the_sender_block(journeys_dir: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "the-auth-token-value")
    monkeypatch.setenv("JOURNEYS_DATABASE_URL", "postgresql://u:db-password@h/db")
    monkeypatch.setenv("SHOP_NAME", "Nordic Shoes")
    monkeypatch.setenv("SMS_FROM", "+15550001111")
    (journeys_dir / "settings.yaml").write_text(
        "brand: ${SHOP_NAME}\n"
        'sender: {from: "${SMS_FROM}", messaging_service_sid: "${TWILIO_AUTH_TOKEN}"}\n'
        "replies:\n"
        '  help: "Help: ${TWILIO_AUTH_TOKEN}"\n'
        '  stop: "${JOURNEYS_DATABASE_URL}"\n'
    )
    report = validate_directory(journeys_dir)
    why = ("is not read here: environment variables are only read in the sender block (messaging_service_sid, "
           "from), so no text, brand or reply can hold a server's value")
    assert [(Path(p.file).name, p.line, p.column, p.message) for p in report.errors] == [
        ("settings.yaml", 1, 8, f"${{SHOP_NAME}} {why}"),
        ("settings.yaml", 2, 55, "${TWILIO_AUTH_TOKEN} names a secret: secrets are never read into settings.yaml"),
        ("settings.yaml", 4, 16, f"${{TWILIO_AUTH_TOKEN}} {why}"),
        ("settings.yaml", 5, 10, f"${{JOURNEYS_DATABASE_URL}} {why}"),
    ]
    settings = report.catalog.settings
    texts = [settings.brand, settings.sender.messaging_service_sid, settings.replies.help, settings.replies.stop]
    assert not any("the-auth-token-value" in t or "db-password" in t for t in texts if t)
    assert settings.sender.from_ == "+15550001111"  # where it is allowed, it is still read


def test_a_secret_in_a_reply_keeps_the_journeys_from_going_live(journeys_dir: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from language.validate import InvalidJourneys, load_catalog

    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "the-auth-token-value")
    (journeys_dir / "settings.yaml").write_text('replies:\n  help: "${TWILIO_AUTH_TOKEN}"\n')
    with pytest.raises(InvalidJourneys) as refused:
        load_catalog(journeys_dir)
    assert "the-auth-token-value" not in str(refused.value)
