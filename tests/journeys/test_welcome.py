"""welcome, as shipped: opt-in -> welcome text with a WELCOME10 code -> rewards explainer
2 days later -> (first order) a 1-5 question 3 days after it; 1-3 flags needs_follow_up.

Runs start on Monday 2026-03-02 at 15:00 UTC, 10:00 in New York (the default time zone,
outside quiet hours) unless a test moves the start into the night."""

from __future__ import annotations

from tests.journeys.support import (
    Around,
    actions,
    after,
    around,
    coupons,
    link_target,
    segments,
    shipped,
    short_link,
    sms,
    utc,
)
from tests.runtime.support import MONDAY_3PM

POINTS_INTRO = ("Nordic Shoes Rewards: you earn 1 point per $1. Earn 500 points in 12 months for Gold (free shipping, "
                "early access to sales), 2,000 for Platinum. You have {points} points: {link}")
QUESTION = ("Nordic Shoes: thanks for your first order, Alex! How did it go? "
            "Reply with a number from 1 (poor) to 5 (great).")


def at(offset: str) -> Around:
    return after(MONDAY_3PM, offset)


async def test_welcome_text_then_points_intro_then_no_first_order(simulation) -> None:
    """No purchase: welcome text with a unique WELCOME10 code at once, the explainer at +2d,
    then 28 days of waiting for a first order end with no_first_order at +30d."""
    async with simulation(shipped()) as run:
        await run.customer()
        assert await run.enter("welcome")
        timeline = await run.timeline("welcome")
        [coupon] = coupons(run)
        welcome_link, intro_link = short_link(run, "welcome"), short_link(run, "points_intro")
        targets = [link_target(run, entry["text"]) for entry in sms(timeline)]
    welcome, intro = sms(timeline)
    assert coupon.series == "WELCOME10" and coupon.expires_at == at("30d")  # valid 30 days
    assert welcome == {**welcome, "step": "welcome", "status": "sent", "at": at("0s"), "text": (
        f"Welcome to Nordic Shoes Rewards, Alex! Here's 10% off your next order: {coupon.code} (valid 30 days). "
        f"You also earn points on every purchase: {welcome_link}")}
    assert intro["step"] == "points_intro" and intro["status"] == "sent" and intro["at"] == at("2d")
    assert intro["text"] == POINTS_INTRO.format(points=0, link=intro_link)
    assert targets == ["https://nordicshoes.example/new-arrivals", "https://nordicshoes.example/rewards"]
    [waited] = actions(timeline, "wait_for")
    assert waited["at"] == at("2d") and waited["until"] == at("30d")
    assert timeline["outcome"] == "no_first_order" and timeline["ended_at"] == at("30d")


async def test_first_order_then_low_score_flags_for_follow_up(simulation) -> None:
    """First order at +5d: the question 3 days later (+8d); a 2 adds needs_follow_up and the
    apology goes out at once (transactional, so the 1-per-24h cap does not hold it back).
    post_purchase, started by the same order, leaves it to welcome (asked_in_welcome)."""
    async with simulation(shipped()) as run:
        await run.customer()
        assert await run.enter("welcome")
        await run.at('purchase@+5d {"amount": 80}')
        await run.at("reply:first_order_feedback@+8d2h 2")
        timeline = await run.timeline("welcome")
        post_purchase = await run.timeline("post_purchase")
        customer = run.customer_row()
        member_of = segments(run)
    steps = [(entry["step"], entry["at"], entry["status"]) for entry in sms(timeline)]
    assert steps == [("welcome", at("0s"), "sent"), ("points_intro", at("2d"), "sent"),
                     ("first_order_feedback", at("8d"), "sent"), ("first_order_sorry", at("8d2h"), "sent")]
    assert sms(timeline)[2]["text"] == QUESTION
    assert sms(timeline)[3]["text"] == (
        "Nordic Shoes: thanks for telling us, Alex, and sorry it wasn't better. Our customer care team will "
        "contact you within 2 business days to make it right.")
    [answer] = actions(timeline, "answer")
    assert answer["value"] == 2 and answer["at"] == at("8d2h")
    [tagged] = actions(timeline, "segments")
    assert tagged["add"] == ["needs_follow_up"] and tagged["at"] == at("8d2h")
    assert "needs_follow_up" in member_of
    assert customer.attributes["first_order_feedback"] == "asked"
    assert timeline["outcome"] == "completed"
    assert post_purchase["outcome"] == "asked_in_welcome" and post_purchase["ended_at"] == at("8d")
    assert sms(post_purchase) == []


async def test_first_order_high_score_gets_the_review_link_and_no_tag(simulation) -> None:
    """A 5 is not low: no needs_follow_up; the review request is marketing, so the 1-per-24h
    cap holds it until 24 hours after the question (+9d)."""
    async with simulation(shipped()) as run:
        await run.customer()
        assert await run.enter("welcome")
        await run.at('purchase@+5d {"amount": 80}')
        await run.at("reply:first_order_feedback@+8d2h 5")
        timeline = await run.timeline("welcome")
        review_link = short_link(run, "first_order_review")
        target = link_target(run, sms(timeline)[-1]["text"])
        member_of = segments(run)
    review = sms(timeline)[-1]
    assert review["step"] == "first_order_review" and review["status"] == "sent" and review["at"] == at("9d")
    assert review["text"] == ("Nordic Shoes: thank you, Alex! Would you share that in a quick review? "
                              f"It helps other shoppers find their fit: {review_link}")
    assert target == "https://nordicshoes.example/reviews/new"
    assert actions(timeline, "segments") == [] and "needs_follow_up" not in member_of
    assert timeline["outcome"] == "completed"


