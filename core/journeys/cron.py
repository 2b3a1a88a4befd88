"""Five-field cron expressions (minute hour day-of-month month day-of-week), matched
against a local wall-clock time. Temporal runs the schedules; this answers "is this
customer's local time one the journey's cron names?" for `timezone: customer`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))  # weekday 7 is Sunday, like 0
_NAMES = ("minute", "hour", "day of month", "month", "day of week")


class CronError(ValueError):
    pass


_MONTHS = {m: i for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}


def _named(text: str, names: dict[str, int]) -> str:
    """Month and day names (jan, fri: any case) as numbers."""
    for name, number in names.items():
        text = text.lower().replace(name, str(number))
    return text


def _field(text: str, low: int, high: int, name: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            start, end = low, high
        elif "-" in base:
            start, end = (int(v) for v in base.split("-", 1))
        else:
            start = end = int(base)
        if step < 1 or start < low or end > high or start > end:
            raise CronError(f"{name} {part!r} is out of range {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday, as in cron
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, expression: str) -> Cron:
        parts = expression.split()
        if len(parts) != 5:
            raise CronError(f"{expression!r}: a cron expression has 5 fields (minute hour day month weekday)")
        try:
            parts[3], parts[4] = _named(parts[3], _MONTHS), _named(parts[4], _DAYS)
            fields = [_field(p, *_RANGES[i], _NAMES[i]) for i, p in enumerate(parts)]
        except ValueError as err:
            raise CronError(f"{expression!r}: {err}") from None
        minutes, hours, days, months, weekdays = fields
        return cls(minutes, hours, days, months, frozenset(day % 7 for day in weekdays),
                   any_day=parts[2] == "*", any_weekday=parts[4] == "*")

    def matches(self, local: datetime) -> bool:
        if local.minute not in self.minutes or local.hour not in self.hours or local.month not in self.months:
            return False
        day = local.day in self.days
        weekday = (local.isoweekday() % 7) in self.weekdays
        # Cron's rule: when both day fields are restricted, either may match.
        if self.any_day or self.any_weekday:
            return day and weekday
        return day or weekday

    def utc_minutes(self) -> list[int]:
        """The UTC minutes of the hour at which some time zone's local time can match:
        zones are offset by whole quarters of an hour from UTC."""
        return sorted({(m + shift) % 60 for m in self.minutes for shift in (0, 15, 30, 45)})
