"""Hostile repeats at the HTTP edge: replayed Twilio webhooks (acted on once per
MessageSid; consent never goes backwards because of an older message) and flooded
tracked links (one signal per link per run; bots and HEAD requests are not clicks)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from sqlmodel import col, select
from temporalio.api.enums.v1 import EventType

from core.clock import utcnow
from store.db import session_scope
from store.tables import Click, ConsentRecord, Customer, Enrollment, Event, InboundMessage, Link
from tests.api.conftest import AUTH, Api, eventually
from tests.runtime.support import temporal_unreachable

PHONE = "+12015550123"


def _consent(api: Api, customer_id: str = "c1") -> tuple[str, list[str]]:
    with session_scope(api.run.sim.db) as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        records = session.exec(select(ConsentRecord).where(ConsentRecord.customer_id == customer_id)
                               .order_by(col(ConsentRecord.id))).all()
        return customer.sms_consent, [r.status for r in records]


def _count(api: Api, model: type, *where: object) -> int:
    with session_scope(api.run.sim.db) as session:
        return len(session.exec(select(model).where(*where)).all())


async def _opted_in(api: Api) -> None:
    await api.http.put("/customers/c1", json={"phone": PHONE}, headers=AUTH)
    await api.http.post("/customers/c1/consent", headers=AUTH, json={
        "status": "opted_in", "source": "checkout", "disclosure": "Texts from us. Reply STOP to cancel."})
    yes = await api.twilio("/twilio/inbound", {"From": PHONE, "Body": "YES", "MessageSid": "SMyes"})
    assert yes.status_code == 200
    assert _consent(api)[0] == "opted_in"


async def test_a_replayed_yes_after_stop_changes_nothing(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    await _opted_in(api)
    yes = {"From": PHONE, "Body": "YES", "MessageSid": "SMyes"}
    captured = api.signed("/twilio/inbound", yes)  # what an eavesdropper kept
    stop = await api.twilio("/twilio/inbound", {"From": PHONE, "Body": "STOP", "MessageSid": "SMstop"})
    assert stop.status_code == 200
    after_stop = _consent(api)
    assert after_stop == ("opted_out", ["pending", "opted_in", "opted_out"])
    sent, opted_in = len(api.sender.sent), _count(api, Event, Event.type == "opted_in")

    caplog.set_level(logging.INFO, logger="core.sms.inbound")
    for _ in range(3):
        replay = await api.http.post("/twilio/inbound", data=yes, headers=captured)
        assert replay.status_code == 200 and replay.text == stop.text  # the same answer
    assert caplog.text.count("SMyes was handled before") == 3  # not even looked at again
    assert _consent(api) == after_stop  # no re-subscription, no new evidence
    assert len(api.sender.sent) == sent and _count(api, Event, Event.type == "opted_in") == opted_in
    # A replayed STOP is not answered twice either.
    await api.twilio("/twilio/inbound", {"From": PHONE, "Body": "STOP", "MessageSid": "SMstop"})
    assert len(api.sender.sent) == sent

    # The customer's own new YES (a new sid) re-subscribes, as it should.
    again = await api.twilio("/twilio/inbound", {"From": PHONE, "Body": "yes", "MessageSid": "SMyes2"})
    assert again.status_code == 200
    assert _consent(api) == ("opted_in", ["pending", "opted_in", "opted_out", "opted_in"])


async def test_a_message_received_before_the_latest_stop_cannot_undo_it(api: Api) -> None:
    """A YES whose first delivery came before the STOP but was never finished (the
    process died mid-way) is delivered again after the STOP: it is older, and loses."""
    await _opted_in(api)
    with session_scope(api.run.sim.db) as session:
        session.add(InboundMessage(sid="SMearly", received_at=utcnow() - timedelta(seconds=30)))
    await api.twilio("/twilio/inbound", {"From": PHONE, "Body": "STOP", "MessageSid": "SMstop"})
    after_stop, sent = _consent(api), len(api.sender.sent)
    late = await api.twilio("/twilio/inbound", {"From": PHONE, "Body": "START", "MessageSid": "SMearly"})
    assert late.status_code == 200
    assert _consent(api) == after_stop and len(api.sender.sent) == sent  # no welcome either
    with session_scope(api.run.sim.db) as session:
        row = session.get(InboundMessage, "SMearly")
        assert row is not None and row.handled_at is not None  # and it is done now


async def test_an_inbound_message_without_a_sid_is_refused(api: Api) -> None:
    await api.customer("c1", phone=PHONE)
    for form in ({"From": PHONE, "Body": "STOP"}, {"From": PHONE, "Body": "STOP", "MessageSid": "S" * 65}):
        response = await api.twilio("/twilio/inbound", form)
        assert response.status_code == 400 and "MessageSid" in response.json()["detail"]
    assert _consent(api)[0] == "opted_in" and api.sender.sent == []


async def _history(api: Api, workflow_id: str) -> list[EventType.ValueType]:
    handle = api.run.sim.router.client.get_workflow_handle(workflow_id)
    return [event.event_type async for event in handle.fetch_history_events()]


async def _idle_history(api: Api, workflow_id: str) -> list[EventType.ValueType]:
    """The history once the run waits in its wait_for (timer started, nothing moving)."""
    previous: list[EventType.ValueType] = []
    for _ in range(200):
        history = await _history(api, workflow_id)
        if history == previous and EventType.EVENT_TYPE_TIMER_STARTED in history:
            return history
        previous = history
        await asyncio.sleep(0.1)
    raise AssertionError(f"the run never settled: {previous}")


async def test_a_flooded_link_costs_its_run_one_signal_and_every_request_is_counted(api: Api) -> None:
    await api.customer("c1", phone=PHONE)
    assert (await api.http.post("/events", json={"id": "p-1", "type": "promo", "customer_id": "c1"},
                                headers=AUTH)).status_code == 202

    def offer() -> tuple[Link, str] | None:
        with session_scope(api.run.sim.db) as session:
            link = session.exec(select(Link).where(Link.step_id == "offer")).first()
            run = session.exec(select(Enrollment).where(Enrollment.journey_id == "promo")).first()
            return (link, run.workflow_id) if link and run else None

    found = await eventually(offer)
    assert found is not None
    link, workflow_id = found
    path = f"/l/{link.code}"
    before = await _idle_history(api, workflow_id)

    # Previews and scanners: redirected, counted, never signalled.
    bots = {"slackbot": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            "facebookexternalhit": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, "
                                   "like Gecko) Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot "
                                   "Twitterbot/1.0",  # iMessage's preview
            "whatsapp": "WhatsApp/2.23.20.0 A", "no_user_agent": ""}
    for agent in bots.values():
        response = await api.http.get(path, headers={"User-Agent": agent}, follow_redirects=False)
        assert response.status_code == 302 and response.headers["location"] == "https://shop.example/new"
    head = await api.http.head(path, follow_redirects=False)
    assert head.status_code == 302
    assert await _history(api, workflow_id) == before

    for _ in range(200):
        response = await api.http.get(path, follow_redirects=False)
        assert response.status_code == 302
    after = await _history(api, workflow_id)
    assert after.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED) == 1
    assert len(after) - len(before) < 20  # one signal and the task that took it, not 200 of them

    with session_scope(api.run.sim.db) as session:
        clicks = session.exec(select(Click).where(Click.link_code == link.code)).all()
    assert len(clicks) == 200 + len(bots) + 1
    assert sorted(c.bot for c in clicks if c.bot) == sorted([*bots, "head"])
    assert {c.event_id for c in clicks if not c.bot} == {f"click:{link.code}"}
    assert _count(api, Event, Event.type == "link_clicked") == 1

    # The one signal is enough for clicked('offer').
    await api.http.post("/events", json={"id": "p-2", "type": "purchase", "customer_id": "c1",
                                         "properties": {"amount": 10}}, headers=AUTH)
    result = await api.run.timeline("promo", customer="c1")
    assert result["outcome"] == "clicked"


async def test_the_same_message_delivered_at_once_many_times_is_acted_on_once(api: Api) -> None:
    await api.customer("c1", phone=PHONE)
    stop = {"From": PHONE, "Body": "STOP", "MessageSid": "SMtwice"}
    responses = await asyncio.gather(*(api.twilio("/twilio/inbound", stop) for _ in range(8)))
    assert [r.status_code for r in responses] == [200] * 8
    assert _consent(api) == ("opted_out", ["opted_in", "opted_out"])
    assert _count(api, Event, Event.type == "opted_out") == 1
    assert [m.body for m in api.sender.sent] == [api.run.sim.catalog.settings.replies.stop]


async def test_a_delivery_that_failed_gives_the_message_back_to_the_next_one(api: Api) -> None:
    await api.http.put("/customers/c1", json={"phone": PHONE}, headers=AUTH)
    await api.http.post("/customers/c1/consent", headers=AUTH, json={
        "status": "opted_in", "source": "checkout", "disclosure": "Texts from us. Reply STOP to cancel."})
    yes = {"From": PHONE, "Body": "YES", "MessageSid": "SMflaky"}
    with temporal_unreachable(api.run.sim.router), pytest.raises(RuntimeError, match="Temporal unreachable"):
        await api.twilio("/twilio/inbound", yes)  # welcome cannot start: a 500, and Twilio tries again
    with session_scope(api.run.sim.db) as session:
        row = session.get(InboundMessage, "SMflaky")
        assert row is not None and row.claimed_at is None and row.handled_at is None
    assert (await api.twilio("/twilio/inbound", yes)).status_code == 200
    with session_scope(api.run.sim.db) as session:
        row = session.get(InboundMessage, "SMflaky")
        assert row is not None and row.handled_at is not None
    assert _consent(api) == ("opted_in", ["pending", "opted_in"])
    assert [m.body for m in api.sender.sent].count(api.run.sim.catalog.settings.replies.welcome) == 1


async def test_a_message_held_by_a_delivery_that_died_is_handled_once_its_lease_is_over(api: Api) -> None:
    await api.customer("c1", phone=PHONE)
    now = utcnow()
    with session_scope(api.run.sim.db) as session:  # two deliveries killed mid-way, 10 s and 5 min ago
        session.add(InboundMessage(sid="SMbusy", received_at=now, claimed_at=now - timedelta(seconds=10)))
        session.add(InboundMessage(sid="SMdead", received_at=now, claimed_at=now - timedelta(minutes=5)))
    await api.twilio("/twilio/inbound", {"From": PHONE, "Body": "HELP", "MessageSid": "SMbusy"})
    assert api.sender.sent == []  # still held: its own delivery may be handling it
    await api.twilio("/twilio/inbound", {"From": PHONE, "Body": "HELP", "MessageSid": "SMdead"})
    assert [m.body for m in api.sender.sent] == [api.run.sim.catalog.settings.replies.help]
