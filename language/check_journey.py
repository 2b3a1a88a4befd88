"""Check one journey file against the configuration; build its model when it is valid."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from language.checks_email import email_html
from language.checks_expressions import Analysis, analyze
from language.checks_length import length_warning
from language.checks_references import (
    JourneyNames,
    check_reference,
    reward_problem,
    segment_problem,
    template_problem,
)
from language.checks_structure import check_structure
from language.configuration import Configuration
from language.loader import Path_, Span, YamlDocument
from language.models import AskSpec, EmailMessage, Journey, Message, SendSmsStep, StepBase, children
from language.problems import Problem
from language.shape import validate_model
from language.walk import StepAt, iter_steps, message_sites, sites

# A run's workflow input carries the whole definition: Temporal warns about a payload
# over 512 KB and refuses one over 2 MB.
MAX_DEFINITION_BYTES = 512 * 1024


def check_journey(doc: YamlDocument, stem: str, config: Configuration) -> tuple[Journey | None, list[Problem]]:
    """The journey (templates inlined) if it has no errors, and every problem found."""
    problems = list(doc.problems)
    if doc.data is None:
        if not problems:
            problems.append(
                doc.problem(doc.position(()), "the file is empty: a journey needs id, name, trigger and steps")
            )
        return None, problems
    if not isinstance(doc.data, dict):
        problems.append(
            doc.problem(doc.position(()), "a journey file must be a mapping of keys (id, name, trigger, steps, ...)")
        )
        return None, problems
    journey, found = validate_model(Journey, doc)
    problems += found
    problems += check_structure(doc, stem)
    problems += _texts(doc, config)
    problems += _segments(doc, config)
    problems += _rewards(doc, config)
    problems += _templates(doc, config)
    problems += email_html(doc)
    problems.sort(key=lambda p: (p.line, p.column))
    if journey is None or any(p.severity == "error" for p in problems):
        return None, problems
    inline_templates(journey, config)
    size = len(journey.model_dump_json())
    if size > MAX_DEFINITION_BYTES:
        problems.append(
            doc.problem(
                doc.key_position(("steps",)),
                f"the journey is too large to run: {size:,} bytes once its templates are copied in "
                f"(at most {MAX_DEFINITION_BYTES:,}): every run carries it as its input",
            )
        )
        return None, problems
    return journey, problems


def _texts(doc: YamlDocument, config: Configuration) -> Iterator[Problem]:
    """Expressions and templates: they compile, use known names, refer to real things."""
    names = JourneyNames.of(doc.data)
    analyses: dict[tuple[str, str, str], Analysis] = {}  # a text written (or aliased) many times: once
    for site in sites(doc.data):
        key = (site.source, site.mode, site.scope)
        analysis = analyses.get(key) or analyses.setdefault(key, analyze(*key))
        for finding in analysis.findings:
            yield doc.problem(doc.find(site.path, finding.snippet), finding.message, finding.value, finding.severity)
        for ref in analysis.references:
            reason = check_reference(ref, config.known, names)
            if reason:
                yield doc.problem(_find_quoted(doc, site.path, ref.name), reason, ref.name)
    base_url = config.settings.links.base_url
    for at in iter_steps(doc.data):
        for site in message_sites(at):
            warning = length_warning(site.source, base_url)
            if warning:
                yield doc.problem(doc.position((*at.path, *site.path)), warning, None, "warning")


def _find_quoted(doc: YamlDocument, path: Path_, name: str) -> Span:
    for needle in (f"'{name}'", f'"{name}"', name):
        span = doc.find(path, needle)
        if span != doc.position(path):
            return span
    return doc.position(path)


def _segments(doc: YamlDocument, config: Configuration) -> Iterator[Problem]:
    """Triggers may name any segment; update_segments only manual ones."""
    refs: list[tuple[Path_, bool]] = [
        (("trigger", "segment_entered"), False),
        (("trigger", "segment_exited"), False),
        (("trigger", "schedule", "segment"), False),
    ]
    for at in iter_steps(doc.data):
        spec = at.step.get("update_segments") if at.kind == "update_segments" else None
        for key in ("add", "remove"):
            names = spec.get(key) if isinstance(spec, dict) else None
            for i, _ in enumerate(names if isinstance(names, list) else []):
                refs.append(((*at.path, "update_segments", key, i), True))
    for path, manual_only in refs:
        name = doc.get(path)
        if isinstance(name, str):
            reason = segment_problem(name, config.known, manual_only=manual_only)
            if reason:
                yield doc.problem(doc.position(path), reason, name)


def _rewards(doc: YamlDocument, config: Configuration) -> Iterator[Problem]:
    """A redeem_reward step names a reward of loyalty.yaml."""
    for at in iter_steps(doc.data):
        spec = at.step.get("redeem_reward") if at.kind == "redeem_reward" else None
        path = (*at.path, "redeem_reward", "reward")
        name = doc.get(path) if isinstance(spec, dict) else None
        if isinstance(name, str) and (reason := reward_problem(name, config.known)):
            yield doc.problem(doc.position(path), reason, name)


def _template_blocks(data: Any) -> Iterator[tuple[StepAt, str]]:
    """Each message block of a sending step: its own, and a send_sms step's ``email:`` block."""
    for at in iter_steps(data):
        if at.kind in ("send_sms", "ask", "send_email"):
            yield at, at.kind
        if at.kind == "send_sms" and isinstance(at.step.get("email"), dict):
            yield at, "email"


