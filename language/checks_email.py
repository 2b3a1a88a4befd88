"""An email's HTML part is checked for balanced tags (a warning: a mail client shows
broken markup somehow, and a template's {% if %} can make a check of the source wrong);
an email template's locales for completeness (every locale a subject, and a text or an
html part; no plain-text part is a warning), its subjects and its HTML size."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser

from language.loader import YamlDocument
from language.models import HTML_MAX, subject_problem
from language.problems import Problem
from language.walk import iter_steps

# Elements without an end tag, and those HTML lets a writer leave open.
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_OPTIONAL_END = {"p", "li", "td", "th", "tr", "thead", "tbody", "tfoot", "option", "dt", "dd", "html", "head",
                 "body", "colgroup"}


class _Balance(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.problem: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID or self.problem:
            return
        while self.open and self.open[-1] != tag and self.open[-1] in _OPTIONAL_END:
            self.open.pop()
        if self.open and self.open[-1] == tag:
            self.open.pop()
        else:
            self.problem = f"</{tag}> closes nothing open"


def html_problem(source: str) -> str | None:
    parser = _Balance()
    parser.feed(source)
    parser.close()
    if parser.problem:
        return parser.problem
    unclosed = [tag for tag in parser.open if tag not in _OPTIONAL_END]
    return f"<{unclosed[-1]}> is never closed" if unclosed else None


def email_html(doc: YamlDocument) -> Iterator[Problem]:
    for at in iter_steps(doc.data):
        block = {"send_email": "send_email", "send_sms": "email"}.get(at.kind or "")
        spec = at.step.get(block) if block else None
        source = spec.get("html") if isinstance(spec, dict) else None
        if isinstance(source, str) and (reason := html_problem(source)):
            yield doc.problem(doc.position((*at.path, block, "html")), f"html: {reason}", None, "warning")


def email_template(doc: YamlDocument) -> Iterator[Problem]:
    """journeys/templates/<name>.yaml with a subject: every locale complete and well-formed."""
    data = doc.data if isinstance(doc.data, dict) else {}
    if "subject" not in data:
        return
    parts: dict[str, dict] = {}
    for key in ("subject", "text", "html"):
        value = data.get(key)
        parts[key] = value if isinstance(value, dict) else {}
    subjects, texts, htmls = parts["subject"], parts["text"], parts["html"]
    for locale, subject in subjects.items():
        path = ("subject", locale)
        if isinstance(subject, str) and (reason := subject_problem(subject)):
            yield doc.problem(doc.position(path), f"subject ({locale}): {reason}", None)
        if locale not in texts and locale not in htmls:
            yield doc.problem(doc.position(path), f"locale '{locale}' has a subject but no text or html: add "
                              f"text: {{{locale}: ...}}", locale)
        elif locale not in texts:
            yield doc.problem(doc.position(("html", locale)), f"locale '{locale}' has no plain-text part: the engine "
                              "makes one from the HTML; write text: {" + locale + ": ...} to choose its words",
                              locale, "warning")
    for key in ("text", "html"):
        for locale in parts[key]:
            if locale not in subjects:
                yield doc.problem(doc.position((key, locale)), f"locale '{locale}' has a {key} but no subject: add "
                                  f"subject: {{{locale}: ...}}", locale)
    for locale, source in htmls.items():
        if not isinstance(source, str):
            continue
        path = ("html", locale)
        if len(source) > HTML_MAX:
            yield doc.problem(doc.position(path), f"html ({locale}) is {len(source):,} characters, more than "
                              f"{HTML_MAX:,}: mail clients clip long emails", None)
        elif reason := html_problem(source):
            yield doc.problem(doc.position(path), f"html ({locale}): {reason}", None, "warning")
