"""The redeem_reward step and reward_code(), and coupon() of an empty pool, run by the
real workflow and activities on the time-skipping server, on SQLite and PostgreSQL."""

from __future__ import annotations

import textwrap
from pathlib import Path

from sqlmodel import select

from language.validate import load_catalog
from store.db import session_scope
from store.tables import Coupon, PointsEntry, PooledCoupon
from tests.runtime.support import sms, write_journeys

LOYALTY = """
points: {per_currency_unit: 1}
coupons:
  SHIP: {discount: free shipping, expires_in: 30d, prefix: FS}
  PARTNER: {discount: "15%", pool: true}
rewards:
  free_shipping: {points: 500, coupon: SHIP}
"""
TREAT = """
id: treat
name: Treat
trigger: {event: signup}
steps:
  - award_points: {points: 600, reason: "Welcome bonus"}
  - id: first
    redeem_reward: {reward: free_shipping}
  - id: second
    redeem_reward: {reward: free_shipping}
  - id: told
    send_sms: {text: "Your code {{ reward_code('first') }}{% if not reward_code('second') %}, one only{% endif %}"}
  - if: "reward_code('second')"
    then: [{exit: two}]
    else: [{exit: one}]
"""
PARTNER = """
id: partner
name: Partner
trigger: {event: signup}
steps:
  - id: offer
    send_sms: {text: "Partner code {{ coupon('PARTNER') }}"}
  - id: again
    send_sms: {text: "Another {{ coupon('PARTNER') }}"}
"""


def _catalog(root: Path, journeys: dict[str, str]):  # type: ignore[no-untyped-def]
    write_journeys(root, {})
    (root / "loyalty.yaml").write_text(textwrap.dedent(LOYALTY))
    for name, text in journeys.items():
        (root / f"{name}.yaml").write_text(textwrap.dedent(text))
    return load_catalog(root)


async def test_redeem_reward_spends_once_and_later_steps_read_the_code(journeys_dir: Path, simulation) -> None:
    async with simulation(_catalog(journeys_dir, {"treat": TREAT})) as run:
        await run.customer()
        assert await run.enter("treat")
        timeline = await run.timeline("treat")
        customer = run.customer_row()
    rewards = [e for e in timeline["timeline"] if e["action"] == "reward"]
    with session_scope(run.sim.db) as session:
        [coupon] = session.exec(select(Coupon)).all()
        spent = [e.points for e in session.exec(select(PointsEntry).where(PointsEntry.points < 0)).all()]
    assert [(r["step"], r["code"], r["reason"]) for r in rewards] == [
        ("first", coupon.code, None), ("second", None, "not_enough_points")]
    assert rewards[0]["balance"] == 100 and spent == [-500] and customer.points == 100
    assert sms(timeline)[0]["text"] == f"Your code {coupon.code}, one only"
    assert timeline["outcome"] == "one"


async def test_coupon_of_a_pool_issues_its_codes_and_an_empty_pool_skips_the_text(journeys_dir: Path,
                                                                                 simulation) -> None:
    async with simulation(_catalog(journeys_dir, {"partner": PARTNER})) as run:
        with session_scope(run.sim.db) as session:
            session.add(PooledCoupon(code="PARTNER1", series="PARTNER", imported_at=run.sim.clock))
        await run.customer()
        assert await run.enter("partner")
        timeline = await run.timeline("partner")
    texts = sms(timeline)
    assert texts[0]["text"] == "Partner code PARTNER1"
    assert (texts[1]["status"], texts[1]["reason"]) == ("skipped", "coupon_pool_empty")
    with session_scope(run.sim.db) as session:
        assert [(c.code, c.customer_id) for c in session.exec(select(Coupon)).all()] == [("PARTNER1",
                                                                                          "sim-customer")]
        assert session.exec(select(PooledCoupon)).all() == []
