"""post_purchase, as shipped: 3 days after a purchase, a 1-5 rating question; 4-5 get a
review link, 1-3 an apology (transactional) and needs_follow_up; no reply in 2 days: nothing.

The customer has bought once before (an order 90 days ago), so this purchase is not a first
order that welcome asks about. Runs start on Monday 2026-03-02 at 15:00 UTC (10:00 in New
York, the default time zone) unless a test moves the start to meet quiet hours."""

from __future__ import annotations

import pytest

from tests.journeys.support import Around, actions, after, around, link_target, segments, shipped, short_link, sms, utc
from tests.runtime.support import MONDAY_3PM

RETURNING = {"orders": [{"at": "-90d", "amount": 60}]}
PURCHASE = 'purchase {"amount": 120}'
QUESTION = ("Nordic Shoes: Hi Alex, how are you getting on with your new order? "
            "Reply with a number from 1 (not happy) to 5 (love it).")
APOLOGY = ("Nordic Shoes: thanks for telling us, Alex, and sorry it wasn't better. Our customer care team will "
           "contact you within 2 business days to make it right.")


def at(offset: str) -> Around:
    return after(MONDAY_3PM, offset)


async def test_five_gets_the_review_link(simulation) -> None:
    """Question at +3d; a 5 at +3d2h: the review request, a marketing text, waits for the
    1-per-24h cap to free (24 hours after the question, +4d). No follow-up tag."""
    async with simulation(shipped()) as run:
        await run.customer(**RETURNING)
        assert await run.enter("post_purchase", trigger=PURCHASE)
        await run.at("reply:rating@+3d2h 5")
        timeline = await run.timeline("post_purchase")
        link = short_link(run, "review")
        target = link_target(run, sms(timeline)[1]["text"])
        member_of = segments(run)
    question, review = sms(timeline)
    assert question == {**question, "step": "rating", "status": "sent", "at": at("3d"), "text": QUESTION}
    assert [(entry["value"], entry["at"]) for entry in actions(timeline, "answer")] == [(5, at("3d2h"))]
    assert review["step"] == "review" and review["status"] == "sent" and review["at"] == at("4d")
    assert review["text"] == ("Nordic Shoes: thank you, Alex! Would you share that in a quick review? "
                              f"It helps other shoppers find their fit: {link}")
    assert target == "https://nordicshoes.example/reviews/new"
    assert "needs_follow_up" not in member_of
    assert timeline["outcome"] == "completed"


@pytest.mark.parametrize("score", ["2", "3"])
async def test_low_score_gets_an_apology_and_the_follow_up_tag(simulation, score: str) -> None:
    """A 2 or a 3 (1-3 is low): needs_follow_up and the apology at once (transactional)."""
    async with simulation(shipped()) as run:
        await run.customer(**RETURNING)
        assert await run.enter("post_purchase", trigger=PURCHASE)
        await run.at(f"reply:rating@+3d2h {score}")
        timeline = await run.timeline("post_purchase")
        member_of = segments(run)
    _question, apology = sms(timeline)
    assert apology == {**apology, "step": "apology", "status": "sent", "at": at("3d2h"), "text": APOLOGY}
    [tagged] = actions(timeline, "segments")
    assert tagged["add"] == ["needs_follow_up"] and tagged["at"] == at("3d2h")
    assert "needs_follow_up" in member_of
    assert timeline["outcome"] == "completed"


async def test_no_answer_ends_quietly_after_two_days(simulation) -> None:
    """No reply: the question times out 2 days after it went (+5d); nothing more is sent."""
    async with simulation(shipped()) as run:
        await run.customer(**RETURNING)
        assert await run.enter("post_purchase", trigger=PURCHASE)
        timeline = await run.timeline("post_purchase")
        member_of = segments(run)
    assert [entry["step"] for entry in sms(timeline)] == ["rating"]
    assert [entry["at"] for entry in actions(timeline, "no_answer")] == [at("5d")]
    assert member_of == []
    assert timeline["outcome"] == "completed" and timeline["ended_at"] == at("5d")


