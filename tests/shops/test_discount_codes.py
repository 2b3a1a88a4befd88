"""Platform-backed coupon codes, through the real journey workflow and send activity on the
time-skipping server (SQLite and PostgreSQL), against a fake Shopify / WooCommerce admin
API (tests/shops/fake_admin.py): each code is created in the shop once, before its text;
rate limits are waited out; an unknown outcome is looked up, never created twice; a shop
that is down defers the text until it is back."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from language.validate import load_catalog
from processes.simulate import Simulation
from shops.shopify import ShopifyAdmin
from shops.woocommerce import WooCommerceAdmin
from store.db import session_scope
from store.tables import Coupon, Message, ShopDiscount
from tests.runtime.support import MONDAY_3PM, CountingSender, Run, write_journeys
from tests.shops.fake_admin import TOKEN, FakeAdmin

SETTINGS = """
brand: Nordic Shoes
default_country: US
default_timezone: America/New_York
quiet_hours: {start: "21:00", end: "08:00"}
"""
LOYALTY = """
points: {per_currency_unit: 1}
coupons:
  SHOP15: {discount: "15%", platform: shopify, price_rule_id: 507328175, prefix: SH}
  WOO10: {discount: "10 off", platform: woocommerce, type: fixed, value: 10, expires_in: 30d}
  LOCAL: {discount: "5%"}
"""
OFFERS = """
id: offers
name: Offers
trigger: {event: signup}
steps:
  - id: first
    send_sms: {text: "Take 15% with {{ coupon('SHOP15') }}, or {{ coupon('LOCAL') }}"}
  - wait: 1d
  - id: second
    send_sms: {text: "Again: {{ coupon('SHOP15') }}"}
"""
WOO = """
id: woo
name: Woo
trigger: {event: signup}
steps:
  - id: offer
    send_sms: {text: "10 off with {{ coupon('WOO10') }}"}
"""


@pytest.fixture
def fake() -> Iterator[FakeAdmin]:
    with FakeAdmin() as server:
        yield server


def catalog(root: Path, journey: str) -> Any:
    write_journeys(root, {}, settings=SETTINGS)
    (root / "loyalty.yaml").write_text(textwrap.dedent(LOYALTY))
    (root / f"{journey}.yaml").write_text(textwrap.dedent({"offers": OFFERS, "woo": WOO}[journey]))
    return load_catalog(root)


class Waits(list[float]):
    """Records the client's sleeps instead of sleeping (Retry-After is what is asked for)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def shops(fake: FakeAdmin, waits: Waits, timeout: float = 5.0) -> dict[str, Any]:
    return {"shopify": ShopifyAdmin("shop.example", TOKEN, base_url=fake.url, timeout=timeout, sleep=waits),
            "woocommerce": WooCommerceAdmin(fake.url, "ck_test", "cs_test", timeout=timeout, sleep=waits)}


def codes_in(text: str) -> list[str]:
    return re.findall(r"\b[A-Z0-9]{8,10}\b", text)


def reservations(db: Any) -> dict[str, tuple[str, str]]:
    with session_scope(db) as session:
        return {row.code: (row.series, row.state) for row in session.exec(select(ShopDiscount)).all()}


async def test_each_customer_and_step_gets_one_code_created_before_its_text(env, db, journeys_dir: Path,
                                                                             fake: FakeAdmin) -> None:
    fake.script["create"] = ["429"]  # Shopify's leaky bucket, once
    waits, sender = Waits(), CountingSender()
    async with Simulation(env, catalog(journeys_dir, "offers"), db, start=MONDAY_3PM, sender=sender,
                          shops=shops(fake, waits)) as sim:
        run = Run(sim)
        for who in ("c-1", "c-2"):
            await run.customer(id=who, phone=f"+1201555010{who[-1]}")
            assert await run.enter("offers", who)
            assert (await run.timeline("offers", who))["outcome"] == "completed"
    assert waits[:1] == [0.2]  # the 429's Retry-After, honoured
    with session_scope(db) as session:
        issued = {(c.customer_id, c.key.split(":")[-2], c.series): c.code for c in session.exec(select(Coupon))}
    shop_codes = {code for (_, _, series), code in issued.items() if series == "SHOP15"}
    assert len(shop_codes) == 4  # two customers x two steps
    assert set(fake.codes) == shop_codes  # the LOCAL series never reaches the shop
    assert len(fake.creates(201)) == 4 and len(fake.creates(429)) == 1
    assert set(reservations(db).values()) == {("SHOP15", "created")}
    texts = [sms.body for sms in sender.sent]
    assert len(texts) == 4 and all(any(code in fake.codes for code in codes_in(t)) for t in texts)
    assert all(code.startswith("SH") for code in shop_codes)


