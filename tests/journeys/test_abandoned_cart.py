"""abandoned_cart, as shipped: on cart_abandoned, wait 30 minutes, then up to 30 more for a
purchase of that cart; if none, exactly one reminder with a link back to the cart; a day
later, an email with the cart's products to those who neither clicked nor bought.

Runs start on Monday 2026-03-02 at 15:00 UTC (10:00 in New York, the default time zone)
unless a test moves the start into the evening to meet quiet hours."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from store.db import session_scope
from store.tables import Email
from tests.journeys.support import Around, actions, after, around, link_target, shipped, short_link, sms, utc
from tests.runtime.support import MONDAY_3PM

CART_URL = "https://nordicshoes.example/cart/A"
CART_A = f'cart_abandoned {{"cart_id": "A", "cart_url": "{CART_URL}"}}'
LINE_ITEMS = [{"title": "Trail runner", "quantity": 1, "price": "$129.00", "url": "https://nordicshoes.example/p/1"},
              {"title": "Wool <socks>", "quantity": 2, "price": "$24.00"}]
CART_A_ITEMS = f'cart_abandoned {json.dumps({"cart_id": "A", "cart_url": CART_URL, "line_items": LINE_ITEMS})}'
# 20:30 in New York on Monday 2026-03-02 (EST, UTC-5).
EVENING = utc(2026, 3, 3, 1, 30)


def reminder_rows(run) -> list:  # type: ignore[no-untyped-def]
    """The journey's message rows (the purchase also starts post_purchase: not counted here)."""
    return [row for row in run.messages() if row.journey_id == "abandoned_cart"]


def at(offset: str) -> Around:
    return after(MONDAY_3PM, offset)


async def test_no_purchase_one_reminder_with_a_link_to_the_cart(simulation, sender) -> None:
    """No purchase: the wait_for times out at +1h and exactly one reminder goes, linking to
    the cart_url of the abandonment."""
    async with simulation(shipped()) as run:
        await run.customer()
        assert await run.enter("abandoned_cart", trigger=CART_A)
        timeline = await run.timeline("abandoned_cart")
        link = short_link(run, "reminder")
        target = link_target(run, sms(timeline)[0]["text"])
    [reminder] = sms(timeline)
    assert reminder["step"] == "reminder" and reminder["status"] == "sent" and reminder["at"] == at("1h")
    assert reminder["text"] == ("Nordic Shoes: Hi Alex, you left something in your cart. We saved it for you: "
                                f"{link} Reply STOP to opt out.")
    assert target == CART_URL
    [waited] = actions(timeline, "wait_for")
    assert waited["at"] == at("30m") and waited["until"] == at("1h")
    assert timeline["outcome"] == "completed"
    assert [message.body for message in sender.sent] == [reminder["text"]]


async def test_without_a_cart_url_the_reminder_links_to_the_cart_page(simulation) -> None:
    """An abandonment without cart_url: the link goes to the generic cart page."""
    async with simulation(shipped()) as run:
        await run.customer()
        assert await run.enter("abandoned_cart", trigger='cart_abandoned {"cart_id": "A"}')
        timeline = await run.timeline("abandoned_cart")
        target = link_target(run, sms(timeline)[0]["text"])
    assert target == "https://nordicshoes.example/cart"


@pytest.mark.parametrize("offset", ["20m", "45m"])
async def test_purchase_of_that_cart_within_the_hour_means_no_reminder(simulation, offset: str) -> None:
    """The same cart bought at +20m (first wait) or +45m (the wait_for): exited:purchase then, no text."""
    async with simulation(shipped()) as run:
        await run.customer()
        assert await run.enter("abandoned_cart", trigger=CART_A)
        await run.at(f'purchase@+{offset} {{"cart_id": "A", "amount": 129}}')
        timeline = await run.timeline("abandoned_cart")
        reminders = reminder_rows(run)
    assert sms(timeline) == [] and reminders == []
    assert timeline["outcome"] == "exited:purchase" and timeline["ended_at"] == at(offset)


async def test_purchase_of_another_cart_does_not_stop_the_reminder(simulation) -> None:
    """Cart B bought at +40m: cart A's reminder still goes at +1h."""
    async with simulation(shipped()) as run:
        await run.customer()
        assert await run.enter("abandoned_cart", trigger=CART_A)
        await run.at('purchase@+40m {"cart_id": "B", "amount": 40}')
        timeline = await run.timeline("abandoned_cart")
    [reminder] = sms(timeline)
    assert reminder["status"] == "sent" and reminder["at"] == at("1h")
    assert timeline["outcome"] == "completed"


async def test_purchase_without_a_cart_id_counts_as_buying_the_cart(simulation) -> None:
    """A purchase with no cart_id at +40m: we cannot tell, so no reminder (exited:purchase)."""
    async with simulation(shipped()) as run:
        await run.customer()
        assert await run.enter("abandoned_cart", trigger=CART_A)
        await run.at('purchase@+40m {"amount": 129}')
        timeline = await run.timeline("abandoned_cart")
    assert sms(timeline) == []
    assert timeline["outcome"] == "exited:purchase" and timeline["ended_at"] == at("40m")


async def test_cart_left_at_2030_is_reminded_at_0800(simulation) -> None:
    """Left at 20:30 in New York: the reminder is due at 21:30, inside quiet hours, and is
    deferred to 08:00 the next morning (13:00 UTC), not dropped."""
    async with simulation(shipped(), start=EVENING) as run:
        await run.customer()
        assert await run.enter("abandoned_cart", trigger=CART_A)
        timeline = await run.timeline("abandoned_cart")
    [reminder] = sms(timeline)
    assert reminder["status"] == "sent" and reminder["at"] == around("2026-03-03T13:00:00Z")
    assert timeline["ended_at"] == around("2026-03-04T13:00:00Z")  # the email's day, counted from the text


