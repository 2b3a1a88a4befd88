"""Refreshing rule segments on SQLite and PostgreSQL: memberships follow the rules,
the differences become segment_entered / segment_exited events (once each, even when a
refresh is retried or two run at once), manual segments change only on request."""

from __future__ import annotations

import asyncio
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import select

from core.event import EventIn, RouteResult
from core.events.router import EventRouter
from core.segments import refresh as segments
from language.catalog import Catalog
from language.validate import load_catalog
from store.db import session_scope
from store.tables import Customer, Decision, Event, SegmentMembership, SegmentRefresh
from tests.segments.population import NOW, runtime_contexts, runtime_members, seed

SEGMENTS = """
refresh: 1h
segments:
  lapsed_30d: {rule: "customer.days_since_last_purchase >= 30"}
  inactive_6m: {rule: "customer.days_since_last_purchase >= 180"}
  big_spenders: {rule: "customer.total_spent >= 10 * average.total_spent"}
  prospects: {rule: "customer.orders_count == 0"}
  vip: {rule: "customer.tier in ['gold', 'platinum']"}
  vip_lapsed: {rule: "'vip' in customer.segments and 'lapsed_30d' in customer.segments"}
  scored: {rule: "customer.attributes.score >= 3"}
  active: {manual: true}
"""
RULES = {"lapsed_30d", "inactive_6m", "big_spenders", "prospects", "vip", "vip_lapsed", "scored"}


def catalog_with(root: Path, segments_yaml: str = SEGMENTS) -> Catalog:
    root.mkdir(parents=True, exist_ok=True)
    (root / "settings.yaml").write_text("brand: Test\n")
    (root / "segments.yaml").write_text(textwrap.dedent(segments_yaml))
    return load_catalog(root)


def router_for(catalog: Catalog, db: Any) -> EventRouter:
    # No journeys: routing stores the events and starts nothing, so no Temporal is needed.
    return EventRouter(catalog, db, client=None)  # type: ignore[arg-type]


def members(db: Any) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    with session_scope(db, readonly=True) as session:
        for row in session.exec(select(SegmentMembership)):
            found.setdefault(row.segment, set()).add(row.customer_id)
    return found


def events(db: Any, kind: str) -> list[Event]:
    with session_scope(db, readonly=True) as session:
        return list(session.exec(select(Event).where(Event.type == kind)).all())


def announced(db: Any, kind: str) -> dict[str, list[str]]:
    """segment -> customers, one entry per event (so a duplicate shows)."""
    found: dict[str, list[str]] = {}
    for event in events(db, kind):
        found.setdefault(event.properties["segment"], []).append(event.customer_id)
    return {name: sorted(ids) for name, ids in found.items()}


def expected_members(db: Any, catalog: Catalog, at: Any) -> dict[str, set[str]]:
    with runtime_contexts(db, at) as contexts:
        return {name: runtime_members(spec.rule, contexts)[0] for name, spec in catalog.segments.segments.items()
                if hasattr(spec, "rule")}


async def test_refresh_stores_what_the_rules_select_and_announces_the_difference(db, tmp_path: Path) -> None:
    catalog = catalog_with(tmp_path / "journeys")
    seed(db, 7, 250, segments=())
    router = router_for(catalog, db)
    first = await segments.refresh(catalog, db, router, at=NOW)

    # vip_lapsed reads vip and lapsed_30d: refreshed after both, so it sees this refresh's state
    order = [r.segment for r in first.segments]
    assert order.index("vip_lapsed") > max(order.index("vip"), order.index("lapsed_30d"))
    expected = expected_members(db, catalog, NOW)
    now_members = members(db)
    for name in RULES - {"vip_lapsed"}:
        assert now_members.get(name, set()) == expected[name], name
    assert now_members.get("vip_lapsed", set()) == now_members["vip"] & now_members["lapsed_30d"]
    assert {k: set(v) for k, v in announced(db, "segment_entered").items()} == {
        k: v for k, v in now_members.items() if v}
    assert events(db, "segment_exited") == []
    sizes = {r.segment: (r.entered, r.exited, r.size) for r in first.segments}
    assert sizes == {name: (len(now_members.get(name, ())), 0, len(now_members.get(name, ()))) for name in RULES}
    assert first.events == sum(len(v) for v in now_members.values()) and first.duplicates == 0
    with session_scope(db, readonly=True) as session:
        recorded = {r.segment: (r.size, r.refreshed_at) for r in session.exec(select(SegmentRefresh))}
        assert session.exec(select(Decision)).all() == []  # the outbox is empty once routed
    assert recorded == {name: (len(now_members.get(name, ())), NOW) for name in RULES}

    # Nothing changed: nothing to announce.
    again = await segments.refresh(catalog, db, router, at=NOW)
    assert again.events == 0 and all(r.entered == r.exited == 0 for r in again.segments)

    # 40 days on, after a purchase by a lapsed customer and a tier change: the exact differences.
    later = NOW + timedelta(days=40)
    back = sorted(now_members["lapsed_30d"])[0]
    demoted = sorted(now_members["vip"])[0]
    with session_scope(db) as session:
        session.execute(update(Customer).where(Customer.id == back).values(last_purchase_at=later, orders_count=1))
        session.execute(update(Customer).where(Customer.id == demoted).values(tier="silver"))
    before = members(db)
    third = await segments.refresh(catalog, db, router, at=later)
    after = members(db)
    assert after["lapsed_30d"] == expected_members(db, catalog, later)["lapsed_30d"]
    assert back not in after["lapsed_30d"] and demoted not in after["vip"]
    entered = {name: after.get(name, set()) - before.get(name, set()) for name in RULES}
    exited = {name: before.get(name, set()) - after.get(name, set()) for name in RULES}
    assert {r.segment: (r.entered, r.exited) for r in third.segments} == {
        name: (len(entered[name]), len(exited[name])) for name in RULES}
    assert back in announced(db, "segment_exited")["lapsed_30d"]
    assert demoted in announced(db, "segment_exited")["vip"]
    assert any(entered.values())
    for name in RULES:  # each change announced exactly once over the three refreshes
        assert announced(db, "segment_exited").get(name, []) == sorted(
            c for c in exited[name]), name
    assert third.events == sum(len(v) for v in entered.values()) + sum(len(v) for v in exited.values())


