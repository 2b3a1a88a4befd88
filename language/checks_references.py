"""Check that every name a journey refers to exists: steps, splits, segments, coupons, templates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from language.checks_expressions import Reference
from language.config import TemplateFile
from language.models import SENDING_STEP_TYPES
from language.shape import did_you_mean
from language.walk import iter_steps


@dataclass
class Known:
    """The names the configuration defines, read even from files with errors in them."""

    segments: dict[str, bool] = field(default_factory=dict)  # name -> manual?
    coupons: set[str] = field(default_factory=set)
    rewards: set[str] = field(default_factory=set)
    templates: dict[str, TemplateFile] = field(default_factory=dict)
    broken_templates: set[str] = field(default_factory=set)  # exist, but have errors


@dataclass
class JourneyNames:
    """The step ids (with their kind) and split names of one journey."""

    steps: dict[str, str | None] = field(default_factory=dict)
    splits: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, data: Any) -> JourneyNames:
        names = cls()
        for at in iter_steps(data):
            step_id = at.step.get("id")
            if isinstance(step_id, str):
                names.steps.setdefault(step_id, at.kind)
            split = at.step.get("split") if at.kind == "split" else None
            if isinstance(split, dict) and isinstance(split.get("name"), str):
                names.splits.add(split["name"])
        return names


def check_reference(ref: Reference, known: Known, names: JourneyNames | None) -> str | None:
    """Why ``ref`` does not resolve, or None. Without ``names``, journey-local refs pass."""
    if ref.kind == "segment":
        return segment_problem(ref.name, known)
    if ref.kind == "coupon":
        if ref.name in known.coupons:
            return None
        return (
            f"unknown coupon series '{ref.name}'"
            + did_you_mean(ref.name, known.coupons)
            + "; series are listed under coupons: in loyalty.yaml"
        )
    if names is None:
        return None
    if ref.kind == "split":
        if ref.name in names.splits:
            return None
        return f"no split named '{ref.name}' in this journey" + did_you_mean(ref.name, names.splits)
    wanted, what = {"sending_step": (SENDING_STEP_TYPES, "a step that sends (send_sms, send_email or ask)"),
                    "reward_step": (("redeem_reward",), "a redeem_reward step"),
                    }.get(ref.kind, (("ask",), "an ask step"))
    candidates = [i for i, kind in names.steps.items() if kind in wanted]
    if ref.name not in names.steps:
        return f"no step '{ref.name}' in this journey" + did_you_mean(ref.name, candidates)
    kind = names.steps[ref.name]
    if kind not in wanted:
        return f"'{ref.name}' is a {kind} step; this needs {what}"
    return None


def reward_problem(name: str, known: Known) -> str | None:
    if name in known.rewards:
        return None
    return (f"unknown reward '{name}'" + did_you_mean(name, known.rewards)
            + "; rewards are listed under rewards: in loyalty.yaml")


def segment_problem(name: str, known: Known, *, manual_only: bool = False) -> str | None:
    if name not in known.segments:
        return (
            f"unknown segment '{name}'" + did_you_mean(name, known.segments) + "; segments are defined in segments.yaml"
        )
    if manual_only and not known.segments[name]:
        manual = [n for n, is_manual in known.segments.items() if is_manual]
        return (
            f"'{name}' is a rule segment: its members are computed from its rule, so "
            "only manual segments (manual: true) can be changed"
            + (f" (manual segments: {', '.join(sorted(manual))})" if manual else "")
        )
    return None


def template_problem(name: str, known: Known) -> str | None:
    if name in known.broken_templates:
        return f"template '{name}' has errors (see templates/{name}.yaml)"
    if name not in known.templates:
        return (
            f"unknown template '{name}'"
            + did_you_mean(name, known.templates)
            + f"; expected the file templates/{name}.yaml"
        )
    return None
