"""When one rule lets a marketing text go: the shop's quiet hours, or a region's rule
(its quiet hours, a weekday's own, whole quiet days), read on the recipient's local
calendar day. A window across midnight, 21:00-08:00, is quiet from 00:00 to 08:00 and
from 21:00 to 24:00 of every day; a weekday's entry replaces the hours of that day only
(Texas: Sunday quiet until 12:00, then from 21:00)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from language.config import WEEKDAYS, QuietHours, RegionRule

SHOP = "shop"  # the source of the shop's own window
_MIDNIGHT = time(0, 0)


@dataclass(frozen=True)
class Window:
    source: str  # "shop" or the region code whose rule this is
    quiet_hours: QuietHours | None = None
    weekday_quiet_hours: Mapping[int, QuietHours] = field(default_factory=dict)  # 0 = Monday
    quiet_days: frozenset[int] = frozenset()

    @classmethod
    def shop(cls, quiet: QuietHours) -> Window:
        return cls(SHOP, quiet)

    @classmethod
    def of(cls, region: str, rule: RegionRule) -> Window:
        return cls(region, rule.quiet_hours,
                   {WEEKDAYS.index(day): hours for day, hours in rule.weekday_quiet_hours.items()},
                   frozenset(WEEKDAYS.index(day) for day in rule.quiet_days))

    @property
    def restricts(self) -> bool:
        return bool(self.quiet_hours or self.weekday_quiet_hours or self.quiet_days)

    def quiet_end(self, at: datetime, zone: ZoneInfo) -> datetime | None:
        """The end of the quiet time ``at`` falls in, in ``zone``'s local time, or None."""
        moment = at.astimezone(zone)
        end = None
        for _ in range(8):  # a quiet run spans at most the days of a week (not all seven)
            stop = next((stop for start, stop in self._quiet_on(moment.date(), zone) if start <= moment < stop), None)
            if stop is None:
                return end
            end = moment = stop
        return end

    def _quiet_on(self, day: date, zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
        """The quiet intervals of one local calendar day, as local times."""
        midnight = datetime.combine(day, _MIDNIGHT, tzinfo=zone)
        next_midnight = datetime.combine(day + timedelta(days=1), _MIDNIGHT, tzinfo=zone)
        if day.weekday() in self.quiet_days:
            return [(midnight, next_midnight)]
        quiet = self.weekday_quiet_hours.get(day.weekday(), self.quiet_hours)
        if quiet is None or quiet.start == quiet.end:
            return []
        start, end = _at(day, quiet.start, zone), _at(day, quiet.end, zone)
        if start < end:  # within the day, e.g. 12:00-14:00
            return [(start, end)]
        return [(midnight, end), (start, next_midnight)]  # across midnight, e.g. 21:00-08:00


def _at(day: date, clock: str, zone: ZoneInfo) -> datetime:
    hours, minutes = (int(part) for part in clock.split(":"))
    return datetime.combine(day, time(hours, minutes), tzinfo=zone)
