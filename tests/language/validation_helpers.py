"""Assertion helpers for the language tests."""

from __future__ import annotations

from language.problems import Problem
from language.validate import ValidationReport


def where(problems: list[Problem]) -> list[tuple[int, int, str]]:
    """(line, column, message) of each problem, for exact assertions."""
    return [(p.line, p.column, p.message) for p in problems]


def only(report: ValidationReport, fragment: str) -> Problem:
    """The one problem whose message contains ``fragment``."""
    found = [p for p in report.problems if fragment in p.message]
    assert len(found) == 1, f"expected one problem with {fragment!r}, got:\n" + "\n".join(
        str(p) for p in report.problems
    )
    return found[0]
