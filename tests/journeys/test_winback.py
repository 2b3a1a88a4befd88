"""winback, as shipped: on entering lapsed_30d, a survey; 30 days on, to non-clickers, a
contest; 30 days on, to those who clicked neither, a unique WINBACK20 coupon; then
clickers move to `active` and the rest are unsubscribed (sunset). A purchase ends it.

Every run starts on Monday 2026-03-02 at 15:00 UTC, 10:00 in New York (the default time
zone; 11:00 once daylight saving starts on March 8): every text falls outside quiet hours."""

from __future__ import annotations

from tests.journeys.support import Around, actions, after, coupons, link_target, segments, shipped, short_link, sms
from tests.runtime.support import MONDAY_3PM

LAPSED = {"orders": [{"at": "-30d", "amount": 50}]}


def at(offset: str) -> Around:
    return after(MONDAY_3PM, offset)


async def test_nobody_clicks_survey_contest_coupon_then_sunset(simulation) -> None:
    """No clicks: survey at once, contest at +30d, coupon at +60d, and after the coupon's 14
    days (+74d) the customer joins `sunset` and is unsubscribed (consent opted_out)."""
    async with simulation(shipped()) as run:
        await run.customer(**LAPSED)
        assert await run.enter("winback")
        timeline = await run.timeline("winback")
        links = {step: short_link(run, step) for step in ("survey", "contest", "coupon")}
        targets = [link_target(run, entry["text"]) for entry in sms(timeline)]
        [coupon] = coupons(run)
        customer = run.customer_row()
        member_of = segments(run)
    survey, contest, offer = sms(timeline)
    assert [(e["step"], e["at"], e["status"]) for e in sms(timeline)] == [
        ("survey", at("0s"), "sent"), ("contest", at("30d"), "sent"), ("coupon", at("60d"), "sent")]
    assert survey["text"] == ("Nordic Shoes: Hi Alex, we miss you! What would bring you back? Tell us in 2 quick "
                              f"questions: {links['survey']} Reply STOP to opt out.")
    assert contest["text"] == ("Nordic Shoes: Hi Alex, want to win a $250 gift card? Enter our monthly draw in 30 "
                               "seconds, no purchase necessary. Rules and entry: "
                               f"{links['contest']} Reply STOP to opt out.")
    assert offer["text"] == ("Nordic Shoes: Hi Alex, it's been a while. Here's 20% off your next pair, just for you: "
                             f"code {coupon.code}, valid 14 days. Shop now: {links['coupon']}")
    assert targets == ["https://nordicshoes.example/survey/winback", "https://nordicshoes.example/giveaway",
                       "https://nordicshoes.example/"]
    assert coupon.series == "WINBACK20" and coupon.code.startswith("WB") and coupon.expires_at == at("74d")
    [moved] = actions(timeline, "segments")
    assert moved["add"] == ["sunset"] and moved["remove"] == ["active"] and moved["at"] == at("74d")
    [unsubscribed] = actions(timeline, "unsubscribe")
    assert unsubscribed["reason"] == "inactive" and unsubscribed["at"] == at("74d")
    assert customer.sms_consent == "opted_out" and member_of == ["sunset"]
    assert timeline["outcome"] == "completed" and timeline["ended_at"] == at("74d")


async def test_survey_click_skips_contest_and_coupon_and_moves_to_active(simulation) -> None:
    """A click on the survey at +2d: no contest, no coupon; at +60d the customer joins
    `active` and stays subscribed."""
    async with simulation(shipped()) as run:
        await run.customer(**LAPSED)
        assert await run.enter("winback")
        await run.at("click:survey@+2d")
        timeline = await run.timeline("winback")
        customer = run.customer_row()
        member_of = segments(run)
    assert [entry["step"] for entry in sms(timeline)] == ["survey"]
    assert [(entry["at"], entry["result"]) for entry in actions(timeline, "if")] == [
        (at("30d"), False), (at("60d"), False)]
    [moved] = actions(timeline, "segments")
    assert moved["add"] == ["active"] and moved["at"] == at("60d")
    assert actions(timeline, "unsubscribe") == []
    assert customer.sms_consent == "opted_in" and member_of == ["active"]
    assert timeline["outcome"] == "completed" and timeline["ended_at"] == at("60d")


