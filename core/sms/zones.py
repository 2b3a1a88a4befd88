"""Whose clock quiet hours follow: the customer's time zone, else the zones of the number,
else the shop's default. A number may map to several zones (an area code across a zone
line, a country-level fallback): a text may go only when it is outside quiet hours in all
of them, and allowed by every rule that applies (the shop's window, each region's)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.sms import rules
from core.sms.windows import Window
from language.config import QuietHours
from messaging.phone import time_zones_of
from store.tables import Customer

# Windows follow one another at most a few times before a common free moment, when there
# is one; past this many hops the zones share none (a country-level fallback such as all
# of +1, Guam to Samoa) and the fallback zone alone decides.
_MAX_HOPS = 16


@dataclass(frozen=True)
class SendZones:
    zones: tuple[ZoneInfo, ...]
    rule: str  # customer_timezone | number | default_timezone
    fallback: ZoneInfo | None = None  # when the zones share no free moment; else the first

    @property
    def name(self) -> str:
        return ",".join(zone.key for zone in self.zones)


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def send_zones(customer: Customer, default_timezone: str) -> SendZones:
    if zone := _zone(customer.timezone):
        return SendZones((zone,), "customer_timezone")
    if customer.phone:
        found = tuple(zone for zone in map(_zone, time_zones_of(customer.phone)) if zone is not None)
        default = _zone(default_timezone)
        if found:  # the shop's own zone, when the number may be there, else the first
            return SendZones(found, "number", default if default in found else found[0])
    return SendZones((_zone(default_timezone) or ZoneInfo("UTC"),), "default_timezone")


def quiet_hours(at: datetime, zones: SendZones, quiet: QuietHours,
                regions: Sequence[Window] = ()) -> rules.Verdict:
    """GO when ``at`` is allowed by the shop's quiet hours and every region window in every
    zone, else a deferral to the earliest moment that is.

    When the zones share no such moment, the fallback zone alone decides; when even there
    the shop's window and the regions' never meet (a shop that sends only after 20:00 to
    Florida), the regions' rules decide: the law before the shop's preference. Past that,
    the shop's window in the fallback zone, as before there were region rules."""
    shop = Window.shop(quiet)
    restricting = [window for window in regions if window.restricts]
    fallback = zones.fallback or zones.zones[0]
    attempts: list[tuple[Sequence[ZoneInfo], Sequence[Window]]] = [
        (zones.zones, [shop, *restricting]), ((fallback,), [shop, *restricting])]
    if restricting:
        attempts.append(((fallback,), restricting))
    attempts.append(((fallback,), [shop]))
    for attempt_zones, windows in attempts:
        moment = _first_allowed(at, attempt_zones, windows)
        if moment is not None:
            return rules.GO if moment == at else rules.Verdict(defer_until=moment, defer_reason="quiet_hours")
    return rules.quiet_hours(at, fallback, quiet)  # unreachable: one window in one zone always ends


def _first_allowed(at: datetime, zones: Sequence[ZoneInfo], windows: Sequence[Window]) -> datetime | None:
    """The first moment from ``at`` on that no window keeps quiet in any zone; None when
    none turns up within the hops."""
    moment = at
    for _ in range(_MAX_HOPS):
        ends = [end for zone in zones for window in windows if (end := window.quiet_end(moment, zone))]
        if not ends:
            return moment
        moment = max(ends)  # before it, some window is still quiet in some zone
    return None