def _templates(doc: YamlDocument, config: Configuration) -> Iterator[Problem]:
    """A named template exists, and its texts refer to this journey's steps and splits."""
    names = JourneyNames.of(doc.data)
    found: dict[str, list[tuple[str, str]]] = {}  # per template: the same for every step using it
    for at, block in _template_blocks(doc.data):
        spec = at.step.get(block)
        name = spec.get("template") if isinstance(spec, dict) else None
        if not isinstance(name, str):
            continue
        path = (*at.path, block, "template")
        reason = template_problem(name, config.known)
        if reason is None and config.templates[name].is_email != (block in ("send_email", "email")):
            reason = (f"template '{name}' is an email template (it has a subject): use it in send_email"
                      if config.templates[name].is_email else
                      f"template '{name}' is an SMS template (no subject): send_email needs subject, text or html "
                      "per locale")
        if reason:
            yield doc.problem(doc.position(path), reason, name)
            continue
        if name not in found:
            template = config.templates[name]
            parts = [template.text, template.subject or {}, template.html or {}]
            found[name] = [
                (f"template '{name}' ({locale}): {reason}", ref.name)
                for texts in parts for locale, text in texts.items()
                for ref in analyze(text, "template", "message").references
                if (reason := check_reference(ref, config.known, names))
            ]
        for message, ref_name in found[name]:
            yield doc.problem(doc.position(path), message, ref_name)


def inline_templates(journey: Journey, config: Configuration) -> None:
    """Copy each named template's texts into its message, so the pinned version covers them."""
    for message in _messages(journey.steps):
        if message.template is None:
            continue
        template = config.templates[message.template]
        message.texts = dict(template.text)
        if isinstance(message, EmailMessage):
            message.subjects, message.htmls = dict(template.subject or {}), dict(template.html or {})


def _messages(steps: Sequence[Any]) -> Iterator[Message | EmailMessage]:
    for step in steps:
        for value in (getattr(step, "send_sms", None), getattr(step, "ask", None), getattr(step, "send_email", None),
                      getattr(step, "email", None) if isinstance(step, SendSmsStep) else None):
            if isinstance(value, Message | AskSpec | EmailMessage):
                yield value
        if isinstance(step, StepBase):
            for _, nested in children(step):
                yield from _messages(nested)
