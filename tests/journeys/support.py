"""Helpers for the shipped-journey tests: the real journeys/ directory, moments in UTC,
and readers for what a run left behind (short links, coupons, points, segments)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from engine.simulate import _iso, parse_offset
from language.catalog import Catalog, load_catalog
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


def iso(moment: datetime) -> str:
    """A moment as timelines print it: whole seconds, UTC, with a Z."""
    return _iso(moment)


def after(start: datetime, offset: str) -> str:
    """The timeline moment `offset` (e.g. `8d2h`) after `start`."""
    return _iso(start + parse_offset(offset))


def sms(timeline: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry for entry in timeline["timeline"] if entry["action"] == "sms"]


def actions(timeline: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [entry for entry in timeline["timeline"] if entry["action"] == action]


def short_link(run: Any, step: str) -> str:
    """The tracked short link the step sent (one per step in these tests)."""
    with session_scope(run.sim.engine) as session:
        [link] = session.exec(select(Link).where(Link.step_id == step)).all()
    return LINK_BASE + link.code


def link_target(run: Any, text: str) -> str:
    """Where the (single) short link in a text leads."""
    [code] = _SHORT_LINK.findall(text)
    with session_scope(run.sim.engine) as session:
        link = session.get(Link, code)
        assert link is not None, f"no link {code}"
        return link.url


def coupons(run: Any, customer: str = "sim-customer") -> list[Coupon]:
    with session_scope(run.sim.engine) as session:
        return list(session.exec(select(Coupon).where(Coupon.customer_id == customer)).all())


def ledger(run: Any, customer: str = "sim-customer") -> list[PointsEntry]:
    with session_scope(run.sim.engine) as session:
        return list(session.exec(select(PointsEntry).where(PointsEntry.customer_id == customer)
                                 .order_by(col(PointsEntry.occurred_at))).all())


def segments(run: Any, customer: str = "sim-customer") -> list[str]:
    with session_scope(run.sim.engine) as session:
        return sorted(session.exec(select(SegmentMembership.segment)
                                   .where(SegmentMembership.customer_id == customer)).all())
