"""Whatever validates runs: a journey nested as deep as the validator allows runs to its end.

The depth bound (language.loader.MAX_DEPTH) sits below what a workflow input can carry;
this runs the deepest journey it accepts through the real workflow, and shows one level
more is refused with its position.
"""

from __future__ import annotations

from pathlib import Path

from language.loader import MAX_DEPTH
from language.validate import validate_directory
from tests.runtime.support import write_journeys

# The journey mapping, `steps`, then a mapping and a `then` list per `if`, then the exit.
DEEPEST_IFS = (MAX_DEPTH - 3) // 2


def nested_ifs(count: int, ids: bool = True) -> str:
    lines = ["id: deep", "name: Deep", "trigger: {event: purchase}", "steps:"]
    for level in range(count):
        indent = "  " * (2 * level + 1)
        lines += [indent + '- if: "true"', indent + "  then:"]
        if ids:  # else each step is known by its position: steps.0.then.0.then.0...
            lines.insert(-1, indent + f"  id: level_{level}")
    lines.append("  " * (2 * count + 1) + "- exit: bottom")
    return "\n".join(lines) + "\n"


async def test_the_deepest_journey_the_validator_accepts_runs_to_its_end(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"deep": nested_ifs(DEEPEST_IFS)})
    async with simulation(catalog) as run:
        await run.customer()
        assert await run.enter("deep")
        timeline = await run.timeline("deep")
    assert timeline["outcome"] == "bottom"


def test_one_level_deeper_is_refused_where_it_goes_too_deep(journeys_dir: Path) -> None:
    write_journeys(journeys_dir, {})
    (journeys_dir / "deep.yaml").write_text(nested_ifs(DEEPEST_IFS + 1))
    report = validate_directory(journeys_dir)
    assert [(p.line, p.message) for p in report.errors] == [
        (5 + 3 * (DEEPEST_IFS + 1), f"nested more than {MAX_DEPTH} lists and mappings deep: a journey cannot be run "
                                    "nested this deep"),
    ]


def test_a_step_nested_deep_without_ids_is_asked_for_one(journeys_dir: Path) -> None:
    """Its key (steps.0.then.0...) goes into message, event and decision keys of bounded columns."""
    write_journeys(journeys_dir, {})
    (journeys_dir / "deep.yaml").write_text(nested_ifs(9, ids=False))
    report = validate_directory(journeys_dir)
    assert [(p.line, p.column, p.message) for p in report.errors] == [
        (23, 41, "this step is known as 'steps.0.then.0.then.0.then.0.then.0.then...' (70 characters, at most 64): "
                 "give it, or a step it is nested in, an id"),
    ]
