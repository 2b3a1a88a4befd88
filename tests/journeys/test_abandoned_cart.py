"""abandoned_cart, as shipped: on cart_abandoned, wait 30 minutes, then up to 30 more for a
purchase of that cart; if none, exactly one reminder with a link back to the cart.

Runs start on Monday 2026-03-02 at 15:00 UTC (10:00 in New York, the default time zone)
unless a test moves the start into the evening to meet quiet hours."""

from __future__ import annotations

import pytest

from tests.journeys.support import Around, actions, after, around, link_target, shipped, short_link, sms, utc
from tests.runtime.support import MONDAY_3PM

CART_URL = "https://nordicshoes.example/cart/A"
CART_A = f'cart_abandoned {{"cart_id": "A", "cart_url": "{CART_URL}"}}'
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
    assert timeline["ended_at"] == around("2026-03-03T13:00:00Z")


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
