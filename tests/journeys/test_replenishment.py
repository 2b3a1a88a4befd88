"""replenishment, as shipped: entering due_to_reorder (a regular whose usual reorder is
due) sends one reminder with a reorder link; a purchase in the week after ends the run
as its goal, and takes the customer out of due_to_reorder at once (immediate membership).

Every run starts on Monday 2026-03-02 at 15:00 UTC, 10:00 in New York: outside quiet hours."""

from __future__ import annotations

from sqlmodel import select

from store.db import session_scope
from store.tables import Event
from tests.journeys.support import Around, after, link_target, segments, shipped, short_link, sms
from tests.runtime.support import MONDAY_3PM

# Orders 30 days apart, the last 29 days ago: due tomorrow by their own habit.
REGULAR = {"orders": [{"at": "-89d", "amount": 40}, {"at": "-59d", "amount": 35}, {"at": "-29d", "amount": 45}],
           "segments": ["due_to_reorder"]}


def at(offset: str) -> Around:
    return after(MONDAY_3PM, offset)


async def test_a_due_regular_gets_one_reminder_with_their_own_interval(simulation) -> None:
    async with simulation(shipped()) as run:
        await run.customer(**REGULAR)
        assert await run.enter("replenishment")
        timeline = await run.timeline("replenishment")
        link = short_link(run, "reminder")
        target = link_target(run, sms(timeline)[0]["text"])
    [reminder] = sms(timeline)
    assert reminder["status"] == "sent" and reminder["at"] == at("0s")
    assert reminder["text"] == ("Nordic Shoes: Hi Alex, you usually order about every 30 days, so it may be time "
                                f"again. Reorder in one tap: {link} Reply STOP to opt out.")
    assert target == "https://nordicshoes.example/reorder"
    assert timeline["outcome"] == "completed" and timeline["ended_at"] == at("7d")


async def test_a_reorder_ends_it_as_the_goal_and_leaves_the_segment_at_once(simulation) -> None:
    async with simulation(shipped()) as run:
        await run.customer(**REGULAR)
        assert await run.enter("replenishment")
        await run.at('purchase@+2d {"amount": 50}')
        timeline = await run.timeline("replenishment")
        [enrollment] = run.enrollments("replenishment")
        member_of = segments(run, rules=True)
        with session_scope(run.sim.db, readonly=True) as session:
            exited = [(e.properties["segment"], e.occurred_at) for e in session.exec(
                select(Event).where(Event.type == "segment_exited"))]
    assert timeline["outcome"] == "exited:purchase" and timeline["ended_at"] == at("2d")
    assert enrollment.converted_at == at("2d") and enrollment.conversion_value == 50
    # Due again in 30 days: out of due_to_reorder with the purchase, no refresh needed.
    assert "due_to_reorder" not in member_of and ("due_to_reorder", at("2d")) in exited


async def test_only_subscribers_are_reminded(simulation) -> None:
    async with simulation(shipped()) as run:
        await run.customer(**REGULAR, sms_consent="none")
        assert not await run.enter("replenishment")
