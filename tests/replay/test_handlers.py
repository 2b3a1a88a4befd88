"""Every step type the language accepts has a workflow handler, and no handler is left
over: a step type added to language/models.py without one would validate, then crash the
journey at the step (KeyError in JourneyWorkflow.run_steps).

Triggers have no such registry (the engine tells them apart with isinstance checks in
several places), so they are not checked here."""

from __future__ import annotations

import inspect
from typing import get_args

import pytest

from language import models, shape
from workflows.steps import HANDLERS


def step_union() -> dict[str, type]:
    """The `Step` union the parser uses: tag -> model."""
    union, *_ = get_args(models.Step)
    tagged = {}
    for member in get_args(union):
        model, *extras = get_args(member)
        [tag] = [extra.tag for extra in extras if hasattr(extra, "tag")]
        tagged[tag] = model
    return tagged


def test_the_step_types_and_the_handlers_are_the_same_set() -> None:
    assert set(HANDLERS) == set(models.STEP_TYPES)
    assert set(HANDLERS) == set(shape.STEP_TYPES)  # what the validator's messages offer
    assert step_union() == models.STEP_TYPES  # what the parser accepts, each tag with its model


@pytest.mark.parametrize("kind", sorted(HANDLERS))
def test_each_handler_is_async_and_takes_its_own_step_model(kind: str) -> None:
    handler = HANDLERS[kind]
    assert inspect.iscoroutinefunction(handler), f"{kind}: {handler.__qualname__} is not an async function"
    parameters = list(inspect.signature(handler).parameters.values())
    assert [p.name for p in parameters] == ["run", "step", "key"], f"{kind}: not (run, step, key)"
    # Annotations are strings here (postponed evaluation): the model's name is enough to
    # catch two step types wired to each other's handler.
    assert parameters[1].annotation == models.STEP_TYPES[kind].__name__, (
        f"{kind}: handler {handler.__module__}.{handler.__qualname__} takes {parameters[1].annotation}")
