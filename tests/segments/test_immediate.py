"""Immediate membership (core/segments/immediate.py): an event that changes a customer's
data re-evaluates the rule segments reading it, for that customer, at once; each
transition is announced exactly once, a concurrent refresh or a retry included.
On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from api.app import create_app
from api.services import Services
from core.clock import utcnow
from core.event import EventIn, RouteResult
from core.events.router import EventRouter
from core.intake.profiles import ProfileChange, upsert_customer
from core.segments import immediate
from core.segments import refresh as segments
from language.validate import load_catalog
from processes.simulate import CustomerSpec, Simulation
from store.db import session_scope
from store.tables import Customer, Decision, Enrollment, SegmentMembership, SegmentRefresh
from tests.runtime.support import CountingSender, write_journeys
from tests.segments.test_refresh import announced, catalog_with, events, members, router_for

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SEGMENTS_YAML = """
segments:
  buyers: {rule: "customer.orders_count >= 1"}
  big: {rule: "customer.spent_in('30d') >= 100"}
  subscribers: {rule: "customer.sms_consent == 'opted_in'"}
  loyal_subscribers: {rule: "in_segment('buyers') and in_segment('subscribers')"}
  scored: {rule: "customer.attributes.score >= 3"}
  old_buyers: {rule: "customer.days_since_last_purchase >= 30"}
  picked: {manual: true}
  picked_buyers: {rule: "in_segment('picked') and customer.orders_count >= 1"}
"""
SETTINGS = """
brand: Nordic Shoes
default_timezone: America/New_York
quiet_hours: {start: "00:00", end: "00:00"}
"""
THANKS = """
id: thanks
name: Thanks for the first order
trigger: {segment_entered: buyers}
steps:
  - id: hello
    send_sms: {text: "Thanks for your first order"}
