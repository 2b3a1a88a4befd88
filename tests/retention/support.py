"""Helpers for the retention tests: a catalog, a pinned clock for the event path and
the decisions, rows seeded long ago and lately through the real paths, and snapshots."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlmodel import select

from activities import decisions as decision_activities
from core.event import EventIn
from core.events import router as event_router
from core.events import store as event_store
from core.events.router import EventRouter
from core.segments import immediate
from core.sms.links import record_click
from language.models import Message as MessageSpec
from store.db import session_scope
from store.tables import Click, Decision, Email, Enrollment, Event, InboundMessage, Link, Message
from tests.runtime.support import DIRECT_MOMENT, consented_sender_activities, direct_call, write_journeys

OLD = DIRECT_MOMENT  # 2026-03-02 15:00 UTC
NOW = OLD + timedelta(days=800)  # past every default period (730d, 90d) for OLD
NEW = NOW - timedelta(days=10)  # within every period
CART = "https://shop.example/cart/A?c=42&email=ana%40example.com"
PERSONAL = {"amount": 120, "currency": "USD", "email": "ana@example.com", "cart_url": CART,
            "note": "call me on +12015550123", "category": "shoes", "sku": "x" * 80}
ENDED = ["ended-1", "ended-2", "ended-3"]
RUNNING = "running"


def catalog_for(root: Path, retention: str = "") -> Any:
    settings = """
