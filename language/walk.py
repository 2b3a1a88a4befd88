"""Where things are in a journey's raw data: every step, and every expression or text.

The checks walk the loaded YAML rather than the pydantic model, so they still run (and
report with exact positions) when some other part of the file does not validate.
Everything here is defensive about types: a wrong shape is the shape check's job.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from language.loader import Path_
from language.models import step_kind

Scope = Literal["condition", "event", "message", "value", "rule", "run_key"]
Mode = Literal["expression", "template"]


@dataclass(frozen=True)
class StepAt:
    path: Path_  # e.g. ("steps", 2, "then", 0)
    step: dict
    kind: str | None


@dataclass(frozen=True)
class Site:
    """One expression or template in a journey, and which names it may use."""

    path: Path_
    source: str
    mode: Mode
    scope: Scope


def step_lists(data: Any) -> Iterator[tuple[Path_, list]]:
    """Every list of steps: the journey's own, then each nested one, depth first."""
    if isinstance(data, dict) and isinstance(data.get("steps"), list):
        yield from _lists(("steps",), data["steps"])


def _lists(path: Path_, steps: list) -> Iterator[tuple[Path_, list]]:
    yield path, steps
    for i, step in enumerate(steps):
        if isinstance(step, dict):
            for sub_path, sub in nested((*path, i), step):
                yield from _lists(sub_path, sub)


def nested(path: Path_, step: dict) -> list[tuple[Path_, list]]:
    """The step lists directly inside one step, with their paths."""
    kind = step_kind(step)
    found: list[tuple[Path_, list]] = []
    if kind in ("ask", "wait_for", "if"):
        for key in ("then", "else"):
            if isinstance(step.get(key), list):
                found.append(((*path, key), step[key]))
    elif kind == "choose" and isinstance(step.get("choose"), list):
        for i, branch in enumerate(step["choose"]):
            if isinstance(branch, dict):
                for key in ("steps", "else"):
                    if isinstance(branch.get(key), list):
                        found.append(((*path, "choose", i, key), branch[key]))
    elif kind == "split":
        for i, variant in enumerate(variants(step)):
            if isinstance(variant, dict) and isinstance(variant.get("steps"), list):
                found.append(((*path, "split", "variants", i, "steps"), variant["steps"]))
    return found


def variants(step: dict) -> list:
    split = step.get("split")
    found = split.get("variants") if isinstance(split, dict) else None
    return found if isinstance(found, list) else []


def iter_steps(data: Any) -> Iterator[StepAt]:
    for path, steps in step_lists(data):
        for i, step in enumerate(steps):
            if isinstance(step, dict):
                yield StepAt((*path, i), step, step_kind(step))


def _site(data: Any, path: Path_, mode: Mode, scope: Scope) -> Iterator[Site]:
    node = data
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, str):
        yield Site(path, node, mode, scope)


def message_sites(step: StepAt) -> Iterator[Site]:
    """The SMS texts of a sending step (its text and, for ask, the reprompt)."""
    if step.kind not in ("send_sms", "ask"):
        return
    keys = ("text", "reprompt") if step.kind == "ask" else ("text",)
    for key in keys:
        yield from _site(step.step, (step.kind, key), "template", "message")


def sites(data: Any) -> Iterator[Site]:
    """Every expression and template of a journey, with the names its place allows."""
    if not isinstance(data, dict):
        return

    def rebase(site: Site, prefix: Path_) -> Site:
        return Site((*prefix, *site.path), site.source, site.mode, site.scope)

    yield from _site(data, ("audience",), "expression", "condition")
    yield from _site(data, ("trigger", "where"), "expression", "event")
    yield from _site(data, ("run_key",), "expression", "run_key")
    yield from _site(data, ("goal", "value"), "expression", "event")
    exit_on = data.get("exit_on")
    for i, rule in enumerate(exit_on if isinstance(exit_on, list) else []):
        for site in _site(rule, ("where",), "expression", "event"):
            yield rebase(site, ("exit_on", i))
    for at in iter_steps(data):
        for site in _step_sites(at):
            yield rebase(site, at.path)


def _step_sites(at: StepAt) -> Iterator[Site]:
    step = at.step
    yield from message_sites(at)
    if at.kind == "send_email":  # an email's parts are message texts too: link() and coupon() work
        for key in ("subject", "text", "html"):
            yield from _site(step, ("send_email", key), "template", "message")
    if at.kind == "send_sms":  # and those of a send_sms step's email: block (channel:)
        for key in ("subject", "text", "html"):
            yield from _site(step, ("email", key), "template", "message")
    if at.kind == "if":
        yield from _site(step, ("if",), "expression", "condition")
    elif at.kind == "wait_for":
        yield from _site(step, ("wait_for", "where"), "expression", "event")
    elif at.kind == "choose" and isinstance(step.get("choose"), list):
        for i, branch in enumerate(step["choose"]):
            if isinstance(branch, dict) and isinstance(branch.get("when"), str):
                yield Site(("choose", i, "when"), branch["when"], "expression", "condition")
    elif at.kind == "set" and isinstance(step.get("set"), dict):
        for key, value in step["set"].items():
            if isinstance(value, str):
                yield Site(("set", key), value, "template", "value")
    elif at.kind == "emit" and isinstance(step.get("emit"), dict):
        properties = step["emit"].get("properties")
        for key, value in properties.items() if isinstance(properties, dict) else []:
            if isinstance(value, str):
                yield Site(("emit", "properties", key), value, "template", "value")
