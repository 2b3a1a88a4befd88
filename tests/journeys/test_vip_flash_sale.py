"""vip_flash_sale, as shipped: the Friday 10:00 broadcast to `vip` with early access, and
the flash_offer A/B split: early_access 45%, early_access_extra 45% (plus a unique
VIPEXTRA10 code), holdout 10% (no text). Subscribers only; a capped text is skipped.

The schedule trigger has no event: the simulation enters each customer directly, at the
moment the broadcast would, Friday 2026-03-06 at 15:00 UTC = 10:00 in New York."""

from __future__ import annotations

import pytest

from tests.journeys.support import Around, after, coupons, link_target, shipped, short_link, sms, utc
from workflows.steps.branching import assign_variant

FRIDAY_10AM = utc(2026, 3, 6, 15, 0)
VIP = {"points": 800, "segments": ["vip"]}
VARIANTS = shipped().journey("vip_flash_sale").journey.steps[0].split.variants  # type: ignore[union-attr]


def customer_in(variant: str) -> str:
    """The first customer id `vip-<n>` the split puts in `variant` (assignment is a stable hash)."""
    return next(f"vip-{n}" for n in range(1000)
                if assign_variant("vip_flash_sale", "flash_offer", f"vip-{n}", VARIANTS).name == variant)


EARLY, EXTRA, HOLDOUT = customer_in("early_access"), customer_in("early_access_extra"), customer_in("holdout")


def at(offset: str) -> Around:
    return after(FRIDAY_10AM, offset)


async def test_each_variant_gets_its_text_and_the_holdout_none(simulation, sender) -> None:
    """One customer per variant: early_access gets the plain early-access text,
    early_access_extra the text with its own VIP code (valid 3 days), the holdout nothing;
    each run records its variant."""
    async with simulation(shipped(), start=FRIDAY_10AM) as run:
        for customer in (EARLY, EXTRA, HOLDOUT):
            await run.customer(id=customer, **VIP)
            assert await run.enter("vip_flash_sale", customer=customer)
        early, extra, holdout = [await run.timeline("vip_flash_sale", customer=c) for c in (EARLY, EXTRA, HOLDOUT)]
        links = {step: short_link(run, step) for step in ("early_access", "early_access_extra")}
        targets = {link_target(run, sms(t)[0]["text"]) for t in (early, extra)}
        [code] = coupons(run, customer=EXTRA)
        variants = {c: run.enrollments("vip_flash_sale", customer=c)[0].variants for c in (EARLY, EXTRA, HOLDOUT)}
        others = coupons(run, customer=EARLY) + coupons(run, customer=HOLDOUT)
    [early_text] = sms(early)
    assert early_text == {**early_text, "step": "early_access", "status": "sent", "at": at("0s"), "text": (
        "Nordic Shoes VIP: Alex, our weekend flash sale opens to you 24 hours before everyone else: "
        f"{links['early_access']} Reply STOP to opt out.")}
    [extra_text] = sms(extra)
    assert extra_text == {**extra_text, "step": "early_access_extra", "status": "sent", "at": at("0s"), "text": (
        f"Nordic Shoes VIP: our weekend flash sale opens to you first, plus an extra 10% off with code {code.code} "
        "(3 days). Shop 24 hours before everyone else: "
        f"{links['early_access_extra']} Reply STOP to opt out.")}
    assert code.series == "VIPEXTRA10" and code.code.startswith("VIP") and code.expires_at == at("3d")
    assert others == []
    assert targets == {"https://nordicshoes.example/flash-sale?access=vip"}
    assert sms(holdout) == [] and holdout["outcome"] == "completed"
    assert variants == {EARLY: {"flash_offer": "early_access"}, EXTRA: {"flash_offer": "early_access_extra"},
                        HOLDOUT: {"flash_offer": "holdout"}}
    assert len(sender.sent) == 2


@pytest.mark.parametrize("customer", [EXTRA, HOLDOUT])
async def test_same_variant_next_friday(simulation, customer: str) -> None:
    """Next Friday (+7d) the customer enters again (reentry 6d) and lands in the same variant."""
    async with simulation(shipped(), start=FRIDAY_10AM) as run:
        await run.customer(id=customer, **VIP)
        assert await run.enter("vip_flash_sale", customer=customer)
        await run.at("noop@+7d", customer=customer)
        assert await run.enter("vip_flash_sale", customer=customer), "next Friday's entry was refused (reentry 6d)"
        await run.at("noop@+7d1h", customer=customer)
        weeks = [enrollment.variants for enrollment in run.enrollments("vip_flash_sale", customer=customer)]
        texts = [message.step_id for message in run.messages(customer) if message.status == "sent"]
    expected = assign_variant("vip_flash_sale", "flash_offer", customer, VARIANTS).name
    assert weeks == [{"flash_offer": expected}] * 2
    assert texts == ([] if expected == "holdout" else [expected] * 2)


async def test_never_twice_in_a_week(simulation) -> None:
    """A second entry 3 days after the first is refused (reentry 6d)."""
    async with simulation(shipped(), start=FRIDAY_10AM) as run:
        await run.customer(id=EARLY, **VIP)
        assert await run.enter("vip_flash_sale", customer=EARLY)
        await run.at("noop@+3d", customer=EARLY)
        assert not await run.enter("vip_flash_sale", customer=EARLY)
        assert len(run.enrollments("vip_flash_sale", customer=EARLY)) == 1


async def test_a_capped_text_is_skipped(simulation) -> None:
    """The customer got a marketing text (the Gold congratulations) an hour before: early
    access that came a day late would not be early, so it is skipped (frequency_cap)."""
    async with simulation(shipped(), start=FRIDAY_10AM) as run:
        await run.customer(id=EARLY, **VIP)
        await run.at('tier_changed@+0s {"from": "silver", "to": "gold"}', customer=EARLY)
        await run.at("noop@+1h", customer=EARLY)
        assert await run.enter("vip_flash_sale", customer=EARLY)
        congrats = await run.timeline("tier_upgrade", customer=EARLY)
        timeline = await run.timeline("vip_flash_sale", customer=EARLY)
    assert sms(congrats)[0]["status"] == "sent" and sms(congrats)[0]["at"] == at("0s")
    [text] = sms(timeline)
    assert text["status"] == "skipped" and text["reason"] == "frequency_cap" and text["at"] == at("1h")
    assert timeline["outcome"] == "completed"


@pytest.mark.parametrize("consent", ["none", "pending", "opted_out"])
async def test_only_subscribers_enter(simulation, consent: str) -> None:
    """Audience: SMS subscribers only, so the holdout compares like with like; others do not
    enter at all (not even into the holdout)."""
    async with simulation(shipped(), start=FRIDAY_10AM) as run:
        await run.customer(id=EARLY, sms_consent=consent, **VIP)
        assert not await run.enter("vip_flash_sale", customer=EARLY)
        assert run.enrollments("vip_flash_sale", customer=EARLY) == []
