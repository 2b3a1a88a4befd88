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
