"""birthday, as shipped: on the birthday at 10:00 local time, bonus points by tier (200,
Gold 300, Platinum 500; valid 60 days) and a greeting that shows the new balance.

The date trigger has no event: the simulation starts the run directly, at the moment the
trigger would, Monday 2026-03-02 at 15:00 UTC = 10:00 in New York (the default time zone)."""

from __future__ import annotations

import pytest

from tests.journeys.support import Around, actions, after, ledger, link_target, shipped, short_link, sms
from tests.runtime.support import MONDAY_3PM

GREETING = ("Happy birthday, Alex! Nordic Shoes added bonus points to your account: you now have {points} points. "
            "Use the bonus within 60 days: {link}")


def at(offset: str) -> Around:
    return after(MONDAY_3PM, offset)


@pytest.mark.parametrize(("start_points", "tier", "bonus", "reason"), [
    (100, "silver", 200, "Birthday bonus"),
    (600, "gold", 300, "Birthday bonus (Gold)"),
    (2500, "platinum", 500, "Birthday bonus (Platinum)"),
])
async def test_bonus_by_tier_then_greeting_with_the_new_balance(
        simulation, start_points: int, tier: str, bonus: int, reason: str) -> None:
    """The bonus goes into the ledger (expiring in 60 days) and the balance; the greeting at
    10:00 local shows the balance including it."""
    async with simulation(shipped()) as run:
        await run.customer(points=start_points, birthday="1990-03-02")
        assert run.customer_row().tier == tier
        assert await run.enter("birthday")
        timeline = await run.timeline("birthday")
        customer = run.customer_row()
        entries = [entry for entry in ledger(run) if entry.source == "journey:birthday"]
        link = short_link(run, "greeting")
        target = link_target(run, sms(timeline)[0]["text"])
    [awarded] = actions(timeline, "points")
    assert awarded["points"] == bonus and awarded["balance"] == start_points + bonus and awarded["at"] == at("0s")
    [entry] = entries
    assert (entry.points, entry.reason) == (bonus, reason)
    assert entry.expires_at == at("60d")
    assert customer.points == start_points + bonus
    [greeting] = sms(timeline)
    assert greeting["step"] == "greeting" and greeting["status"] == "sent" and greeting["at"] == at("0s")
    assert greeting["text"] == GREETING.format(points=f"{start_points + bonus:,}", link=link)
    assert target == "https://nordicshoes.example/rewards"
    assert timeline["outcome"] == "completed"


async def test_greeting_in_the_customer_language(simulation) -> None:
    """A Swedish-speaking customer gets the sv text of the template."""
    async with simulation(shipped()) as run:
        await run.customer(locale="sv-SE", birthday="1990-03-02")
        assert await run.enter("birthday")
        timeline = await run.timeline("birthday")
    assert sms(timeline)[0]["text"].startswith(
        "Grattis på födelsedagen, Alex! Nordic Shoes har gett dig bonuspoäng: du har nu 200 poäng.")


async def test_points_for_everyone_greeting_only_for_subscribers(simulation) -> None:
    """Not opted in: the bonus is still awarded (a loyalty perk), the greeting is skipped
    with no_consent."""
    async with simulation(shipped()) as run:
        await run.customer(sms_consent="none", birthday="1990-03-02")
        assert await run.enter("birthday")
        timeline = await run.timeline("birthday")
        customer = run.customer_row()
    [awarded] = actions(timeline, "points")
    assert awarded["points"] == 200 and customer.points == 200
    [greeting] = sms(timeline)
    assert greeting["status"] == "skipped" and greeting["reason"] == "no_consent"
    assert timeline["outcome"] == "completed"


async def test_the_bonus_expires_after_60_days(simulation) -> None:
    """A purchase 61 days on refreshes the balance: the bonus has lapsed, the rest is still there."""
    async with simulation(shipped()) as run:
        await run.customer(points=100, birthday="1990-03-02")
        assert await run.enter("birthday")
        await run.at("noop@+1h")
        assert run.customer_row().points == 300
        await run.at('purchase@+61d {"amount": 10}')
        assert run.customer_row().points == 110
