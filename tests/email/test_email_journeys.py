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


TEMPLATED = """
id: cart
name: Templated email
trigger: {event: cart_abandoned}
steps:
  - id: cart_email
    send_email: {template: cart_mail}
"""
CART_MAIL = """
subject:
  en: "{{ customer.first_name }}, your cart"
  sv: "{{ customer.first_name }}, din varukorg"
  de: "{{ customer.first_name }}, Ihr Warenkorb"
text:
  en: "Your cart: {{ link('https://shop.example/cart') }}"
  sv: "Din varukorg: {{ link('https://shop.example/cart') }}"
html:
  en: "<p>Your cart</p>"
  de: "<p>Ihr <b>Warenkorb</b> &amp; mehr:</p><ul><li>{{ customer.first_name }}</li></ul>"
"""


async def _templated_email(journeys_dir: Path, env, db, sender, locale: str) -> Email:  # type: ignore[no-untyped-def]
    catalog = write_journeys(journeys_dir, {"cart": TEMPLATED}, templates={"cart_mail": CART_MAIL})
    async with Simulation(env, catalog, db, start=START, sender=sender) as sim:
        run = Run(sim)
        await run.customer(email="ada@example.com", first_name="Ada <3", locale=locale)
        assert await run.enter("cart", trigger="cart_abandoned")
        await run.advance(timedelta(hours=1))
    [row] = _emails(db)
    assert row.status == "sent"
    return row


async def test_an_email_template_speaks_the_customers_locale(journeys_dir: Path, env, db, sender) -> None:
    """sv-SE gets the sv subject and text (no sv html: no HTML part); fr falls back to the first locale."""
    row = await _templated_email(journeys_dir, env, db, sender, "sv-SE")
    assert row.subject == "Ada <3, din varukorg" and row.body.startswith("Din varukorg: http") and row.html is None


async def test_an_unknown_locale_gets_the_first_one(journeys_dir: Path, env, db, sender) -> None:
    row = await _templated_email(journeys_dir, env, db, sender, "fr")
    assert row.subject == "Ada <3, your cart" and row.body.startswith("Your cart: http")
    assert row.html is not None and row.html.startswith("<p>Your cart</p>")


async def test_a_locale_without_text_gets_one_made_from_its_html(journeys_dir: Path, env, db, sender) -> None:
    """de has only html: the plain-text part is its words (escaped values read back as typed)."""
    row = await _templated_email(journeys_dir, env, db, sender, "de")
    assert row.subject == "Ada <3, Ihr Warenkorb"
    assert row.html is not None and "<li>Ada &lt;3</li>" in row.html
    assert row.body.startswith("Ihr Warenkorb & mehr:\nAda <3\n\nUnsubscribe: http")


# --- across channels: all_channels caps, and email quiet hours when set ---

ALL_CHANNELS_SETTINGS = """
default_timezone: America/New_York
quiet_hours: {start: "21:00", end: "08:00"}
frequency_caps: [{max: 5, per: 24h}]
email: {frequency_caps: [{max: 5, per: 24h}]}
all_channels: {frequency_caps: [{max: 2, per: 24h}]}
"""
TEXTS_THEN_EMAIL = """
id: mixed
name: Two texts, then an email
trigger: {event: signup}
steps:
  - {id: one, send_sms: {text: "one"}}
  - {id: two, send_sms: {text: "two"}}
  - {id: third, send_email: {subject: "three", text: "three"}}
"""
EMAILS_THEN_TEXT = """
id: mixed
name: Two emails, then a text
trigger: {event: signup}
steps:
  - {id: one, send_email: {subject: "one", text: "one"}}
  - {id: two, send_email: {subject: "two", text: "two"}}
  - {id: third, send_sms: {text: "three"}}
"""


async def _sent_times(journeys_dir: Path, env, db, sender, journey: str,  # type: ignore[no-untyped-def]
                      settings: str, start: datetime = START,
                      customer: str = "sim-customer") -> dict[str, tuple[str, datetime | None]]:
    """When each step's message went, by step id; a customer of their own per call."""
    catalog = write_journeys(journeys_dir, {"mixed": journey}, settings=settings)
    async with Simulation(env, catalog, db, start=start, sender=sender) as sim:
        run = Run(sim)
        await run.customer(id=customer, email="ada@example.com")
        assert await run.enter("mixed", customer, trigger="signup")
        await run.advance(timedelta(days=2))
        texts = run.messages(customer)
        timeline = await run.timeline("mixed", customer)
    assert timeline["outcome"] == "completed"
    sent = {row.step_id: ("sms", row.sent_at) for row in texts}
    sent |= {row.step_id: ("email", row.sent_at) for row in _emails(db) if row.customer_id == customer}
    return sent


async def test_an_all_channels_cap_counts_texts_and_emails_together(journeys_dir: Path, env, db, sender) -> None:
    """2 per 24h across channels (each channel's own cap is 5): after two texts the email
    waits 24 hours, after two emails the text does; deferred, never dropped."""
    for journey, third in ((TEXTS_THEN_EMAIL, "email"), (EMAILS_THEN_TEXT, "sms")):
        sent = await _sent_times(journeys_dir, env, db, sender, journey, ALL_CHANNELS_SETTINGS, customer=third)
        assert sent["third"][0] == third
        first, last = sent["one"][1], sent["third"][1]
        assert first is not None and last is not None, sent
        assert timedelta(hours=24) <= last - first < timedelta(hours=24, minutes=1), sent
        assert sent["two"][1] is not None and sent["two"][1] - first < timedelta(minutes=1)


async def test_without_an_all_channels_cap_each_channel_counts_alone(journeys_dir: Path, env, db, sender) -> None:
    sent = await _sent_times(journeys_dir, env, db, sender, TEXTS_THEN_EMAIL,
                             ALL_CHANNELS_SETTINGS.replace("max: 2, per: 24h", "max: 3, per: 24h"))
    first, last = sent["one"][1], sent["third"][1]
    assert first is not None and last is not None and last - first < timedelta(minutes=1)


EVENING = datetime(2026, 3, 3, 3, tzinfo=UTC)  # 22:00 in New York on Monday
ONE_EMAIL = """
id: mixed
name: One email
trigger: {event: signup}
steps:
  - {id: third, send_email: {subject: "late", text: "late"}}
"""


async def test_email_quiet_hours_defer_an_evening_email_only_when_set(journeys_dir: Path, env, db, sender) -> None:
    """No email quiet hours by default: 22:00 goes at once. With email quiet_hours 21:00-08:00
    it waits until 08:00 in the customer's zone (13:00 UTC)."""
    sent = await _sent_times(journeys_dir, env, db, sender, ONE_EMAIL, ALL_CHANNELS_SETTINGS, start=EVENING)
    assert sent["third"][1] is not None and sent["third"][1] - EVENING < timedelta(minutes=1)
    quiet = ALL_CHANNELS_SETTINGS.replace("email: {", 'email: {quiet_hours: {start: "21:00", end: "08:00"}, ')
    sent = await _sent_times(journeys_dir, env, db, sender, ONE_EMAIL, quiet, start=EVENING, customer="quiet")
    at = sent["third"][1]
    assert at is not None and timedelta(0) <= at - datetime(2026, 3, 3, 13, tzinfo=UTC) < timedelta(minutes=1)
