"""Who is due when a time-based journey's schedule fires, and entering them.

`schedule` journeys (a broadcast to a segment) and `date` journeys (a birthday at
10:00 local) run on Temporal Schedules; at each firing, the customers whose local
time is the one the journey names are selected page by page and entered. Every entry
carries an *occasion* (the local date and time it is for): a customer is entered at
most once per occasion, however often the firing runs (retries, restarts, catch-up).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy import and_, extract, func, or_
from sqlmodel import Session, col, select

from core.journeys.cron import Cron
from language.catalog import Catalog
from language.models import DateTrigger, Journey, ScheduleTrigger
from store.db import Database, session_scope
from store.tables import Customer, SegmentMembership

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Due:
    customer_id: str
    occasion: str


def _effective_zone(default_timezone: str) -> Any:
    return func.coalesce(Customer.timezone, default_timezone)


def _local_minute(moment: datetime, zone: str) -> datetime:
    return moment.astimezone(ZoneInfo(zone)).replace(second=0, microsecond=0)


def due_customers(db: Database, catalog: Catalog, journey: Journey, moment: datetime, *, after: str | None = None,
                  limit: int = 500) -> list[Due]:
    """One page (by customer id, after ``after``) of the customers due at ``moment``."""
    moment = moment.astimezone(UTC)
    with session_scope(db, readonly=True) as session:
        if isinstance(journey.trigger, ScheduleTrigger):
            return _due_for_schedule(session, catalog, journey.trigger, moment, after, limit)
        if isinstance(journey.trigger, DateTrigger):
            return _due_for_date(session, catalog, journey.trigger, moment, after, limit)
    raise ValueError(f"journey {journey.id!r} is not time-triggered")


def _zones_now(session: Session, default_timezone: str, condition: Any) -> list[str]:
    """The customers' time zones; one that is not a known zone is skipped (and logged),
    never allowed to stop a firing for everyone else."""
    zone = _effective_zone(default_timezone)
    zones = []
    for name in session.exec(select(zone).where(condition).distinct()).all():
        if name in available_timezones():
            zones.append(name)
        elif name:
            log.warning("customers with unknown time zone %r are left out of time-based journeys", name)
    return zones


def _page(session: Session, condition: Any, zones: dict[str, str], default_timezone: str, after: str | None,
          limit: int) -> list[Due]:
    if not zones:
        return []
    zone = _effective_zone(default_timezone)
    query = select(Customer.id, zone).where(condition, zone.in_(list(zones)))
    if after is not None:
        query = query.where(Customer.id > after)
    rows = session.exec(query.order_by(Customer.id).limit(limit)).all()
    return [Due(customer_id, zones[customer_zone]) for customer_id, customer_zone in rows]


def _due_for_schedule(session: Session, catalog: Catalog, trigger: ScheduleTrigger, moment: datetime,
                      after: str | None, limit: int) -> list[Due]:
    spec = trigger.schedule
    default = catalog.settings.default_timezone
    member = col(Customer.id).in_(select(SegmentMembership.customer_id)
                                  .where(SegmentMembership.segment == spec.segment))
    if spec.timezone != "customer":
        # Temporal fired this at the cron time in the journey's zone: everyone is due.
        local = _local_minute(moment, spec.timezone)
        occasion = f"schedule:{local:%Y-%m-%dT%H:%M}"
        query = select(Customer.id).where(member)
        if after is not None:
            query = query.where(Customer.id > after)
        return [Due(cid, occasion) for cid in session.exec(query.order_by(Customer.id).limit(limit)).all()]
    cron = Cron.parse(spec.cron)
    zones = {}
    for zone in _zones_now(session, default, member):
        local = _local_minute(moment, zone)
        if cron.matches(local):
            zones[zone] = f"schedule:{local:%Y-%m-%dT%H:%M}"
    return _page(session, member, zones, default, after, limit)


def anniversary_dates(local_day: date, offset: timedelta) -> list[date]:
    """The dates (year ignored) whose anniversary, moved by ``offset``, is ``local_day``.
    A 29 February is celebrated on 28 February in years without one."""
    target = local_day - offset
    dates = [target]
    if target.month == 2 and target.day == 28:
        try:
            date(target.year, 2, 29)
        except ValueError:
            dates.append(date(2000, 2, 29))
    return dates


def _date_condition(attribute: str, days: list[date]) -> Any:
    if attribute == "birthday":
        column = col(Customer.birthday)
        return or_(*(and_(extract("month", column) == d.month, extract("day", column) == d.day) for d in days))
    name = attribute.removeprefix("attributes.")
    value = Customer.attributes[name].as_string()
    return or_(*(value.like(f"%-{d.month:02d}-{d.day:02d}%") for d in days))


def _due_for_date(session: Session, catalog: Catalog, trigger: DateTrigger, moment: datetime, after: str | None,
                  limit: int) -> list[Due]:
    spec = trigger.date
    default = catalog.settings.default_timezone
    hour, minute = (int(part) for part in spec.at.split(":"))
    conditions = []
    zones = {}
    for zone in _zones_now(session, default, _has_date(spec.attribute)):
        local = _local_minute(moment, zone)
        if (local.hour, local.minute) != (hour, minute):
            continue
        days = anniversary_dates(local.date(), spec.offset)
        zones[zone] = f"date:{local.date().isoformat()}"
        conditions.append(and_(_effective_zone(default) == zone, _date_condition(spec.attribute, days)))
    if not conditions:
        return []
    return _page(session, or_(*conditions), zones, default, after, limit)


def _has_date(attribute: str) -> Any:
    if attribute == "birthday":
        return col(Customer.birthday).is_not(None)
    return Customer.attributes[attribute.removeprefix("attributes.")].as_string().is_not(None)