async def test_purchase_while_the_reminder_waits_for_the_morning_cancels_it(simulation) -> None:
    """Left at 20:30, bought at 23:00 while the reminder waits out quiet hours: exited:purchase
    at 23:00 and nothing is sent in the morning."""
    async with simulation(shipped(), start=EVENING) as run:
        await run.customer()
        assert await run.enter("abandoned_cart", trigger=CART_A)
        await run.at('purchase@+2h30m {"cart_id": "A", "amount": 129}')
        timeline = await run.timeline("abandoned_cart")
        reminders = reminder_rows(run)
    assert sms(timeline) == []
    assert timeline["outcome"] == "exited:purchase" and timeline["ended_at"] == after(EVENING, "2h30m")
    assert [row.sent_at for row in reminders] == [None]  # held for the morning, then never sent


async def test_a_capped_reminder_is_skipped_not_delayed(simulation) -> None:
    """The customer got a marketing text (welcome) just before: the 1-per-24h cap would hold
    the reminder for a day, so it is skipped (frequency_cap) and the run ends at +1h."""
    async with simulation(shipped()) as run:
        await run.customer()
        assert await run.enter("welcome")
        await run.at(f"{CART_A.replace('cart_abandoned', 'cart_abandoned@+1m')}")
        timeline = await run.timeline("abandoned_cart")
    [reminder] = sms(timeline)
    assert reminder["status"] == "skipped" and reminder["reason"] == "frequency_cap"
    assert reminder["at"] == at("1h1m")
    assert timeline["outcome"] == "completed"


async def test_marketing_reminder_needs_consent(simulation) -> None:
    """A customer who has not opted in: the reminder is skipped with no_consent."""
    async with simulation(shipped()) as run:
        await run.customer(sms_consent="none")
        assert await run.enter("abandoned_cart", trigger=CART_A)
        timeline = await run.timeline("abandoned_cart")
    [reminder] = sms(timeline)
    assert reminder["status"] == "skipped" and reminder["reason"] == "no_consent" and reminder["at"] == at("1h")


def emails(run) -> list[Email]:  # type: ignore[no-untyped-def]
    with session_scope(run.sim.db) as session:
        return list(session.exec(select(Email).where(Email.journey_id == "abandoned_cart")).all())


async def test_neither_clicked_nor_bought_an_email_with_the_products_a_day_after_the_text(simulation) -> None:
    """No click and no purchase: the text at +1h, the email at +1d1h listing the trigger's line
    items in both parts (HTML escaped), with a tracked link back to the cart."""
    async with simulation(shipped()) as run:
        await run.customer(email="alex@example.com")
        assert await run.enter("abandoned_cart", trigger=CART_A_ITEMS)
        timeline = await run.timeline("abandoned_cart")
        link = short_link(run, "cart_email")
        target = link_target(run, actions(timeline, "email")[0]["text"])
        [row] = emails(run)
    [email] = actions(timeline, "email")
    assert (email["step"], email["status"], email["at"]) == ("cart_email", "sent", at("1d1h"))
    assert email["subject"] == "Alex, your cart at Nordic Shoes is waiting"
    assert "- 1 x Trail runner ($129.00)\n- 2 x Wool <socks> ($24.00)" in email["text"]
    assert f"Your cart is saved: {link}" in email["text"] and target == CART_URL
    assert row.html is not None and "<li>2 x Wool &lt;socks&gt; ($24.00)</li>" in row.html
    assert f'<a href="{link}">' in row.html
    assert timeline["outcome"] == "completed"


async def test_a_click_on_the_text_means_no_email(simulation) -> None:
    """The text's link clicked at +3h: the run ends after the day's wait without an email."""
    async with simulation(shipped()) as run:
        await run.customer(email="alex@example.com")
        assert await run.enter("abandoned_cart", trigger=CART_A_ITEMS)
        await run.at("click:reminder@+3h")
        timeline = await run.timeline("abandoned_cart")
        rows = emails(run)
    assert [entry["status"] for entry in sms(timeline)] == ["sent"]
    assert actions(timeline, "email") == [] and rows == []
    assert timeline["outcome"] == "completed" and timeline["ended_at"] == at("1d1h")


async def test_a_purchase_after_the_text_means_no_email(simulation) -> None:
    """The cart bought at +6h, after the text: exited:purchase, no email."""
    async with simulation(shipped()) as run:
        await run.customer(email="alex@example.com")
        assert await run.enter("abandoned_cart", trigger=CART_A_ITEMS)
        await run.at('purchase@+6h {"cart_id": "A", "amount": 129}')
        timeline = await run.timeline("abandoned_cart")
        rows = emails(run)
    assert [entry["status"] for entry in sms(timeline)] == ["sent"] and rows == []
    assert timeline["outcome"] == "exited:purchase" and timeline["ended_at"] == at("6h")


async def test_without_email_consent_the_email_is_skipped(simulation) -> None:
    """An address but no email opt-in: the marketing email is skipped (no_consent), the text went."""
    async with simulation(shipped()) as run:
        await run.customer(email="alex@example.com", email_consent="none")
        assert await run.enter("abandoned_cart", trigger=CART_A_ITEMS)
        timeline = await run.timeline("abandoned_cart")
    [email] = actions(timeline, "email")
    assert (email["status"], email["reason"]) == ("skipped", "no_consent")
    assert [entry["status"] for entry in sms(timeline)] == ["sent"]
