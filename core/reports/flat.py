"""A report as rows of (figure, value), for CSV: nested names joined with dots, list
items named by their own id (a version, a step key, a month, a series) rather than
their position, so a spreadsheet's lookups survive a new step or version."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

NAMES = ("version", "key", "name", "month", "series")


def rows(report: BaseModel) -> Iterator[tuple[str, Any]]:
    yield from _rows("", report.model_dump(mode="json"))


def _rows(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _rows(f"{prefix}.{key}" if prefix else str(key), item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            name = next((str(item[n]) for n in NAMES if isinstance(item, dict) and item.get(n) is not None),
                        str(index))
            yield from _rows(f"{prefix}[{name}]", item)
    else:
        yield prefix, value
