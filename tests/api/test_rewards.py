"""Rewards and coupons over HTTP and SMS: POST /customers/{id}/rewards/{reward},
GET /coupons/{code}, POST /coupons/{code}/redeem, and the REDEEM text answered through
Twilio's inbound webhook. The real application, on SQLite and PostgreSQL."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from core.clock import utcnow
from language.validate import load_catalog
from processes.simulate import CustomerSpec
from store.db import session_scope
from store.tables import Coupon, Message, PointsEntry, PooledCoupon
from tests.api.conftest import API_SETTINGS, AUTH, WELCOME, Api, serve_api
from tests.runtime.support import write_journeys

NUMBER = "+12015550177"
LOYALTY = """
points: {per_currency_unit: 1}
coupons:
  SHIP: {discount: free shipping, expires_in: 30d, prefix: FS}
  PLATFORM: {discount: "15%", pool: true}
rewards:
  free_shipping: {points: 500, coupon: SHIP}
  platform_15: {points: 300, coupon: PLATFORM}
"""


@pytest.fixture
async def api(tmp_path: Path, env, db) -> AsyncIterator[Api]:  # type: ignore[no-untyped-def]

    root = tmp_path / "journeys"
    write_journeys(root, {"welcome": WELCOME}, settings=API_SETTINGS)
    (root / "loyalty.yaml").write_text(textwrap.dedent(LOYALTY))
    catalog = load_catalog(root)
    async with serve_api(env, db, catalog) as api:
        yield api


async def _customer(api: Api, customer_id: str, points: int, phone: str | None = None) -> None:
    await api.run.sim.add_customer(CustomerSpec(id=customer_id, phone=phone))
    with session_scope(api.run.sim.db) as session:
        session.add(PointsEntry(key=f"seed:{customer_id}", customer_id=customer_id, points=points, reason="seed",
                                occurred_at=utcnow() - timedelta(hours=1), source="test"))


def _spent(api: Api, customer_id: str) -> list[int]:
    with session_scope(api.run.sim.db) as session:
        return [e.points for e in session.exec(select(PointsEntry).where(PointsEntry.customer_id == customer_id,
                                                                         PointsEntry.points < 0)).all()]


async def _redeem(api: Api, customer_id: str, reward: str, **kwargs: Any) -> Any:
    return await api.http.post(f"/customers/{customer_id}/rewards/{reward}", **kwargs)


# --- POST /customers/{id}/rewards/{reward} -------------------------------------------------------


async def test_redeem_through_the_api_is_idempotent_by_key_and_never_overdraws(api: Api) -> None:
    await _customer(api, "c1", 700)
    first = await _redeem(api, "c1", "free_shipping", headers={**AUTH, "Idempotency-Key": "order-1"})
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["points"], body["balance"], body["repeat"], body["discount"]) == (500, 200, False, "free shipping")
    assert body["code"].startswith("FS") and body["expires_at"]
    again = await _redeem(api, "c1", "free_shipping", headers=AUTH, json={"key": "order-1"})  # the body's key
    assert again.status_code == 200 and again.json()["code"] == body["code"] and again.json()["repeat"] is True
    short = await _redeem(api, "c1", "free_shipping", headers={**AUTH, "Idempotency-Key": "order-2"})
    assert short.status_code == 409 and short.json()["detail"] == "not_enough_points: not enough points: 200 of 500"
    assert _spent(api, "c1") == [-500]


async def test_redeem_refusals_name_the_reason(api: Api) -> None:
    await _customer(api, "c1", 700)
    no_key = await _redeem(api, "c1", "free_shipping", headers=AUTH)
    assert no_key.status_code == 422 and "idempotency key is required" in no_key.json()["detail"]
    unknown = await _redeem(api, "c1", "gift", headers={**AUTH, "Idempotency-Key": "k"})
    assert unknown.status_code == 422 and unknown.json()["detail"].startswith("unknown_reward: no reward 'gift'")
    nobody = await _redeem(api, "nobody", "free_shipping", headers={**AUTH, "Idempotency-Key": "k"})
    assert nobody.status_code == 404
    empty = await _redeem(api, "c1", "platform_15", headers={**AUTH, "Idempotency-Key": "k"})
    assert empty.status_code == 409 and empty.json()["detail"].startswith("coupon_pool_empty:")
    unauthorized = await _redeem(api, "c1", "free_shipping", headers={"Idempotency-Key": "k"})
    assert unauthorized.status_code == 401
    assert _spent(api, "c1") == []


# --- the checkout -------------------------------------------------------------------------------------


async def test_the_checkout_looks_a_code_up_and_redeems_it_once_per_order(api: Api) -> None:
    await _customer(api, "c1", 500)
    code = (await _redeem(api, "c1", "free_shipping", headers={**AUTH, "Idempotency-Key": "k"})).json()["code"]
    looked = await api.http.get(f"/coupons/{code.lower()}", headers=AUTH)
    assert looked.status_code == 200
    assert {k: looked.json()[k] for k in ("code", "valid", "reason", "series", "discount", "customer_id")} == {
        "code": code, "valid": True, "reason": None, "series": "SHIP", "discount": "free shipping",
        "customer_id": "c1"}
    assert (await api.http.get("/coupons/NOSUCHCODE", headers=AUTH)).status_code == 404
    assert (await api.http.get(f"/coupons/{code}")).status_code == 401  # for the shop's server, not the public

    first = await api.http.post(f"/coupons/{code}/redeem", headers=AUTH, json={"order_id": "o-1"})
    assert first.status_code == 200 and first.json()["redeemed"] is True and first.json()["repeat"] is False
    again = await api.http.post(f"/coupons/{code}/redeem", headers=AUTH, json={"order_id": "o-1"})
    assert again.status_code == 200 and again.json()["repeat"] is True
    other = await api.http.post(f"/coupons/{code}/redeem", headers=AUTH, json={"order_id": "o-2"})
    assert other.status_code == 409
    assert (other.json()["reason"], other.json()["redeemed_order_id"]) == ("redeemed", "o-1")
    after = (await api.http.get(f"/coupons/{code}", headers=AUTH)).json()
    assert (after["valid"], after["reason"], after["redeemed_order_id"]) == (False, "redeemed", "o-1")
    missing = await api.http.post("/coupons/NOSUCHCODE/redeem", headers=AUTH, json={"order_id": "o-1"})
    assert missing.status_code == 404
    no_order = await api.http.post(f"/coupons/{code}/redeem", headers=AUTH, json={})
    assert no_order.status_code == 422


async def test_the_checkout_refuses_another_customers_and_expired_codes(api: Api) -> None:
    await _customer(api, "c1", 500)
    code = (await _redeem(api, "c1", "free_shipping", headers={**AUTH, "Idempotency-Key": "k"})).json()["code"]
    theirs = await api.http.post(f"/coupons/{code}/redeem", headers=AUTH, json={"order_id": "o", "customer_id": "c2"})
    assert theirs.status_code == 409 and theirs.json()["reason"] == "not_yours"
    with session_scope(api.run.sim.db) as session:
        row = session.get(Coupon, code)
        assert row is not None
        row.expires_at = utcnow() - timedelta(minutes=1)
        session.add(row)
    expired = await api.http.post(f"/coupons/{code}/redeem", headers=AUTH, json={"order_id": "o"})
    assert expired.status_code == 409 and expired.json()["reason"] == "expired"
    assert (await api.http.get(f"/coupons/{code}", headers=AUTH)).json()["reason"] == "expired"


# --- REDEEM by text ----------------------------------------------------------------------------------------


async def _text(api: Api, body: str, sid: str) -> None:
    response = await api.twilio("/twilio/inbound", {"From": NUMBER, "Body": body, "MessageSid": sid})
    assert response.status_code == 200


def _replies(api: Api) -> list[str]:
    return [m.body for m in api.sender.sent if m.to == NUMBER]


async def test_redeem_by_text_replies_with_the_code_once_per_message(api: Api) -> None:
    await _customer(api, "c1", 800, phone=NUMBER)
    await _text(api, "redeem Free Shipping", "SMr1")
    [reply] = _replies(api)
    with session_scope(api.run.sim.db) as session:
        coupon = session.exec(select(Coupon).where(Coupon.customer_id == "c1")).one()
        message = session.exec(select(Message).where(Message.key == "reply:reward:SMr1")).one()
    assert reply.startswith(f"Nordic Shoes: your code {coupon.code} (free shipping, valid until ")
    assert reply.endswith("500 points spent, 300 left.")
    assert (message.purpose, message.counts_toward_caps, message.customer_id) == ("reply", False, "c1")
    await _text(api, "redeem Free Shipping", "SMr1")  # Twilio delivers it again
    assert len(_replies(api)) == 1 and _spent(api, "c1") == [-500]

    await _text(api, "REDEEM free_shipping", "SMr2")
    assert _replies(api)[-1] == "Nordic Shoes: not enough points: 300 of 500."
    await _text(api, "REDEEM", "SMr3")  # two rewards: which one?
    assert _replies(api)[-1] == ("Nordic Shoes: which reward? Reply REDEEM FREE SHIPPING (500 points), "
                                 "REDEEM PLATFORM 15 (300 points).")
    assert _spent(api, "c1") == [-500]


async def test_redeem_by_text_from_a_pool_and_stop_keeps_its_precedence(api: Api) -> None:
    await _customer(api, "c1", 800, phone=NUMBER)
    with session_scope(api.run.sim.db) as session:
        session.add(PooledCoupon(code="SHOP15A", series="PLATFORM", imported_at=utcnow()))
    await _text(api, "Redeem platform-15", "SMp1")
    assert _replies(api)[-1].startswith("Nordic Shoes: your code SHOP15A (15%). 300 points spent")
    await _text(api, "redeem platform 15", "SMp2")
    assert _replies(api)[-1] == "Nordic Shoes: no PLATFORM coupon left to give: try again later."
    await _text(api, "STOP", "SMstop")  # a whole-message keyword, answered as ever
    assert _replies(api)[-1] == api.run.sim.catalog.settings.replies.stop
    assert _spent(api, "c1") == [-300]
