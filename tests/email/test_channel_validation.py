"""`journeys validate` on send_sms steps with `channel:`: the value, the email block, its
templates and placeholders, each error at its place."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from language.validate import validate_directory
from tests.runtime.support import write_journeys

STEP = """id: promo
name: Promo
trigger: {{event: signup}}
steps:
  - id: note
    send_sms: {{text: "Your cart is waiting"}}
{extra}
"""


def _problems(journeys_dir: Path, extra: str) -> list[tuple[int, int, str, str]]:
    with contextlib.suppress(Exception):  # an invalid directory: the report below says why
        write_journeys(journeys_dir, {"promo": STEP.format(extra=extra)})
    report = validate_directory(journeys_dir)
    return [(p.line, p.column, p.severity, p.message) for p in report.problems]


def test_a_text_else_email_step_validates(journeys_dir: Path) -> None:
    extra = ('    channel: sms_else_email\n'
             '    email:\n'
             '      subject: "Hi {{ customer.first_name }}"\n'
             '      text: "{{ link(\'https://shop.example/cart\') }}"\n'
             '      html: "<p>Your cart</p>"')
    assert _problems(journeys_dir, extra) == []


def test_a_bad_channel_value_is_an_error_at_the_value(journeys_dir: Path) -> None:
    problems = _problems(journeys_dir, '    channel: sms_or_email\n    email: {subject: "s", text: "t"}')
    assert [(line, col, severity) for line, col, severity, _ in problems] == [(7, 14, "error")], problems
    assert "sms_else_email" in problems[0][3] and "preferred" in problems[0][3]


def test_a_missing_email_block_is_one_error_on_the_step(journeys_dir: Path) -> None:
    problems = _problems(journeys_dir, '    channel: preferred')
    assert [(line, severity, message) for line, _, severity, message in problems] == [
        (6, "error", "channel: preferred needs an 'email' block (subject and text, or a template)")]


def test_an_sms_template_in_the_email_block_is_an_error_at_the_template(journeys_dir: Path) -> None:
    (journeys_dir / "templates").mkdir(parents=True, exist_ok=True)
    (journeys_dir / "templates" / "short.yaml").write_text('text: {en: "Hi"}\n')
    problems = _problems(journeys_dir, '    channel: email_else_sms\n    email: {template: short}')
    assert [(line, severity) for line, _, severity, _ in problems] == [(8, "error")], problems
    assert "SMS template" in problems[0][3]


@pytest.mark.parametrize(("extra", "fragment"), [
    ('    email: {subject: "s", text: "t"}', "an 'email' block goes with 'channel'"),
    ('    channel: email_else_sms\n    email: {text: "t"}', "subject"),
    ('    channel: email_else_sms\n    email: {subject: "s", text: "{{ coupon(\'NOPE\') }}"}', "NOPE"),
])
def test_a_missing_or_bad_email_block_is_an_error_on_the_step(journeys_dir: Path, extra: str, fragment: str) -> None:
    problems = _problems(journeys_dir, extra)
    errors = [(line, message) for line, _, severity, message in problems if severity == "error"]
    assert any(fragment in message and line >= 5 for line, message in errors), problems


def test_unbalanced_html_in_the_email_block_is_a_warning_at_the_html(journeys_dir: Path) -> None:
    problems = _problems(journeys_dir, '    channel: sms_else_email\n    email:\n      subject: "s"\n'
                                       '      text: "t"\n      html: "<div><b>Hi</div>"')
    assert [(line, severity, message) for line, _, severity, message in problems] == [
        (11, "warning", "html: </div> closes nothing open")]
