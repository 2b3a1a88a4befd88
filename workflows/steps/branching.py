"""if, choose and split. Conditions are evaluated by an activity that reads the
customer fresh, so a check 30 days in sees what happened in between."""

from __future__ import annotations

import hashlib

from language.models import ChooseStep, ChooseWhen, IfStep, SplitStep, Variant
from workflows import activity_names as names
from workflows.contracts import EvaluateInput
from workflows.steps.base import Run


async def condition(run: Run, key: str, expression: str) -> bool:
    return await run.local(names.EVALUATE, EvaluateInput(**run.call(key), expression=expression),
                           result_type=bool)


async def if_(run: Run, step: IfStep, key: str) -> None:
    result = await condition(run, key, step.if_)
    run.record(key, "if", result=result)
    await run.run_steps(step.then if result else step.else_, f"{key}.{'then' if result else 'else'}")


async def choose(run: Run, step: ChooseStep, key: str) -> None:
    for index, branch in enumerate(step.choose):
        if isinstance(branch, ChooseWhen):
            if await condition(run, f"{key}.choose.{index}", branch.when):
                run.record(key, "choose", branch=index, when=branch.when)
                await run.run_steps(branch.steps, f"{key}.choose.{index}")
                return
        else:
            run.record(key, "choose", branch=index, when="else")
            await run.run_steps(branch.else_, f"{key}.choose.{index}")
            return
    run.record(key, "choose", branch=None)


def assign_variant(journey_id: str, split_name: str, customer_id: str, variants: list[Variant]) -> Variant:
    """A stable, uniform choice: the same customer always lands in the same variant."""
    total = sum(v.weight for v in variants)
    digest = hashlib.sha256(f"{journey_id}:{split_name}:{customer_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % total
    for variant in variants:
        if point < variant.weight:
            return variant
        point -= variant.weight
    return variants[-1]


async def split(run: Run, step: SplitStep, key: str) -> None:
    assert run.journey and run.run_ref and run.facts
    spec = step.split
    variant = assign_variant(run.journey.id, spec.name, run.run_ref.customer_id, spec.variants)
    run.facts.variants[spec.name] = variant.name
    run.record(key, "split", split=spec.name, variant=variant.name)
    await run.run_steps(variant.steps, f"{key}.variant.{variant.name}")
