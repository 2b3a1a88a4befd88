"""Whose clock quiet hours follow: the customer's time zone, else the zones of the number,
else the shop's default. A number may map to several zones (an area code across a zone
line, a country-level fallback): a text may go only when it is outside quiet hours in all
of them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.sms import rules
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


def quiet_hours(at: datetime, zones: SendZones, quiet: QuietHours) -> rules.Verdict:
    """GO when ``at`` is outside quiet hours in every zone, else a deferral to the earliest
    moment that is outside them in every zone."""
    if len(zones.zones) == 1:
        return rules.quiet_hours(at, zones.zones[0], quiet)
    moment = at
    for _ in range(_MAX_HOPS):
        ends = [end for zone in zones.zones if (end := rules.quiet_hours_end(moment, zone, quiet))]
        if not ends:
            return rules.GO if moment == at else rules.Verdict(defer_until=moment, defer_reason="quiet_hours")
        moment = max(ends)  # before it, some zone is still quiet
    return rules.quiet_hours(at, zones.fallback or zones.zones[0], quiet)
