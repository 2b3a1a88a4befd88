"""Validate a journeys directory: the configuration files, the templates and every journey.

``validate_directory`` reports every problem it finds (not just the first) and returns a
catalog holding only the journeys without errors. ``load_catalog`` builds on it and
refuses a directory with any error in it: it is the only way journeys go live (the
worker, the CLI and the API all call it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from language.catalog import Catalog, PinnedJourney
from language.check_journey import check_journey
from language.configuration import CONFIG_FILES, load_configuration
from language.loader import load_file
from language.problems import Problem, Severity

__all__ = ["InvalidJourneys", "Problem", "Severity", "ValidationReport", "journey_files", "load_catalog",
           "validate_directory"]

JOURNEY_SUFFIXES = (".yaml", ".yml")


@dataclass
class ValidationReport:
    catalog: Catalog
    problems: list[Problem] = field(default_factory=list)
    journeys_checked: int = 0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


def validate_directory(config_dir: Path, journey_paths: list[Path] | None = None) -> ValidationReport:
    """Check ``config_dir``'s configuration and the journeys (default: every journey in it)."""
    config_dir = Path(config_dir)
    config = load_configuration(config_dir)
    catalog = Catalog(
        config_dir=config_dir,
        settings=config.settings,
        segments=config.segments,
        loyalty=config.loyalty,
        templates=config.templates,
    )
    report = ValidationReport(catalog=catalog, problems=list(config.problems))
    files, missing = journey_files(config_dir, journey_paths)
    report.problems += missing
    first_file: dict[str, str] = {}
    for path in files:
        doc = load_file(path)
        journey, problems = check_journey(doc, path.stem, config)
        journey_id = doc.get(("id",))
        if isinstance(journey_id, str):
            if journey_id in first_file and first_file[journey_id] != doc.file:
                problems.append(
                    doc.problem(
                        doc.position(("id",)),
                        f"duplicate journey id '{journey_id}' (also in {first_file[journey_id]})",
                        journey_id,
                    )
                )
                journey = None
            first_file.setdefault(journey_id, doc.file)
        report.problems += problems
        report.journeys_checked += 1
        if journey is not None:
            catalog.journeys[journey.id] = PinnedJourney.pin(journey)
    report.problems = _in_reading_order(report.problems)
    return report


def _in_reading_order(problems: list[Problem]) -> list[Problem]:
    """Files in the order they were checked; each file's problems by line and column."""
    order: dict[str, int] = {}
    for problem in problems:
        order.setdefault(problem.file, len(order))
    return sorted(problems, key=lambda p: (order[p.file], p.line, p.column))


def journey_files(config_dir: Path, journey_paths: list[Path] | None) -> tuple[list[Path], list[Problem]]:
    """The journey files to check, and a problem for each given path that does not exist."""
    found: list[Path] = []
    problems: list[Problem] = []
    for path in [config_dir] if journey_paths is None else [Path(p) for p in journey_paths]:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if _is_journey(p))
        elif path.is_file():
            if path.name not in CONFIG_FILES:
                found.append(path)
        else:
            problems.append(Problem(str(path), 1, 1, "error", "no such file or directory"))
    unique = list(dict.fromkeys(p.resolve() for p in found))
    by_resolved = {p.resolve(): p for p in found}
    return [by_resolved[p] for p in unique], problems


def _is_journey(path: Path) -> bool:
    return path.is_file() and path.suffix in JOURNEY_SUFFIXES and path.name not in CONFIG_FILES


class InvalidJourneys(Exception):
    """Raised when a journeys directory has errors; ``problems`` lists each one."""

    def __init__(self, problems: list) -> None:
        self.problems = problems
        lines = "\n".join(str(p) for p in problems[:20])
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} problem(s) in the journeys:\n{lines}{more}")


def load_catalog(config_dir: str | Path, journey_paths: list[Path] | None = None) -> Catalog:
    """Load and validate a journeys directory; raise InvalidJourneys on any error."""
    report = validate_directory(Path(config_dir), journey_paths)
    if report.errors:
        raise InvalidJourneys(report.errors)
    return report.catalog