async def test_a_refresh_can_be_limited_to_some_segments(db, tmp_path: Path) -> None:
    catalog = catalog_with(tmp_path / "journeys")
    seed(db, 8, 60, segments=())
    report = await segments.refresh(catalog, db, router_for(catalog, db), at=NOW, segments=["vip"])
    assert [r.segment for r in report.segments] == ["vip"] and set(members(db)) <= {"vip"}
    with pytest.raises(segments.SegmentError, match="manual segment"):
        await segments.refresh(catalog, db, router_for(catalog, db), segments=["active"])
    with pytest.raises(segments.SegmentError, match="no segment 'nope'"):
        await segments.refresh(catalog, db, router_for(catalog, db), segments=["nope"])


async def test_a_silent_backfill_changes_memberships_without_events(db, tmp_path: Path) -> None:
    catalog = catalog_with(tmp_path / "journeys")
    seed(db, 9, 80, segments=())
    report = await segments.refresh(catalog, db, None, at=NOW, announce=False)
    assert report.events == 0 and events(db, "segment_entered") == []
    assert members(db)["prospects"] == expected_members(db, catalog, NOW)["prospects"]


class Flaky:
    """A router that fails after ``fail_after`` routes: a worker dying mid-refresh."""

    def __init__(self, router: EventRouter, fail_after: int) -> None:
        self.router = router
        self.left = fail_after
        self.db = router.db

    async def route(self, event: EventIn, **kwargs: Any) -> RouteResult:
        if self.left <= 0:
            raise ConnectionError("worker lost")
        self.left -= 1
        return await self.router.route(event, **kwargs)


async def test_a_retried_refresh_announces_every_change_exactly_once(db, tmp_path: Path) -> None:
    catalog = catalog_with(tmp_path / "journeys")
    seed(db, 10, 200, segments=())
    router = router_for(catalog, db)
    with pytest.raises(ConnectionError):
        await segments.refresh(catalog, db, Flaky(router, 37), at=NOW, refresh_id="run-1",  # type: ignore[arg-type]
                               batch_size=16)
    assert len(events(db, "segment_entered")) == 37  # the routes under way finished; no new one began
    with session_scope(db, readonly=True) as session:
        assert session.exec(select(Decision)).all() != []  # the rest waits in the outbox
    retry = await segments.refresh(catalog, db, router, at=NOW, refresh_id="run-1", batch_size=16)
    assert retry.duplicates == 37 - 2 * 16  # the half-routed third batch went again: counted once
    expected = members(db)
    assert {k: set(v) for k, v in announced(db, "segment_entered").items()} == {k: v for k, v in expected.items()}
    assert all(len(ids) == len(set(ids)) for ids in announced(db, "segment_entered").values())
    with session_scope(db, readonly=True) as session:
        assert session.exec(select(Decision)).all() == []


async def test_a_later_refresh_routes_what_a_dead_one_left(db, tmp_path: Path) -> None:
    catalog = catalog_with(tmp_path / "journeys")
    seed(db, 11, 120, segments=())
    router = router_for(catalog, db)
    with pytest.raises(ConnectionError):
        await segments.refresh(catalog, db, Flaky(router, 5), at=NOW, refresh_id="died")  # type: ignore[arg-type]
    # Too recent: maybe still running somewhere. A new refresh leaves its outbox alone.
    await segments.refresh(catalog, db, router, at=NOW, refresh_id="next")
    unannounced = {k: v - set(announced(db, "segment_entered").get(k, [])) for k, v in members(db).items()}
    assert any(unannounced.values())  # the dead refresh's changes, applied but not yet announced
    with session_scope(db) as session:
        for row in session.exec(select(Decision)):
            row.decided_at = row.decided_at - segments.OUTBOX_STALE - timedelta(minutes=1)
            session.add(row)
    await segments.refresh(catalog, db, router, at=NOW, refresh_id="after")
    assert {k: set(v) for k, v in announced(db, "segment_entered").items()} == members(db)
    assert all(len(ids) == len(set(ids)) for ids in announced(db, "segment_entered").values())


