"""Helpers for the shipped-journey tests: the real journeys/ directory, moments in UTC,
and readers for what a run left behind (short links, coupons, points, segments)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from language.catalog import Catalog
from language.validate import load_catalog
from processes.simulate import _iso, parse_offset
from store.db import session_scope
from store.tables import Coupon, Link, PointsEntry, SegmentMembership

SHIPPED = Path(__file__).resolve().parents[2] / "journeys"
LINK_BASE = "http://localhost:8000/l/"
_SHORT_LINK = re.compile(re.escape(LINK_BASE) + r"(\w+)")


@cache
def shipped() -> Catalog:
    """The journeys the product ships, with their settings, segments, loyalty rules and templates."""
    return load_catalog(SHIPPED)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# The time-skipping server's clock also runs while real work is done (activities,
# database writes), so a moment after several steps can be a second or two late, more
# on a loaded machine. Nothing in these journeys depends on seconds.
SLACK = timedelta(seconds=15)


class Around:
    """Equal to a timeline moment (ISO string or datetime) within SLACK of `moment`."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            other = datetime.fromisoformat(other.replace("Z", "+00:00"))
        if not isinstance(other, datetime):
            return NotImplemented
        return abs(other - self.moment) <= SLACK

    def __hash__(self) -> int:
        return hash(self.moment)

    def __repr__(self) -> str:
        return f"~{_iso(self.moment)}"


def around(moment: str | datetime) -> Around:
    """`around("2026-03-03T13:00:00Z")`: that moment, give or take SLACK."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return Around(moment)


def after(start: datetime, offset: str) -> Around:
    """The timeline moment `offset` (e.g. `8d2h`) after `start`, give or take SLACK."""
    return Around(start + parse_offset(offset))


def sms(timeline: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry for entry in timeline["timeline"] if entry["action"] == "sms"]


def actions(timeline: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [entry for entry in timeline["timeline"] if entry["action"] == action]


def short_link(run: Any, step: str) -> str:
    """The tracked short link the step sent (one per step in these tests)."""
    with session_scope(run.sim.db) as session:
        [link] = session.exec(select(Link).where(Link.step_id == step)).all()
    return LINK_BASE + link.code


def link_target(run: Any, text: str) -> str:
    """Where the (single) short link in a text leads."""
    [code] = _SHORT_LINK.findall(text)
    with session_scope(run.sim.db) as session:
        link = session.get(Link, code)
        assert link is not None, f"no link {code}"
        return link.url


def coupons(run: Any, customer: str = "sim-customer") -> list[Coupon]:
    with session_scope(run.sim.db) as session:
        return list(session.exec(select(Coupon).where(Coupon.customer_id == customer)).all())


def ledger(run: Any, customer: str = "sim-customer") -> list[PointsEntry]:
    with session_scope(run.sim.db) as session:
        return list(session.exec(select(PointsEntry).where(PointsEntry.customer_id == customer)
                                 .order_by(col(PointsEntry.occurred_at))).all())


def segments(run: Any, customer: str = "sim-customer", *, rules: bool = False) -> list[str]:
    """The customer's manual segments (what journeys change); with ``rules``, every segment
    (rule segments move at once with the customer's events: immediate membership)."""
    manual = {name for name, spec in run.sim.catalog.segments.segments.items() if getattr(spec, "manual", False)}
    with session_scope(run.sim.db) as session:
        return sorted(name for name in session.exec(select(SegmentMembership.segment)
                                                    .where(SegmentMembership.customer_id == customer)).all()
                      if rules or name in manual)