async def test_invalid_reply_is_reprompted(simulation) -> None:
    """'great shoes' is not a 1-5 number: the reprompt goes at once; then a 4 gets the review link."""
    async with simulation(shipped()) as run:
        await run.customer(**RETURNING)
        assert await run.enter("post_purchase", trigger=PURCHASE)
        await run.at("reply:rating@+3d1h great shoes")
        await run.at("reply:rating@+3d2h 4")
        timeline = await run.timeline("post_purchase")
    assert [(entry["step"], entry["at"]) for entry in sms(timeline)] == [
        ("rating", at("3d")), ("rating.reprompt", at("3d1h")), ("review", at("4d"))]
    assert sms(timeline)[1]["text"] == ("Sorry, we didn't get that. Please reply with a number from 1 (not happy) "
                                        "to 5 (love it).")


async def test_question_due_at_night_waits_for_the_morning(simulation) -> None:
    """Bought at 23:00 in New York: the question is due at 23:00 three days later, inside quiet
    hours, and goes at 08:00 the next morning; the 2-day timeout runs from that send."""
    night = utc(2026, 3, 3, 4, 0)  # Monday 2026-03-02, 23:00 EST
    async with simulation(shipped(), start=night) as run:
        await run.customer(**RETURNING)
        assert await run.enter("post_purchase", trigger=PURCHASE)
        timeline = await run.timeline("post_purchase")
    [question] = sms(timeline)
    assert question["status"] == "sent" and question["at"] == around("2026-03-06T13:00:00Z")  # Friday 08:00 EST
    assert timeline["ended_at"] == around("2026-03-08T13:00:00Z")


async def test_first_order_already_asked_about_in_welcome_is_skipped(simulation) -> None:
    """A first order of a customer welcome has marked (first_order_feedback = asked): no
    question; the run ends at +3d with asked_in_welcome."""
    async with simulation(shipped()) as run:
        await run.customer(attributes={"first_order_feedback": "asked"})
        assert await run.enter("post_purchase", trigger=PURCHASE)
        timeline = await run.timeline("post_purchase")
    assert sms(timeline) == []
    assert timeline["outcome"] == "asked_in_welcome" and timeline["ended_at"] == at("3d")


async def test_first_order_not_asked_about_elsewhere_gets_the_question(simulation) -> None:
    """A first order without welcome's mark (e.g. the customer opted in long ago) is asked about."""
    async with simulation(shipped()) as run:
        await run.customer()
        assert await run.enter("post_purchase", trigger=PURCHASE)
        timeline = await run.timeline("post_purchase")
    assert [entry["step"] for entry in sms(timeline)] == ["rating"]


async def test_at_most_one_run_per_30_days(simulation) -> None:
    """A second purchase during the run (+1d) and another after it (+10d) start no new run."""
    async with simulation(shipped()) as run:
        await run.customer(**RETURNING)
        assert await run.enter("post_purchase", trigger=PURCHASE)
        await run.at('purchase@+1d {"amount": 30}')
        await run.at('purchase@+10d {"amount": 30}')
        assert len(run.enrollments("post_purchase")) == 1
        await run.at('purchase@+31d {"amount": 30}')
        assert len(run.enrollments("post_purchase")) == 2


async def test_rating_question_needs_consent(simulation) -> None:
    """A customer who has not opted in: the question is skipped (no_consent), so no answer
    can come and the run ends at once, at +3d."""
    async with simulation(shipped()) as run:
        await run.customer(sms_consent="none", **RETURNING)
        assert await run.enter("post_purchase", trigger=PURCHASE)
        timeline = await run.timeline("post_purchase")
    [question] = sms(timeline)
    assert question["status"] == "skipped" and question["reason"] == "no_consent" and question["at"] == at("3d")
    assert timeline["outcome"] == "completed" and timeline["ended_at"] == at("3d")


async def test_first_order_asked_in_welcome_is_not_asked_again_after_a_second_order(simulation) -> None:
    """welcome asks about the first order (+5d -> question at +8d). A second order at +6d does
    not start a run (one at a time), so the post_purchase run due at +8d is still about the
    first order, and must leave it to welcome: "nobody is asked twice about the same order"."""
    async with simulation(shipped()) as run:
        await run.customer()
        assert await run.enter("welcome")
        await run.at('purchase@+5d {"amount": 80}')
        await run.at('purchase@+6d {"amount": 30}')
        post_purchase = await run.timeline("post_purchase")
        welcome = await run.timeline("welcome")
    assert [entry["step"] for entry in sms(welcome)][-1] == "first_order_feedback"
    assert sms(post_purchase) == [], "the first order was asked about twice (welcome and post_purchase)"
    assert post_purchase["outcome"] == "asked_in_welcome"