@pytest.mark.parametrize("failure", ["500_after", "stall_after"])
async def test_an_unknown_outcome_after_the_shop_made_the_code_is_looked_up_not_doubled(
        env, db, journeys_dir: Path, fake: FakeAdmin, failure: str) -> None:
    fake.script["create"] = [failure]  # the shop creates the code, then answers 500 or too late
    sender = CountingSender()
    async with Simulation(env, catalog(journeys_dir, "woo"), db, start=MONDAY_3PM, sender=sender,
                          shops=shops(fake, Waits(), timeout=0.5)) as sim:
        run = Run(sim)
        await run.customer(id="c-1", phone="+12015550101", email="ana@example.com")
        assert await run.enter("woo", "c-1")
        assert (await run.timeline("woo", "c-1"))["outcome"] == "completed"
    [code] = fake.codes
    assert len(fake.creates()) == 1  # created once; the retry looked it up by its code
    assert [m.body for m in sender.sent] == [f"10 off with {code}"]
    coupon = fake.codes[code]
    assert (coupon["discount_type"], coupon["amount"], coupon["usage_limit"]) == ("fixed_cart", "10.00", 1)
    assert coupon["email_restrictions"] == ["ana@example.com"] and coupon["date_expires_gmt"].startswith("2026-04-01T15:00")
    assert reservations(db) == {code: ("WOO10", "created")}


async def test_a_shop_that_is_down_defers_the_text_until_it_is_back(env, db, journeys_dir: Path,
                                                                   fake: FakeAdmin) -> None:
    fake.down = True
    sender = CountingSender()
    async with Simulation(env, catalog(journeys_dir, "woo"), db, start=MONDAY_3PM, sender=sender,
                          shops=shops(fake, Waits())) as sim:
        run = Run(sim)
        await run.customer(id="c-1", phone="+12015550101")
        assert await run.enter("woo", "c-1")
        await run.advance(timedelta(minutes=1))  # the first attempt has failed by now
        with session_scope(db) as session:
            [message] = session.exec(select(Message)).all()
            assert (message.status, message.reason) == ("deferred", "shop_code_unavailable")
        assert sender.sent == [] and fake.codes == {}
        [(code, state)] = reservations(db).items()
        assert state == ("WOO10", "pending")
        fake.down = False
        assert (await run.timeline("woo", "c-1"))["outcome"] == "completed"
    assert list(fake.codes) == [code] and len(fake.creates(201)) == 1
    assert [m.body for m in sender.sent] == [f"10 off with {code}"]
    with session_scope(db) as session:
        [message] = session.exec(select(Message)).all()
        assert message.status == "sent" and message.sent_at is not None
        assert message.sent_at >= MONDAY_3PM + timedelta(minutes=5)  # after the deferral


async def test_an_unconfigured_platform_or_a_refusal_never_sends_a_code_the_shop_lacks(
        env, db, journeys_dir: Path, fake: FakeAdmin) -> None:
    sender = CountingSender()
    async with Simulation(env, catalog(journeys_dir, "woo"), db, start=MONDAY_3PM, sender=sender, shops={}) as sim:
        run = Run(sim)
        await run.customer(id="c-1", phone="+12015550101")
        assert await run.enter("woo", "c-1")
        await run.advance(timedelta(minutes=1))
        with session_scope(db) as session:
            [message] = session.exec(select(Message)).all()
            assert (message.status, message.reason) == ("deferred", "shop_not_configured")
    assert sender.sent == []


@pytest.mark.parametrize(("series", "problem"), [
    ("{discount: x, platform: shopify}", "platform shopify needs price_rule_id"),
    ("{discount: x, platform: woocommerce, type: percent}", "needs type (percent or fixed) and value"),
    ("{discount: x, platform: woocommerce, type: percent, value: 150}", "a percent value is at most 100"),
    ("{discount: x, platform: shopify, price_rule_id: 1, pool: true}", "pool and platform go apart"),
    ("{discount: x, value: 5}", "apply only with platform"),
])
def test_a_platform_series_says_what_it_lacks_where(journeys_dir: Path, series: str, problem: str) -> None:
    from language.validate import InvalidJourneys

    write_journeys(journeys_dir, {}, settings=SETTINGS)
    (journeys_dir / "loyalty.yaml").write_text(f"points: {{per_currency_unit: 1}}\ncoupons:\n  S: {series}\n")
    with pytest.raises(InvalidJourneys) as raised:
        load_catalog(journeys_dir)
    assert problem in str(raised.value) and "loyalty.yaml:3" in str(raised.value)


def test_a_reward_cannot_spend_points_on_a_platform_series(journeys_dir: Path) -> None:
    from language.validate import InvalidJourneys

    write_journeys(journeys_dir, {}, settings=SETTINGS)
    (journeys_dir / "loyalty.yaml").write_text(textwrap.dedent(LOYALTY) + "rewards:\n  r: {points: 10, coupon: SHOP15}\n")
    with pytest.raises(InvalidJourneys, match="rewards do not support yet"):
        load_catalog(journeys_dir)