async def test_contest_click_skips_the_coupon(simulation) -> None:
    """No survey click, a contest click at +31d: no coupon at +60d; moved to `active`."""
    async with simulation(shipped()) as run:
        await run.customer(**LAPSED)
        assert await run.enter("winback")
        await run.at("click:contest@+31d")
        timeline = await run.timeline("winback")
        issued = coupons(run)
        customer = run.customer_row()
    assert [entry["step"] for entry in sms(timeline)] == ["survey", "contest"]
    assert issued == []
    assert actions(timeline, "segments")[0]["add"] == ["active"]
    assert customer.sms_consent == "opted_in"
    assert timeline["outcome"] == "completed" and timeline["ended_at"] == at("60d")


async def test_coupon_click_moves_to_active_after_the_coupon_life(simulation) -> None:
    """Only the coupon is clicked (+61d): after its 14 days (+74d), `active`, not unsubscribed."""
    async with simulation(shipped()) as run:
        await run.customer(**LAPSED)
        assert await run.enter("winback")
        await run.at("click:coupon@+61d")
        timeline = await run.timeline("winback")
        customer = run.customer_row()
    moved = actions(timeline, "segments")[0]
    assert moved["add"] == ["active"] and moved["at"] == at("74d")
    assert customer.sms_consent == "opted_in"


async def test_purchase_during_a_wait_exits_at_once(simulation) -> None:
    """A purchase at +35d (waiting for the coupon): exited:purchase at +35d, no coupon, no sunset."""
    async with simulation(shipped()) as run:
        await run.customer(**LAPSED)
        assert await run.enter("winback")
        await run.at('purchase@+35d {"amount": 59}')
        timeline = await run.timeline("winback")
        customer = run.customer_row()
        [enrollment] = run.enrollments("winback")
    assert [entry["step"] for entry in sms(timeline)] == ["survey", "contest"]
    assert timeline["outcome"] == "exited:purchase" and timeline["ended_at"] == at("35d")
    assert enrollment.outcome == "exited:purchase"
    assert customer.sms_consent == "opted_in"


async def test_stop_is_not_unsubscribed_again_or_put_in_sunset(simulation) -> None:
    """STOP at +10d: contest and coupon are skipped (opted_out), and the customer, already
    opted out, is neither unsubscribed again nor put in `sunset`."""
    async with simulation(shipped()) as run:
        await run.customer(**LAPSED)
        assert await run.enter("winback")
        await run.at("stop@+10d")
        timeline = await run.timeline("winback")
        member_of = segments(run)
    assert [(e["step"], e["status"], e.get("reason")) for e in sms(timeline)] == [
        ("survey", "sent", None), ("contest", "skipped", "opted_out"), ("coupon", "skipped", "opted_out")]
    assert actions(timeline, "segments") == [] and actions(timeline, "unsubscribe") == []
    assert member_of == []
    assert timeline["outcome"] == "completed"


async def test_only_subscribers_enter(simulation) -> None:
    """The audience is SMS subscribers with an order: a customer without consent (who must
    never be marked opted out by the sunset step) and a customer who never bought do not enter."""
    async with simulation(shipped()) as run:
        await run.customer(id="no-consent", sms_consent="none", **LAPSED)
        await run.customer(id="never-bought")
        assert not await run.enter("winback", customer="no-consent")
        assert not await run.enter("winback", customer="never-bought")
        assert run.enrollments("winback", customer="no-consent") == []
        assert run.customer_row("no-consent").sms_consent == "none"
