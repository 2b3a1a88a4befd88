"""An email's HTML part is checked for balanced tags (a warning: a mail client shows
broken markup somehow, and a template's {% if %} can make a check of the source wrong)."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser

from language.loader import YamlDocument
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
        spec = at.step.get("send_email") if at.kind == "send_email" else None
        source = spec.get("html") if isinstance(spec, dict) else None
        if isinstance(source, str) and (reason := html_problem(source)):
            yield doc.problem(doc.position((*at.path, "send_email", "html")), f"html: {reason}", None, "warning")