async def test_invalid_reply_is_reprompted_once(simulation) -> None:
    """A reply without a 1-5 number gets the reprompt at once; the next valid reply (4) counts."""
    async with simulation(shipped()) as run:
        await run.customer()
        assert await run.enter("welcome")
        await run.at('purchase@+5d {"amount": 80}')
        await run.at("reply:first_order_feedback@+8d1h loved them")
        await run.at("reply:first_order_feedback@+8d2h 4")
        timeline = await run.timeline("welcome")
    reprompt = next(entry for entry in sms(timeline) if entry["step"] == "first_order_feedback.reprompt")
    assert reprompt["status"] == "sent" and reprompt["at"] == at("8d1h")
    assert reprompt["text"] == "Sorry, we didn't get that. Please reply with a number from 1 (poor) to 5 (great)."
    assert [entry["at"] for entry in actions(timeline, "invalid_reply")] == [at("8d1h")]
    assert [entry["value"] for entry in actions(timeline, "answer")] == [4]
    assert sms(timeline)[-1]["step"] == "first_order_review"


async def test_customer_who_bought_before_joining_gets_no_first_order_question(simulation) -> None:
    """An order 40 days before the opt-in: both texts (the explainer shows the 40 points it
    earned), then existing_customer at +2d."""
    async with simulation(shipped()) as run:
        await run.customer(orders=[{"at": "-40d", "amount": 40}])
        assert await run.enter("welcome")
        timeline = await run.timeline("welcome")
        intro_link = short_link(run, "points_intro")
    assert [entry["step"] for entry in sms(timeline)] == ["welcome", "points_intro"]
    assert sms(timeline)[1]["text"] == POINTS_INTRO.format(points=40, link=intro_link)
    assert timeline["outcome"] == "existing_customer" and timeline["ended_at"] == at("2d")


async def test_first_order_in_the_first_two_days_is_asked_about_after_the_explainer(simulation) -> None:
    """A first order at +1d: no wait for a purchase; the question goes 3 days after the
    explainer (+5d), and post_purchase (its own check at +4d) leaves it to welcome."""
    async with simulation(shipped()) as run:
        await run.customer()
        assert await run.enter("welcome")
        await run.at('purchase@+1d {"amount": 80}')
        await run.at("reply:first_order_feedback@+5d1h 5")
        timeline = await run.timeline("welcome")
        post_purchase = await run.timeline("post_purchase")
    assert actions(timeline, "wait_for") == []
    question = next(entry for entry in sms(timeline) if entry["step"] == "first_order_feedback")
    assert question["at"] == at("5d") and question["text"] == QUESTION
    assert post_purchase["outcome"] == "asked_in_welcome" and post_purchase["ended_at"] == at("4d")


async def test_opt_in_at_night_is_welcomed_at_0800(simulation) -> None:
    """Opted in at 21:30 in New York: the welcome text waits for 08:00 (quiet hours), and the
    explainer follows 2 days after it was sent."""
    night = utc(2026, 3, 3, 2, 30)  # Monday 2026-03-02, 21:30 EST
    async with simulation(shipped(), start=night) as run:
        await run.customer()
        assert await run.enter("welcome")
        await run.at("stop@+3d")  # end the run early: only the first two texts matter here
        timeline = await run.timeline("welcome")
    assert [(entry["step"], entry["at"]) for entry in sms(timeline)] == [
        ("welcome", around("2026-03-03T13:00:00Z")), ("points_intro", around("2026-03-05T13:00:00Z"))]


async def test_stop_ends_the_run(simulation) -> None:
    """STOP a day in: exit_on opted_out ends the run at once (exited:opted_out); no explainer."""
    async with simulation(shipped()) as run:
        await run.customer()
        assert await run.enter("welcome")
        await run.at("stop@+1d")
        timeline = await run.timeline("welcome")
    assert [entry["step"] for entry in sms(timeline)] == ["welcome"]
    assert timeline["outcome"] == "exited:opted_out" and timeline["ended_at"] == at("1d")


async def test_yes_to_the_double_opt_in_starts_welcome(simulation) -> None:
    """A pending subscriber texts YES: consent becomes opted_in, which starts welcome at once."""
    async with simulation(shipped()) as run:
        await run.customer(sms_consent="pending")
        await run.at("reply:confirm@+10m YES")
        await run.at("stop@+1d")  # end the run early: only its start matters here
        timeline = await run.timeline("welcome")
    [welcome] = [entry for entry in sms(timeline) if entry["step"] == "welcome"]
    assert timeline["started_at"] == at("10m")
    assert welcome["status"] == "sent" and welcome["at"] == at("10m")


async def test_marketing_texts_need_consent(simulation) -> None:
    """Entered without consent (still pending): both texts are skipped with no_consent, no code
    is issued, and the run goes on to wait for a first order."""
    async with simulation(shipped()) as run:
        await run.customer(sms_consent="pending")
        assert await run.enter("welcome")
        timeline = await run.timeline("welcome")
        issued = coupons(run)
    assert [(entry["step"], entry["status"], entry.get("reason")) for entry in sms(timeline)] == [
        ("welcome", "skipped", "no_consent"), ("points_intro", "skipped", "no_consent")]
    assert issued == []
    assert timeline["outcome"] == "no_first_order"