async def test_two_refreshes_at_once_announce_each_change_once(db, tmp_path: Path) -> None:
    catalog = catalog_with(tmp_path / "journeys")
    seed(db, 12, 300, segments=())
    router = router_for(catalog, db)
    await asyncio.gather(*(segments.refresh(catalog, db, router, at=NOW, refresh_id=f"r{i}", batch_size=25)
                           for i in range(3)))
    entered = announced(db, "segment_entered")
    assert {k: set(v) for k, v in entered.items()} == members(db)
    assert all(len(ids) == len(set(ids)) for ids in entered.values())


async def test_members_whose_customer_was_erased_leave_without_an_event(db, tmp_path: Path) -> None:
    catalog = catalog_with(tmp_path / "journeys")
    with session_scope(db) as session:
        session.add(SegmentMembership(customer_id="erased", segment="prospects", entered_at=NOW))
        session.add(Customer(id="kept", orders_count=0, created_at=NOW, updated_at=NOW))
        session.add(SegmentMembership(customer_id="kept", segment="prospects", entered_at=NOW))
    report = await segments.refresh(catalog, db, router_for(catalog, db), at=NOW)
    assert members(db).get("prospects") == {"kept"}
    assert [r.exited for r in report.segments if r.segment == "prospects"] == [1]
    with session_scope(db, readonly=True) as session:
        assert session.get(Customer, "erased") is None  # not brought back by an event
    assert events(db, "segment_exited") == []


async def test_manual_changes_are_announced_and_a_retry_repeats_nothing(db, tmp_path: Path) -> None:
    catalog = catalog_with(tmp_path / "journeys")
    with session_scope(db) as session:
        session.add(Customer(id="c1", created_at=NOW, updated_at=NOW))
    router = router_for(catalog, db)
    change = await segments.change_memberships(router, "c1", add=["active", "active"], remove=["sunset"], at=NOW,
                                               key="run1:step")
    assert (change.added, change.removed) == (["active"], [])
    again = await segments.change_memberships(router, "c1", add=["active"], at=NOW, key="run1:step")
    assert again == change  # a retried step: the first answer, the same event (routed once)
    assert [e.id for e in events(db, "segment_entered")] == ["run1:step:in:active"]
    removed = await segments.change_memberships(router, "c1", remove=["active"], at=NOW, key="api:1",
                                                remember=False, source="api")
    assert removed.removed == ["active"] and members(db) == {}
    assert [e.id for e in events(db, "segment_exited")] == ["api:1:out:active"]
    segments.check_manual(catalog, "active")
    with pytest.raises(PermissionError, match="rule segment"):
        segments.check_manual(catalog, "vip")
    with pytest.raises(segments.SegmentError):
        segments.check_manual(catalog, "nope")


async def test_overview_lists_sizes_and_last_refresh(db, tmp_path: Path) -> None:
    catalog = catalog_with(tmp_path / "journeys")
    seed(db, 13, 40, segments=("active", "retired"))
    await segments.refresh(catalog, db, None, at=NOW, announce=False)
    rows = {row.name: row for row in segments.overview(catalog, db)}
    now_members = members(db)
    assert rows["vip"].kind == "rule" and rows["vip"].refreshed_at == NOW
    assert rows["vip"].size == len(now_members.get("vip", ()))
    assert rows["active"].kind == "manual" and rows["active"].refreshed_at is None
    assert rows["active"].size == len(now_members.get("active", ()))
    assert rows["retired"].kind == "removed"


def test_the_schedule_starts_the_refresh_every_interval_and_skips_overlaps(tmp_path: Path) -> None:
    from temporalio.client import ScheduleActionStartWorkflow, ScheduleOverlapPolicy

    catalog = catalog_with(tmp_path / "journeys", SEGMENTS.replace("refresh: 1h", "refresh: 15m"))
    schedule_id, schedule = segments.refresh_schedule(catalog)
    assert schedule_id == "segments-refresh"
    assert isinstance(schedule.action, ScheduleActionStartWorkflow)
    assert schedule.action.workflow == "SegmentRefresh" and schedule.action.task_queue == "journeys"
    assert [i.every for i in schedule.spec.intervals] == [timedelta(minutes=15)]
    assert schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    assert list(segments.segment_schedules(catalog)) == ["segments-refresh"]
    manual_only = catalog_with(tmp_path / "manual", "segments:\n  active: {manual: true}\n")
    assert segments.segment_schedules(manual_only) == {}


def test_event_ids_are_deterministic_and_fit() -> None:
    short = segments.event_id("abcdef0123456789", "vip", "in", "c1")
    assert short == segments.event_id("abcdef0123456789", "vip", "in", "c1") == "segment-in:vip:c1:abcdef0123456789"
    long = segments.event_id("abcdef0123456789", "s" * 64, "out", "c" * 64)
    assert len(long) <= 128 and long != segments.event_id("abcdef0123456789", "s" * 64, "in", "c" * 64)
