"""Authoring commands: `journeys validate`, `journeys schema`, `journeys graph`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from cli import output
from language.graph import mermaid
from language.problems import Problem
from language.schema import MODELS, schema_for
from language.validate import ValidationReport, validate_directory

DEFAULT_PATH = Path("journeys")
_STYLES = {"error": "bold red", "warning": "yellow"}


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
    app.command("schema")(schema)
    app.command("graph")(graph)


def default_config(paths: list[Path]) -> Path:
    """The directory of the first path (or the path itself if it is a directory)."""
    first = paths[0]
    return first if first.is_dir() else first.parent


def validate(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Journey files or directories (default: journeys/).", show_default=False)
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Directory with settings.yaml, segments.yaml, loyalty.yaml and "
            "templates/ (default: the directory of the first PATH).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the problems as JSON.")] = False,
) -> None:
    """Check journeys: every problem as file:line:column, then a summary. Exit 1 on errors."""
    paths = paths or [DEFAULT_PATH]
    report = validate_directory(config or default_config(paths), paths)
    if as_json:
        typer.echo(json.dumps(_as_json(report), indent=2))
    else:
        console = output.console()
        for problem in report.problems:
            console.print(_styled(problem))
        console.print(summary(report))
    if report.errors:
        raise typer.Exit(1)


def summary(report: ValidationReport) -> str:
    return (
        f"{len(report.catalog.journeys)} journeys valid, {len(report.errors)} errors, {len(report.warnings)} warnings"
    )


def _styled(problem: Problem) -> str:
    """The plain `file:line:column: severity: message (got: value)` line, severity coloured."""
    plain = escape(str(problem))
    marker = f": {problem.severity}: "
    style = _STYLES[problem.severity]
    return plain.replace(marker, f": [{style}]{problem.severity}[/{style}]: ", 1)


def _as_json(report: ValidationReport) -> dict:
    return {
        "journeys_valid": sorted(report.catalog.journeys),
        "errors": len(report.errors),
        "warnings": len(report.warnings),
        "problems": [p.as_dict() for p in report.problems],
    }


def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the schema to this file instead of stdout.")
    ] = None,
    kind: Annotated[str, typer.Option("--kind", help="Which file: " + ", ".join(MODELS) + ".")] = "journey",
) -> None:
    """Print the JSON Schema of journey files (or settings/segments/loyalty with --kind).

    Editors use it for completion and checking as you type. With VS Code's YAML
    extension (redhat.vscode-yaml), write the schema to a file:

        journeys schema --output journeys/.schema/journey.json

    then put this first line in each journey file:

        # yaml-language-server: $schema=.schema/journey.json

    or map it once in .vscode/settings.json:

        "yaml.schemas": {"journeys/.schema/journey.json": "journeys/*.yaml"}
    """
    if kind not in MODELS:
        raise typer.BadParameter(f"expected one of: {', '.join(MODELS)}", param_hint="--kind")
    text = json.dumps(schema_for(kind), indent=2) + "\n"  # type: ignore[arg-type]
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


def graph(
    file: Annotated[Path, typer.Argument(help="The journey file.")],
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Directory with settings.yaml, segments.yaml, loyalty.yaml and "
            "templates/ (default: the directory of FILE).",
        ),
    ] = None,
) -> None:
    """Print a Mermaid flowchart of a journey (paste it in a ```mermaid block)."""
    report = validate_directory(config or file.parent, [file])
    journey = next(iter(report.catalog.journeys.values()), None)
    if journey is None:
        err = output.console(stderr=True)
        for problem in report.errors:
            err.print(_styled(problem))
        err.print(f"cannot draw {file}: fix the errors above first")
        raise typer.Exit(1)
    typer.echo(mermaid(journey.journey), nl=False)
