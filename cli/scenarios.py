"""`journeys test` (run the scenarios next to the journeys) and `journeys review` (Markdown
for a pull request: graphs and scenario timelines before and after)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from cli import output

console = output.console()
errors = output.console(stderr=True)


def test(
    directory: Annotated[Path, typer.Argument(help="The journeys directory (scenarios in DIR/scenarios/<journey>/)")]
    = Path("journeys"),
    journey: Annotated[str | None, typer.Option("--journey", help="Only this journey's scenarios")] = None,
) -> None:
    """Run every scenario on the time-skipping server; print a diff per failure, exit 1 on any."""
    from language.validate import InvalidJourneys
    from processes.scenario_run import run_scenarios, verdict
    from processes.scenarios import load_scenario, scenario_files

    files = scenario_files(directory, journey)
    if not files:
        errors.print(f"no scenarios in {directory / 'scenarios'}" + (f"/{journey}" if journey else ""))
        raise typer.Exit(1)
    loaded, broken = [], 0
    for journey_id, file in files:
        scenario, problems = load_scenario(journey_id, file)
        for problem in problems:
            errors.print(escape(str(problem)))
        broken += bool(problems)
        if scenario is not None:
            loaded.append(scenario)
    began = time.monotonic()
    try:
        outcomes = asyncio.run(run_scenarios(directory, loaded))
    except InvalidJourneys as err:
        errors.print(escape(str(err)))
        raise typer.Exit(1) from None
    failed = 0
    for outcome in outcomes:
        result = verdict(outcome)
        if result.passed:
            console.print(f"[green]PASS[/green] {escape(outcome.scenario.label)}")
            continue
        failed += 1
        console.print(f"[red]FAIL[/red] {escape(outcome.scenario.label)} ({escape(str(outcome.scenario.file))})")
        for line in result.diff:
            console.print(escape(line))
    console.print(f"{len(outcomes)} scenarios, {failed} failed, {broken} invalid "
                  f"({time.monotonic() - began:.1f}s)")
    if failed or broken:
        raise typer.Exit(1)


def review(
    base: Annotated[str | None, typer.Argument(help="Git revision before (default: the merge base with main)")]
    = None,
    head: Annotated[str | None, typer.Argument(help="Git revision after (default: the work tree)")] = None,
    journeys_dir: Annotated[Path, typer.Option("--journeys", help="The journeys directory, relative to the "
                                                                  "repository root")] = Path("journeys"),
    against: Annotated[str, typer.Option("--against", help="The branch BASE defaults to the merge base with")]
    = "origin/main",
) -> None:
    """Markdown for a pull request comment: which journeys changed, their graphs and the
    timelines of their scenarios, before and after."""
    from processes.review import ReviewError, review_markdown

    try:
        text = asyncio.run(review_markdown(Path.cwd(), journeys_dir, base, head, against=against))
    except ReviewError as err:
        errors.print(f"[red]error:[/red] {escape(str(err))}")
        raise typer.Exit(1) from None
    typer.echo(text, nl=False)


def register(app: typer.Typer) -> None:
    app.command("test")(test)
    app.command("review")(review)
