"""A journey that texts first and emails later, run by the journey workflow on the real
Temporal test server: the email goes through the send_email activity once, its own
consent decides, and the timeline shows it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select

from core.reports.journey import journey_report
from core.sms.links import record_click
from processes.simulate import Simulation
from store.db import session_scope
from store.tables import Email, Link
from tests.runtime.support import Run, write_journeys

START = datetime(2026, 3, 2, 15, tzinfo=UTC)  # a Monday afternoon: no quiet hours
SMS_THEN_EMAIL = """
id: cart
name: Text, then email
trigger: {event: cart_abandoned}
steps:
  - id: text
    send_sms: {text: "Your cart is waiting"}
  - wait: 1d
  - id: cart_email
    send_email:
      subject: "{{ customer.first_name }}, still thinking?"
      text: "Your cart: {{ link('https://shop.example/cart') }}"
  - if: "sent('cart_email')"
    then:
      - id: after
        send_sms: {text: "Sent you an email"}
"""


def _emails(db) -> list[Email]:  # type: ignore[no-untyped-def]
    with session_scope(db, readonly=True) as session:
        return list(session.exec(select(Email)).all())


async def test_a_journey_texts_then_emails_and_the_timeline_shows_it(journeys_dir: Path, env, db, sender) -> None:
    catalog = write_journeys(journeys_dir, {"cart": SMS_THEN_EMAIL})
    async with Simulation(env, catalog, db, start=START, sender=sender) as sim:
        run = Run(sim)
        await run.customer(email="ada@example.com", first_name="Ada")
        assert await run.enter("cart", trigger="cart_abandoned")
        await run.advance(timedelta(days=2))
        timeline = await run.timeline("cart")
        with session_scope(db, readonly=True) as session:
            link = session.exec(select(Link).where(Link.step_id == "cart_email")).one()
        for minutes in (5, 6):  # the customer clicks the email's link twice
            await record_click(sim.router, link.code, at=START + timedelta(days=2, minutes=minutes))
    emails = [entry for entry in timeline["timeline"] if entry["action"] == "email"]
    assert [(e["step"], e["subject"], e["status"]) for e in emails] == [("cart_email", "Ada, still thinking?", "sent")]
    assert [row.status for row in _emails(db)] == ["sent"]
    assert [m.body for m in sender.sent] == ["Your cart is waiting", "Sent you an email"]  # sent() saw the email
    assert timeline["outcome"] == "completed"

    # The journey report counts the email step apart from the texts, with the clicks on its link.
    [version] = journey_report(db, "cart", settings=catalog.settings).versions
    assert (version.messages_sent, version.emails_sent, version.unique_clicks) == (2, 1, 0)
    step = next(s for s in version.steps if s.key == "cart_email")
    assert step.reached == 1 and step.send is not None
    assert (step.send.sent, step.send.skipped, step.send.failed, step.send.segments) == (1, {}, 0, 0)
    assert (step.send.unique_clicks, step.send.total_clicks, step.send.click_through_rate) == (1, 2, 1.0)


async def test_without_email_consent_the_email_is_skipped_and_the_run_goes_on(journeys_dir: Path, env, db,
                                                                             sender) -> None:
    catalog = write_journeys(journeys_dir, {"cart": SMS_THEN_EMAIL})
    async with Simulation(env, catalog, db, start=START, sender=sender) as sim:
        run = Run(sim)
        await run.customer(email="ada@example.com", email_consent="none")  # SMS: opted in
        assert await run.enter("cart", trigger="cart_abandoned")
        await run.advance(timedelta(days=2))
        timeline = await run.timeline("cart")
    [email] = [entry for entry in timeline["timeline"] if entry["action"] == "email"]
    assert (email["status"], email["reason"]) == ("skipped", "no_consent")
    assert [m.body for m in sender.sent] == ["Your cart is waiting"]
    [version] = journey_report(db, "cart", settings=catalog.settings).versions
    step = next(s for s in version.steps if s.key == "cart_email")
    assert step.send is not None and (step.reached, step.send.sent, step.send.skipped) == (1, 0, {"no_consent": 1})
    assert (version.messages_sent, version.emails_sent) == (1, 0)


CAPPED_SETTINGS = """
brand: Nordic Shoes
default_country: US
default_timezone: America/New_York
quiet_hours: {start: "21:00", end: "08:00"}
frequency_caps: [{max: 1, per: 24h}]
email: {frequency_caps: [{max: 1, per: 24h}]}
"""
TWO_EMAILS = """
id: two
name: Two emails and a text
trigger: {event: signup}
steps:
  - id: first
    send_email: {subject: "One", text: "first"}
  - id: text
    send_sms: {text: "a text"}
  - id: second
    send_email: {subject: "Two", text: "second"}
"""


async def test_email_caps_defer_the_next_email_and_count_apart_from_texts(journeys_dir: Path, env, db,
                                                                          sender) -> None:
    catalog = write_journeys(journeys_dir, {"two": TWO_EMAILS}, settings=CAPPED_SETTINGS)
    async with Simulation(env, catalog, db, start=START, sender=sender) as sim:
        run = Run(sim)
        await run.customer(email="ada@example.com")
        assert await run.enter("two", trigger="signup")
        await run.advance(timedelta(days=2))
        timeline = await run.timeline("two")
    by_subject = {row.subject: row for row in _emails(db)}
    assert [row.status for row in by_subject.values()] == ["sent", "sent"]
    first, second = by_subject["One"].sent_at, by_subject["Two"].sent_at
    assert first is not None and second is not None
    assert timedelta(hours=24) <= second - first < timedelta(hours=24, minutes=1)  # deferred, not dropped
    assert [m.body for m in sender.sent] == ["a text"]  # the SMS cap did not count the email before it
    assert [e["status"] for e in timeline["timeline"] if e["action"] == "email"] == ["sent", "sent"]
