"""tier_upgrade, as shipped: on tier_changed to gold or platinum (not from platinum, which
is a downgrade), congratulations and the new perks, straight away.

Runs start on Monday 2026-03-02 at 15:00 UTC (10:00 in New York, the default time zone)
unless a test moves the start to meet quiet hours."""

from __future__ import annotations

import pytest

from tests.journeys.support import Around, after, around, link_target, shipped, short_link, sms, utc
from tests.runtime.support import MONDAY_3PM

GOLD = ("Nordic Shoes: congrats Alex, you're now Gold! Enjoy free shipping on every order, early access to our "
        "Friday flash sales and a bigger birthday bonus: {link}")
PLATINUM = ("Nordic Shoes: welcome to Platinum, Alex! You now get free express shipping, free returns for 60 days, "
            "early access to our flash sales and a bigger birthday bonus: {link}")


def at(offset: str) -> Around:
    return after(MONDAY_3PM, offset)


@pytest.mark.parametrize(("change", "step", "text", "url"), [
    ('{"from": "silver", "to": "gold"}', "gold_perks", GOLD, "https://nordicshoes.example/rewards/gold"),
    ('{"from": "gold", "to": "platinum"}', "platinum_perks", PLATINUM, "https://nordicshoes.example/rewards/platinum"),
    ('{"from": "silver", "to": "platinum"}', "platinum_perks", PLATINUM,
     "https://nordicshoes.example/rewards/platinum"),
])
async def test_upgrade_gets_the_perks_of_the_new_tier(simulation, change: str, step: str, text: str,
                                                      url: str) -> None:
    """An upgrade: one text at once, for the tier reached, linking to that tier's page."""
    async with simulation(shipped()) as run:
        await run.customer()
        assert await run.enter("tier_upgrade", trigger=f"tier_changed {change}")
        timeline = await run.timeline("tier_upgrade")
        link = short_link(run, step)
        target = link_target(run, sms(timeline)[0]["text"])
    [congrats] = sms(timeline)
    assert congrats["step"] == step and congrats["status"] == "sent" and congrats["at"] == at("0s")
    assert congrats["text"] == text.format(link=link)
    assert target == url
    assert timeline["outcome"] == "completed"


@pytest.mark.parametrize("change", [
    '{"from": "gold", "to": "silver"}',
    '{"from": "platinum", "to": "silver"}',
    '{"from": "platinum", "to": "gold"}',  # down from Platinum to Gold
])
async def test_a_downgrade_does_not_enter(simulation, change: str) -> None:
    """Tiers are earned over a rolling year, so customers move down too: no congratulations."""
    async with simulation(shipped()) as run:
        await run.customer()
        assert not await run.enter("tier_upgrade", trigger=f"tier_changed {change}")
        assert run.enrollments("tier_upgrade") == []


async def test_a_purchase_that_reaches_gold_starts_it(simulation) -> None:
    """The real path: a $480 order takes a Silver customer (40 points) to 520 points; the
    engine emits tier_changed silver -> gold and the Gold text goes at once."""
    async with simulation(shipped()) as run:
        await run.customer(orders=[{"at": "-20d", "amount": 40}])
        assert run.customer_row().tier == "silver"
        await run.at('purchase@+1h {"amount": 480}')
        timeline = await run.timeline("tier_upgrade")
        customer = run.customer_row()
    assert customer.tier == "gold" and customer.points == 520
    [congrats] = sms(timeline)
    assert congrats["step"] == "gold_perks" and congrats["status"] == "sent" and congrats["at"] == at("1h")


async def test_upgrade_at_night_waits_for_0800(simulation) -> None:
    """An upgrade at 22:00 in New York (marketing, so quiet hours apply): sent at 08:00."""
    async with simulation(shipped(), start=utc(2026, 3, 3, 3, 0)) as run:
        await run.customer()
        assert await run.enter("tier_upgrade", trigger='tier_changed {"from": "silver", "to": "gold"}')
        timeline = await run.timeline("tier_upgrade")
    [congrats] = sms(timeline)
    assert congrats["status"] == "sent" and congrats["at"] == around("2026-03-03T13:00:00Z")


async def test_congratulations_need_consent(simulation) -> None:
    """Marketing: a customer who has not opted in is skipped with no_consent."""
    async with simulation(shipped()) as run:
        await run.customer(sms_consent="none")
        assert await run.enter("tier_upgrade", trigger='tier_changed {"from": "silver", "to": "gold"}')
        timeline = await run.timeline("tier_upgrade")
    [congrats] = sms(timeline)
    assert congrats["status"] == "skipped" and congrats["reason"] == "no_consent"
