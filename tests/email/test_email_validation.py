"""`journeys validate` on send_email steps: subjects, templates, HTML."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from language.checks_email import html_problem
from language.validate import validate_directory
from tests.runtime.support import write_journeys

STEP = """
id: promo
name: Promo
trigger: {{event: signup}}
steps:
  - id: mail
    send_email:
{body}
"""


def _problems(journeys_dir: Path, body: str) -> list[tuple[str, str]]:
    with contextlib.suppress(Exception):  # an invalid directory: the report below says why
        write_journeys(journeys_dir, {"promo": STEP.format(body=body)})
    report = validate_directory(journeys_dir)
    return [(p.severity, p.message) for p in report.problems]


def test_a_good_email_step_validates(journeys_dir: Path) -> None:
    body = ('      subject: "Hi {{ customer.first_name }}"\n'
            '      text: "{{ link(\'https://shop.example/\') }} {{ coupon(\'WELCOME10\') }}"\n'
            '      html: "<p>Hi<br><b>{{ customer.first_name }}</b></p>"')
    assert _problems(journeys_dir, body) == []


@pytest.mark.parametrize(("body", "fragment"), [
    ('      text: "no subject"', "subject"),
    ('      subject: "s"', "text"),
    ('      subject: ""\n      text: "t"', "'subject' must not be empty"),
    ('      subject: "{{ customer.nope( }}"\n      text: "t"', "does not compile"),
    ('      subject: "s"\n      text: "{{ coupon(\'NOPE\') }}"', "NOPE"),
    ('      subject: "s"\n      text: "t"\n      media_url: "https://x.example/a.png"', "media_url"),
])
def test_bad_email_steps_are_errors_naming_the_field(journeys_dir: Path, body: str, fragment: str) -> None:
    problems = _problems(journeys_dir, body)
    assert any(severity == "error" and fragment in message for severity, message in problems), problems


def test_unbalanced_html_is_a_warning(journeys_dir: Path) -> None:
    problems = _problems(journeys_dir, '      subject: "s"\n      text: "t"\n      html: "<div><b>Hi</div>"')
    assert problems == [("warning", "html: </div> closes nothing open")]


@pytest.mark.parametrize(("source", "problem"), [
    ("<p>one<p>two<ul><li>a<li>b</ul>", None),
    ("<table><tr><td>x</table>", None),
    ("<div>open", "<div> is never closed"),
    ("</span>", "</span> closes nothing open"),
])
def test_html_balance(source: str, problem: str | None) -> None:
    assert html_problem(source) == problem


# --- email templates: journeys/templates/<name>.yaml with subject, text and html per locale ---

GOOD_TEMPLATE = """
subject:
  en: "{{ customer.first_name | default('Hi') }}, your cart"
  sv: "{{ customer.first_name | default('Hej') }}, din varukorg"
text:
  en: "Your cart: {{ link('https://shop.example/cart') }}"
  sv: "Din varukorg: {{ link('https://shop.example/cart') }}"
html:
  en: "<p>Your <b>cart</b></p>"
  sv: "<p>Din <b>varukorg</b></p>"
"""


def _template_problems(journeys_dir: Path, template: str, body: str = "      template: cart_mail",
                       step: str = STEP) -> list[tuple[str, str, int]]:
    with contextlib.suppress(Exception):
        write_journeys(journeys_dir, {"promo": step.format(body=body)}, templates={"cart_mail": template})
    report = validate_directory(journeys_dir)
    return [(p.severity, p.message, p.line) for p in report.problems]


def test_a_good_email_template_validates(journeys_dir: Path) -> None:
    assert _template_problems(journeys_dir, GOOD_TEMPLATE) == []


@pytest.mark.parametrize(("template", "fragment", "line"), [
    # sv has a subject and nothing else
    ('subject: {en: "s", sv: "s"}\ntext: {en: "t"}', "locale 'sv' has a subject but no text or html", 1),
    # de has a text but no subject
    ('subject: {en: "s"}\ntext:\n  en: "t"\n  de: "t"', "locale 'de' has a text but no subject", 4),
    ('subject:\n  en: "two\\nlines"\ntext: {en: "t"}', "subject (en): the subject must be one line", 2),
    ('subject:\n  en: "' + "x" * 201 + '"\ntext: {en: "t"}', "longer than 200 characters", 2),
    ('subject:\n  en: "  "\ntext: {en: "t"}', "must not be empty", 2),
    ('subject: {en: "s"}\ntext: {en: "t"}\nhtml:\n  en: "' + "<p>x</p>" * 12_600 + '"', "more than 100,000", 4),
    ('subject: {en: "s"}\ntext: {en: "{{ coupon(\'NOPE\') }}"}', "NOPE", 2),
    ('html: {en: "<p>x</p>"}', "needs 'subject'", 1),
])
def test_bad_email_templates_are_errors_at_their_line(journeys_dir: Path, template: str, fragment: str,
                                                      line: int) -> None:
    problems = _template_problems(journeys_dir, template)
    assert any(severity == "error" and fragment in message and at == line for severity, message, at in problems), \
        problems


def test_a_locale_without_a_plain_text_part_is_a_warning(journeys_dir: Path) -> None:
    problems = _template_problems(journeys_dir, 'subject: {en: "s", sv: "s"}\ntext: {en: "t"}\n'
                                                'html:\n  en: "<p>x</p>"\n  sv: "<p>x</p>"')
    assert problems == [("warning", "locale 'sv' has no plain-text part: the engine makes one from the HTML; "
                                    "write text: {sv: ...} to choose its words", 5)]


def test_unbalanced_template_html_is_a_warning(journeys_dir: Path) -> None:
    problems = _template_problems(journeys_dir, 'subject: {en: "s"}\ntext: {en: "t"}\nhtml:\n  en: "<div>x"')
    assert problems == [("warning", "html (en): <div> is never closed", 4)]


def test_templates_go_with_their_channel(journeys_dir: Path) -> None:
    """An SMS template in send_email, an email template in send_sms: errors naming the template."""
    sms_template = 'text: {en: "a text"}'
    assert any("is an SMS template" in message for _, message, _ in _template_problems(journeys_dir, sms_template))
    sms_step = STEP.replace("send_email:", "send_sms:")
    problems = _template_problems(journeys_dir, GOOD_TEMPLATE, step=sms_step)
    assert any("is an email template" in message for _, message, _ in problems), problems


def test_template_and_inline_parts_do_not_mix(journeys_dir: Path) -> None:
    problems = _template_problems(journeys_dir, GOOD_TEMPLATE, body='      template: cart_mail\n      subject: "s"')
    assert any(severity == "error" and "either 'template' or" in message for severity, message, _ in problems)
