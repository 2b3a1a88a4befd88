"""Durations as marketers write them: ``30d``, ``4h``, ``90m``, ``1s``, ``2w``.

Kept free of third-party imports: workflow code uses it inside the sandbox.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

DURATION_PATTERN = r"^-?\d+(s|m|h|d|w)$"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION_RE = re.compile(DURATION_PATTERN)
_TIME_OF_DAY_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
# The longest duration anywhere (either way, for a date trigger's negative offset): a
# wait of 3,000,000 days would overflow the workflow's clock and fail every task.
MAX_DURATION = timedelta(days=3650)
TOO_LONG = "too long: a duration is at most 3650d (about 10 years)"


def parse_duration(value: Any) -> timedelta:
    """``"30d"`` -> 30 days. Raises ValueError with the accepted forms."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not (math.isfinite(value) and abs(value) <= MAX_DURATION.total_seconds()):
            raise ValueError(TOO_LONG)
        return timedelta(seconds=value)
    if not isinstance(value, str) or not _DURATION_RE.match(value.strip()):
        raise ValueError(
            f"{_shown(value)} is not a duration: write a whole number and a unit, "
            "s (seconds), m (minutes), h (hours), d (days) or w (weeks), e.g. 30d or 4h"
        )
    text = value.strip()
    digits = text[:-1].lstrip("-")
    # Checked on the digits first: a thousand-digit amount never becomes an int.
    if len(digits) > 12 or int(digits) * _UNITS[text[-1]] > MAX_DURATION.total_seconds():
        raise ValueError(TOO_LONG)
    return timedelta(seconds=int(text[:-1]) * _UNITS[text[-1]])


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def format_duration(value: timedelta) -> str:
    """The shortest exact form: 86400s -> ``1d``."""
    seconds = int(value.total_seconds())
    for unit in ("w", "d", "h", "m"):
        size = _UNITS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_time_of_day(value: Any) -> str:
    if not isinstance(value, str) or not _TIME_OF_DAY_RE.match(value.strip()):
        raise ValueError(f"{value!r} is not a time of day: write HH:MM on a 24-hour clock, e.g. 09:00")
    return value.strip()


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "examples": ["30d", "4h"]}),
]

TimeOfDay = Annotated[
    str,
    BeforeValidator(parse_time_of_day),
    WithJsonSchema({"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d$", "examples": ["09:00"]}),
]