brand: Nordic Shoes
default_country: US
default_timezone: America/New_York
quiet_hours: {start: "21:00", end: "08:00"}
frequency_caps: [{max: 1, per: 24h}, {max: 4, per: 7d}]
""" + retention
    return write_journeys(root, {}, settings=settings)


class Clock:
    """The event path's, the segment re-evaluation's and the decisions' wall clock, pinned
    where the test says (else "days since" rules would follow today's date)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.at = OLD
        for module in (event_store, event_router, immediate, decision_activities):
            monkeypatch.setattr(module, "utcnow", lambda: self.at)


async def send(activities: Any, enrollment_id: str, at: Any) -> Message:
    call = direct_call(MessageSpec(text=f"Your cart: {{{{ link('{CART}') }}}}"), at=at)
    call = call.model_copy(update={"run": call.run.model_copy(update={"enrollment_id": enrollment_id})})
    outcome = await activities.send_sms(call)
    assert outcome.status == "sent", outcome
    with session_scope(activities.deps.db) as session:
        return session.exec(select(Message).where(Message.enrollment_id == enrollment_id)).one()


async def seed(db: Any, catalog: Any, sender: Any, clock: Clock) -> EventRouter:
    """Three ended runs texted long ago (one link clicked), a running one texted as long
    ago, one ended lately; old and new events, one unrouted, one the running run's
    trigger, two old answers (sms_replied); decisions and inbound-message ids old and new;
    an old reply text."""
    router = EventRouter(catalog, db, None)  # no journeys: routing never calls Temporal
    activities = consented_sender_activities(db, catalog, sender)
    for n, enrollment_id in enumerate([*ENDED, RUNNING]):
        await send(activities, enrollment_id, OLD + timedelta(days=3 * n))
    recent = await send(activities, "ended-new", NEW)
    for n in range(3):
        clock.at = OLD + timedelta(minutes=n)
        await router.route(EventIn(id=f"order-old-{n}", type="purchase", customer_id="c1", occurred_at=clock.at,
                                   properties=PERSONAL))
    await router.route(EventIn(id="order-running", type="purchase", customer_id="c1", occurred_at=OLD,
                               properties=PERSONAL))
    for customer_id in ("c1", "c2"):  # c1's answer may still be read by its running run; c2 has none
        await router.route(EventIn(id=f"inbound:SM-{customer_id}", type="sms_replied", customer_id=customer_id,
                                   occurred_at=clock.at, properties={"body": "Call me, Ana", "reply_to": None}))
    with session_scope(db) as session:
        first = session.exec(select(Link).where(Link.enrollment_id == ENDED[0])).one()
    clock.at = OLD + timedelta(hours=1)
    assert await record_click(router, first.code, at=clock.at, user_agent="Mozilla/5.0") == CART
    assert await record_click(router, first.code, at=clock.at, user_agent="Slackbot 1.0") == CART
    clock.at = NEW
    await router.route(EventIn(id="order-new", type="purchase", customer_id="c1", occurred_at=NEW,
                               properties=PERSONAL))
    for key, at in [(f"{ENDED[0]}:check:condition", OLD), (f"{RUNNING}:check:condition", OLD),
                    ("ended-new:check:condition", NEW)]:
        clock.at = at
        decision_activities.remembered(db, key, lambda _session: {"result": True})
    with session_scope(db) as session:
        session.add(Event(id="order-unrouted", customer_id="c1", type="purchase", occurred_at=OLD, received_at=OLD,
                          properties=PERSONAL))  # stored, never routed (Temporal was down)
        session.add(Decision(key=f"segments:{ENDED[1]}:tag", value={"added": ["vip"], "removed": []}, decided_at=OLD))
        session.add(Decision(key="segment-outbox:t1:vip:in:0", value={"segment": "vip"}, decided_at=OLD))
        session.add(InboundMessage(sid="SMold", received_at=OLD, handled_at=OLD))
        session.add(InboundMessage(sid="SMnew", received_at=NEW, handled_at=NEW))
        session.add(Message(id="reply-old", key="reply:help:SMold", customer_id="c1", purpose="reply",
                            body="HELP text", reply_to="+12015550123", status="sent", created_at=OLD, sent_at=OLD))
        for n, (enrollment_id, at) in enumerate([(ENDED[0], OLD), (ENDED[1], OLD), (RUNNING, OLD), ("ended-new", NEW)]):
            session.add(Email(id=f"email-{n}", key=f"{enrollment_id}:cart_email", customer_id="c1",
                              enrollment_id=enrollment_id, journey_id="promo", step_id="cart_email",
                              subject="Ana, your cart", body=f"Your cart: {CART}", html=f"<p>{CART}</p>",
                              status="sent", provider="console", provider_message_id=f"<m{n}@shop.example>",
                              created_at=at, sent_at=at))
        for enrollment_id in [*ENDED, "ended-new"]:
            session.add(Enrollment(id=enrollment_id, journey_id="promo", journey_version="v", customer_id="c1",
                                   workflow_id=f"wf-{enrollment_id}", status="ended", entered_at=OLD, ended_at=OLD))
        session.add(Enrollment(id=RUNNING, journey_id="promo", journey_version="v", customer_id="c1",
                               workflow_id="wf-running", trigger_event_id="order-running", status="active",
                               entered_at=OLD))
    assert recent.body and recent.created_at == NEW
    return router


def plain(row: Any) -> SimpleNamespace:
    return SimpleNamespace(**row.model_dump())  # compared by value


def snapshot(db: Any) -> dict[str, Any]:
    with session_scope(db, readonly=True) as session:
        return {
            "messages": {m.id: plain(m) for m in session.exec(select(Message)).all()},
            "emails": {e.enrollment_id: plain(e) for e in session.exec(select(Email)).all()},
            "links": {link.enrollment_id: plain(link) for link in session.exec(select(Link)).all()},
            "events": {e.id: plain(e) for e in session.exec(select(Event)).all()},
            "decisions": set(session.exec(select(Decision.key)).all()),
            "inbound": set(session.exec(select(InboundMessage.sid)).all()),
            "clicks": Counter((c.link_code, c.bot) for c in session.exec(select(Click)).all()),
        }


def report_counts(state: dict[str, Any]) -> dict[str, Any]:
    """What reports count: messages per journey, step, status and segments; clicks per link."""
    return {"messages": Counter((m.journey_id, m.step_id, m.status, m.segments, m.purpose)
                                for m in state["messages"].values()),
            "clicks": state["clicks"], "events": Counter(e.type for e in state["events"].values())}