"""


def catalog(tmp_path: Path, extra: str = "") -> Any:
    return catalog_with(tmp_path / "journeys", SEGMENTS_YAML + extra)


def purchase(customer_id: str, amount: float = 20, key: str = "") -> EventIn:
    return EventIn(id=f"order-{customer_id}{key}", type="purchase", customer_id=customer_id, occurred_at=utcnow(),
                   properties={"amount": amount})


def add_customers(db: Any, ids: list[str], **fields: Any) -> None:
    now = utcnow()
    with session_scope(db) as session:
        for customer_id in ids:
            session.add(Customer(id=customer_id, created_at=now, updated_at=now, **fields))


def test_each_event_re_evaluates_the_rules_reading_what_it_changes(tmp_path: Path) -> None:
    shipped = catalog(tmp_path)
    assert immediate.affected(shipped, immediate.EVENT_CHANGES["purchase"]) == [
        "buyers", "big", "loyal_subscribers", "old_buyers", "picked_buyers"]
    assert immediate.affected(shipped, immediate.EVENT_CHANGES["opted_out"]) == ["subscribers", "loyal_subscribers"]
    assert immediate.affected(shipped, immediate.PROFILE_CHANGE) == ["scored"]
    assert immediate.affected(shipped, immediate.EVENT_CHANGES["segment_entered"]) == [
        "loyal_subscribers", "picked_buyers"]
    assert immediate.affected(shipped, immediate.EVENT_CHANGES["link_clicked"]) == []
    assert immediate.changes_of(EventIn(id="e", type="cart_abandoned", customer_id="c"), "api") == frozenset()
    entered = EventIn(id="e", type="segment_entered", customer_id="c")
    assert immediate.changes_of(entered, "segments") == frozenset()  # the refresh's own: it orders those itself
    assert immediate.changes_of(entered, "journey") == {"segments"}


async def test_a_purchase_enters_and_a_consent_change_exits_without_a_refresh(db, tmp_path: Path) -> None:
    rules = catalog(tmp_path)
    router = router_for(rules, db)
    add_customers(db, ["c1"], sms_consent="opted_in")
    await segments.refresh(rules, db, router)  # c1: subscribers only
    assert members(db) == {"subscribers": {"c1"}}
    await router.route(purchase("c1", 150), source="api")
    assert members(db) == {"subscribers": {"c1"}, "buyers": {"c1"}, "big": {"c1"}, "loyal_subscribers": {"c1"}}
    await upsert_customer(router, "c1", ProfileChange(consent="opted_out"))
    assert members(db) == {"buyers": {"c1"}, "big": {"c1"}}
    assert sorted(announced(db, "segment_exited")) == ["loyal_subscribers", "subscribers"]
    await upsert_customer(router, "c1", ProfileChange(attributes={"score": 4}))
    assert members(db)["scored"] == {"c1"}
    again = await segments.refresh(rules, db, router)  # the refresh finds nothing left to do
    assert again.events == 0 and all(len(v) == 1 for v in announced(db, "segment_entered").values())
    with session_scope(db, readonly=True) as session:
        assert session.exec(select(Decision)).all() == []


async def test_immediate_false_leaves_it_to_the_refresh(db, tmp_path: Path) -> None:
    rules = catalog_with(tmp_path / "journeys", "immediate: false\n" + SEGMENTS_YAML)
    router = router_for(rules, db)
    await router.route(purchase("c1"), source="api")
    assert members(db) == {} and events(db, "segment_entered") == []
    await segments.refresh(rules, db, router)
    assert members(db)["buyers"] == {"c1"}


async def test_a_manual_segment_change_moves_the_rules_reading_it(db, tmp_path: Path) -> None:
    rules = catalog(tmp_path)
    router = router_for(rules, db)
    await router.route(purchase("c1"), source="api")
    await segments.change_memberships(router, "c1", add=["picked"], key="pick-1", source="api")
    assert members(db)["picked_buyers"] == {"c1"}


async def test_each_change_is_announced_once_under_a_concurrent_refresh(db, tmp_path: Path) -> None:
    rules = catalog(tmp_path)
    router = router_for(rules, db)
    ids = [f"c{i:03d}" for i in range(60)]
    add_customers(db, ids, sms_consent="opted_in")
    await segments.refresh(rules, db, router)

    async def buy() -> None:
        for customer_id in ids:
            await router.route(purchase(customer_id, 150), source="api")

    async def refreshes() -> None:
        for i in range(4):
            await segments.refresh(rules, db, router, refresh_id=f"r{i}", batch_size=7)
            await asyncio.sleep(0)

    await asyncio.gather(buy(), refreshes(), buy())  # every purchase routed twice: the repeat does nothing
    await segments.refresh(rules, db, router)
    entered = announced(db, "segment_entered")
    assert {k: set(v) for k, v in entered.items()} == members(db)
    assert members(db)["buyers"] == set(ids) and members(db)["loyal_subscribers"] == set(ids)
    dups = {k: sorted(x for x in v if v.count(x) > 1) for k, v in entered.items()}
    assert all(len(v) == len(set(v)) for v in entered.values()), (dups, [(e.id, e.source) for e in events(db, "segment_entered") if e.customer_id in dups.get("loyal_subscribers", [])[:1]])
    assert events(db, "segment_exited") == []


class FailingOnce(EventRouter):
    """Loses the first segment_entered it is asked to route: a process dying mid-way."""

    failed = False

    async def route(self, event: EventIn, *, source: str = "api", origin: str | None = None) -> RouteResult:
        if event.type == "segment_entered" and not self.failed:
            self.failed = True
            raise ConnectionError("worker lost")
        return await super().route(event, source=source, origin=origin)


async def test_a_retried_event_announces_what_its_first_attempt_changed(db, tmp_path: Path) -> None:
    rules = catalog(tmp_path)
    router = FailingOnce(rules, db, client=None)  # type: ignore[arg-type]
    order = purchase("c1", 150)
    with pytest.raises(ConnectionError):
        await router.route(order, source="api")
    assert members(db)["buyers"] == {"c1"} and events(db, "segment_entered") == []  # changed, not yet announced
    await router.route(order, source="sweeper")  # the sweeper's retry: stored, never routed
    assert {k: set(v) for k, v in announced(db, "segment_entered").items()} == members(db)
    assert all(len(v) == 1 for v in announced(db, "segment_entered").values())
    with session_scope(db, readonly=True) as session:
        assert session.exec(select(Decision)).all() == []


@pytest.fixture
async def http(tmp_path: Path, env, db) -> AsyncIterator[tuple[httpx.AsyncClient, Any, CountingSender]]:  # type: ignore[no-untyped-def]
    root = tmp_path / "journeys"
    write_journeys(root, {}, settings=SETTINGS)
    (root / "segments.yaml").write_text(SEGMENTS_YAML)
    (root / "thanks.yaml").write_text(THANKS)
    rules = load_catalog(root)
    sender = CountingSender()
    async with Simulation(env, rules, db, sender=sender) as sim:
        await sim.add_customer(CustomerSpec(id="c1"))
        app = create_app(Services.build(rules, db, sim.router, api_token=TOKEN))
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport,
                                                                        base_url="http://test") as client:
            yield client, db, sender


def _started(db: Any) -> list[Enrollment]:
    with session_scope(db, readonly=True) as session:
        return list(session.exec(select(Enrollment).where(Enrollment.journey_id == "thanks")).all())


async def test_a_purchase_over_http_starts_a_segment_journey_before_the_response(http) -> None:
    """Immediate: the segment journey is started when the POST answers, by no refresh
    (how fast the answer comes is bench/events.py's to measure, not a timed test's)."""
    client, db, sender = http
    posted = await client.post("/events", headers=AUTH, json={
        "id": "order-1", "type": "purchase", "customer_id": "c1", "properties": {"amount": 20}})
    assert posted.status_code == 202, posted.text
    started = _started(db)
    assert len(started) == 1 and started[0].started_at is not None, started
    with session_scope(db, readonly=True) as session:
        assert session.exec(select(SegmentRefresh)).all() == []  # no refresh ran
        assert session.get(SegmentMembership, ("c1", "buyers")) is not None
    for _ in range(100):
        if sender.sent:
            break
        await asyncio.sleep(0.05)
    assert [m.body for m in sender.sent] == ["Thanks for your first order"]
