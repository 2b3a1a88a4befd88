"""A journey's steps in journey order, each under the key its runs record it by.

The key is what the journey workflow (workflows/journey.py, ``run_steps``) gives a step:
its ``id``, or its path when it has none (``steps.2``, ``steps.1.then.0``,
``offer.variant.holdout.0``). Messages, links and coupons carry it as ``step_id``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from language.graph import step_summary
from language.models import SENDING_STEP_TYPES, SplitStep, StepBase, children, step_kind


@dataclass(frozen=True)
class OutlineStep:
    key: str
    kind: str
    summary: str
    depth: int  # 0 for the journey's own steps, 1 inside a branch, ...
    branch: str | None  # the branch it sits in: "then", "variant.holdout", ...
    step: StepBase

    @property
    def sends(self) -> bool:
        return self.kind in SENDING_STEP_TYPES


def outline(steps: Sequence[StepBase]) -> list[OutlineStep]:
    return list(_walk(steps, "steps", 0, None))


def _walk(steps: Sequence[StepBase], path: str, depth: int, branch: str | None) -> Iterator[OutlineStep]:
    for index, step in enumerate(steps):
        key = step.id or f"{path}.{index}"
        yield OutlineStep(key=key, kind=step_kind(step) or "step", summary=step_summary(step), depth=depth,
                          branch=branch, step=step)
        for label, nested in children(step):
            yield from _walk(nested, f"{key}.{label}", depth + 1, label)


def splits(steps: Sequence[StepBase]) -> list[tuple[str, SplitStep]]:
    """Every split step with its key, in journey order."""
    return [(s.key, s.step) for s in outline(steps) if isinstance(s.step, SplitStep)]
