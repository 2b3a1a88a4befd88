"""Shopify and WooCommerce webhooks through the real application (SQLite and PostgreSQL):
the documented sample payloads (tests/fixtures/shopify, tests/fixtures/woocommerce),
signed the platform's way, reach the journeys and the loyalty ledger; forged or
repeated ones change nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from api.app import create_app
from api.services import Services
from processes.simulate import Simulation
from store.db import session_scope
from store.tables import ConsentRecord, Customer, Enrollment, Event, PointsEntry
from tests.api.conftest import API_SETTINGS, AUTH, PUBLIC_URL, TOKEN, TWILIO_TOKEN, Api, eventually
from tests.runtime.support import CountingSender, Run, write_journeys
from workflows.io import run_key_hash

FIXTURES = Path(__file__).parents[1] / "fixtures"
SHOPIFY_SECRET = "shopify-webhook-secret"
WOO_SECRET = "woocommerce-webhook-secret"
SHOPIFY = "/integrations/shopify/webhooks"
WOO = "/integrations/woocommerce/webhooks"
BUYER = "shopify-115310627314723954"
ABANDONED_CART = (Path(__file__).parents[2] / "journeys" / "abandoned_cart.yaml").read_text()


@pytest.fixture
async def api(tmp_path: Path, env, db) -> AsyncIterator[Api]:  # type: ignore[no-untyped-def]
    catalog = write_journeys(tmp_path / "journeys", {"abandoned_cart": ABANDONED_CART}, settings=API_SETTINGS)
    sender = CountingSender()
    async with Simulation(env, catalog, db, sender=sender) as sim:
        services = Services.build(catalog, db, sim.router, api_token=TOKEN, twilio_auth_token=TWILIO_TOKEN,
                                  public_url=PUBLIC_URL, shopify_webhook_secret=SHOPIFY_SECRET,
                                  woocommerce_webhook_secret=WOO_SECRET)
        app = create_app(services)
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport,
                                                                       base_url=PUBLIC_URL) as http:
            yield Api(http, Run(sim), sender)


def fixture(name: str, **changes: Any) -> bytes:
    return json.dumps({**json.loads((FIXTURES / name).read_text()), **changes}).encode()


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


async def shopify(api: Api, topic: str, body: bytes, *, webhook_id: str | None = None,
                  forge: bool = False) -> httpx.Response:
    # Each call a new delivery unless the test names its id (a redelivery keeps its id).
    headers = {"X-Shopify-Topic": topic, "X-Shopify-Webhook-Id": webhook_id or uuid.uuid4().hex, "Content-Type": "application/json",
               "X-Shopify-Hmac-Sha256": sign("not-the-secret" if forge else SHOPIFY_SECRET, body)}
    return await api.http.post(SHOPIFY, content=body, headers=headers)


async def woo(api: Api, topic: str, body: bytes, *, delivery_id: str | None = None,
              forge: bool = False) -> httpx.Response:
    headers = {"X-WC-Webhook-Topic": topic, "X-WC-Webhook-Delivery-ID": delivery_id or uuid.uuid4().hex, "Content-Type": "application/json",
               "X-WC-Webhook-Signature": sign("not-the-secret" if forge else WOO_SECRET, body)}
    return await api.http.post(WOO, content=body, headers=headers)


def rows(api: Api, table: Any, **where: Any) -> list[Any]:
    with session_scope(api.run.sim.db) as session:
        query = select(table)
        for name, value in where.items():
            query = query.where(getattr(table, name) == value)
        return list(session.exec(query).all())


def points(api: Api, customer_id: str) -> int:
    return sum(e.points for e in rows(api, PointsEntry, customer_id=customer_id))


async def test_a_paid_order_is_one_purchase_that_ends_the_cart_reminder(api: Api) -> None:
    await api.customer(BUYER, phone="+12015550111")
    cart = {"id": "cart-1", "type": "cart_abandoned", "customer_id": BUYER,
            "properties": {"cart_id": "cart-token-123"}}
    assert (await api.http.post("/events", json=cart, headers=AUTH)).status_code == 202
    assert await eventually(lambda: rows(api, Enrollment, customer_id=BUYER, status="active"))

    pending = await shopify(api, "orders/create", fixture("shopify/orders_create_pending.json"), webhook_id="w0")
    assert pending.status_code == 200 and "not paid" in pending.json()["ignored"]
    assert rows(api, Event, type="purchase") == []
    paid = await shopify(api, "orders/paid", fixture("shopify/orders_paid.json"), webhook_id="w1")
    assert paid.status_code == 200 and paid.json() == {"ok": True, "ignored": None}
    again = await shopify(api, "orders/paid", fixture("shopify/orders_paid.json"), webhook_id="w1")  # redelivered
    assert again.json()["ignored"] == "a repeated delivery: handled before"
    created = await shopify(api, "orders/create", fixture("shopify/orders_paid.json"), webhook_id="w2")
    assert again.status_code == created.status_code == 200

    [purchase] = rows(api, Event, type="purchase")
    assert purchase.id == "shopify:order:820982911946154508"
    assert purchase.properties["amount"] == 199.65 and purchase.properties["currency"] == "USD"
    assert purchase.properties["cart_id"] == "cart-token-123" and purchase.properties["coupon_code"] == "TENOFF"
    assert purchase.properties["items"][0] == {"product": "IPod Nano - 8GB", "category": "Cult Products",
                                               "quantity": 1, "price": 199.0}
    [customer] = rows(api, Customer, id=BUYER)
    assert (customer.orders_count, customer.total_spent, points(api, BUYER)) == (1, 199.65, 199)
    assert await eventually(lambda: not rows(api, Enrollment, customer_id=BUYER, status="active"))
    [run] = rows(api, Enrollment, customer_id=BUYER)
    assert run.journey_id == "abandoned_cart" and run.status != "active"
    assert api.sender.sent == []  # no reminder for a cart that was bought


async def test_refunds_take_points_back_once_and_never_below_zero(api: Api) -> None:
    assert (await shopify(api, "orders/paid", fixture("shopify/orders_paid.json"))).status_code == 200
    assert points(api, BUYER) == 199
    refund = fixture("shopify/refunds_create.json")  # 50.00 refunded
    assert (await shopify(api, "refunds/create", refund, webhook_id="r1")).status_code == 200
    assert (await shopify(api, "refunds/create", refund, webhook_id="r1")).status_code == 200  # repeated
    assert points(api, BUYER) == 149
    # The customer spends most of the rest; cancelling the order takes back only what is left.
    with session_scope(api.run.sim.db) as session:
        [earned] = session.exec(select(PointsEntry).where(PointsEntry.key == f"purchase:{purchase_id()}")).all()
        session.add(PointsEntry(key="spent", customer_id=BUYER, points=-140, reason="reward", source="reward",
                                occurred_at=earned.occurred_at, expires_at=earned.expires_at))
    cancelled = fixture("shopify/orders_cancelled.json")
    assert (await shopify(api, "orders/cancelled", cancelled, webhook_id="c1")).status_code == 200
    assert (await shopify(api, "orders/cancelled", cancelled, webhook_id="c2")).status_code == 200
    assert points(api, BUYER) == 0
    [customer] = rows(api, Customer, id=BUYER)
    assert customer.points == 0
    reversals = sorted(e.points for e in rows(api, PointsEntry, source="reversal"))
    assert reversals == [-50, -9]


def purchase_id() -> str:
    return "shopify:order:820982911946154508"


async def test_a_checkout_is_a_cart_updated_event_with_its_token(api: Api) -> None:
    body = fixture("shopify/checkouts_update.json")
    assert (await shopify(api, "checkouts/update", body)).status_code == 200
    assert (await shopify(api, "checkouts/update", body, webhook_id="w9")).status_code == 200  # the same update
    [event] = rows(api, Event, type="cart_updated")
    assert event.customer_id == BUYER and event.properties["cart_id"] == "cart-token-123"
    assert event.properties["cart_url"].startswith("https://checkout.local/")


async def test_abandoned_checkouts_each_get_a_reminder_run_and_an_order_ends_its_own(api: Api) -> None:
    await api.customer(BUYER, phone="+12015550111")
    first = fixture("shopify/checkouts_update.json")
    second = fixture("shopify/checkouts_update.json", token="cart-token-456", updated_at="2026-11-30T11:20:00-05:00")
    assert (await shopify(api, "checkouts/create", first, webhook_id="k1")).status_code == 200
    later = fixture("shopify/checkouts_update.json", updated_at="2026-11-30T11:09:00-05:00")
    assert (await shopify(api, "checkouts/update", later, webhook_id="k2")).status_code == 200  # the same checkout
    assert (await shopify(api, "checkouts/create", second, webhook_id="k3")).status_code == 200
    abandoned = rows(api, Event, type="cart_abandoned")
    assert sorted(e.id for e in abandoned) == ["shopify:checkout:cart-token-123", "shopify:checkout:cart-token-456"]
    assert await eventually(lambda: len(rows(api, Enrollment, customer_id=BUYER, status="active")) == 2)
    runs = {run.run_key: run for run in rows(api, Enrollment, customer_id=BUYER)}
    assert set(runs) == {run_key_hash("abandoned_cart", "cart-token-123"), run_key_hash("abandoned_cart",
                                                                                        "cart-token-456")}
    assert all("cart-token" not in run.workflow_id for run in runs.values())
    # The order of the first checkout (its checkout_token) ends that checkout's run only.
    assert (await shopify(api, "orders/paid", fixture("shopify/orders_paid.json"), webhook_id="o1")).status_code == 200
    bought = runs[run_key_hash("abandoned_cart", "cart-token-123")]
    assert await eventually(lambda: rows(api, Enrollment, id=bought.id, status="ended"))
    [ended] = rows(api, Enrollment, id=bought.id)
    assert ended.outcome == "exited:purchase"
    [waiting] = rows(api, Enrollment, customer_id=BUYER, status="active")
    assert waiting.run_key == run_key_hash("abandoned_cart", "cart-token-456")
    assert api.sender.sent == []


async def test_a_completed_checkout_starts_no_reminder(api: Api) -> None:
    await api.customer(BUYER, phone="+12015550111")
    done = fixture("shopify/checkouts_update.json", completed_at="2026-11-30T11:10:00-05:00")
    assert (await shopify(api, "checkouts/update", done)).status_code == 200
    assert rows(api, Event, type="cart_abandoned") == [] and rows(api, Enrollment, customer_id=BUYER) == []


async def test_a_customer_with_sms_consent_is_subscribed_with_evidence(api: Api, caplog: Any) -> None:
    body = fixture("shopify/customers_update.json")
    assert (await shopify(api, "customers/update", body)).status_code == 200
    assert (await shopify(api, "customers/update", body, webhook_id="w2")).status_code == 200
    [customer] = rows(api, Customer, id="shopify-706405506930370084")
    assert (customer.phone, customer.email, customer.first_name, customer.sms_consent) == (
        "+12015550123", "bob@example.com", "Bob", "opted_in")
    [record] = rows(api, ConsentRecord, customer_id=customer.id)
    assert record.source == "shopify" and "opt_in_level=confirmed_opt_in" in (record.disclosure or "")
    assert record.occurred_at.isoformat().startswith("2026-11-30T15:00:00")
    assert "5550123" not in caplog.text
    # API 2025-01 and later: the consent has its own topic. Unsubscribing is recorded likewise.
    stop = fixture("shopify/customers_marketing_consent_update.json")
    assert (await shopify(api, "customers_marketing_consent/update", stop, webhook_id="w3")).status_code == 200
    [customer] = rows(api, Customer, id="shopify-706405506930370084")
    assert (customer.sms_consent, customer.email) == ("opted_out", "bob@example.com")  # the rest kept
    assert [(r.status, r.source) for r in rows(api, ConsentRecord, customer_id=customer.id)] == [
        ("opted_in", "shopify"), ("opted_out", "shopify")]
    # The older subscribe, redelivered after the unsubscribe, does not subscribe them again.
    assert (await shopify(api, "customers/update", body, webhook_id="w1")).status_code == 200
    [customer] = rows(api, Customer, id="shopify-706405506930370084")
    assert customer.sms_consent == "opted_out" and len(rows(api, ConsentRecord, customer_id=customer.id)) == 2


async def test_forged_and_unknown_webhooks_change_nothing(api: Api, caplog: Any) -> None:
    forged = await shopify(api, "orders/paid", fixture("shopify/orders_paid.json"), forge=True)
    unsigned = await api.http.post(SHOPIFY, content=b"{}", headers={"X-Shopify-Topic": "orders/paid"})
    woo_forged = await woo(api, "order.updated", fixture("woocommerce/order_updated.json"), forge=True)
    assert forged.status_code == unsigned.status_code == woo_forged.status_code == 401
    assert rows(api, Event) == [] and rows(api, Customer) == []
    unknown = await shopify(api, "products/update", b'{"id": 1, "title": "x"}')
    assert unknown.status_code == 200 and "not one the engine maps" in unknown.json()["ignored"]
    assert rows(api, Event) == []
    nan = await shopify(api, "orders/paid", b'{"id": NaN}')
    assert nan.status_code == 400
    absurd = await shopify(api, "orders/paid", fixture("shopify/orders_paid.json", processed_at="2026-11-30T12:00:00",
                                                       created_at=None, line_items=[{"title": "x" * 65}]))
    assert absurd.status_code == 200  # a naive time and an overlong title are dropped and cut, never a 500
    too_big = await api.http.post(SHOPIFY, content=b"x" * (1024 * 1024 + 1), headers={"X-Shopify-Topic": "x"})
    assert too_big.status_code == 413


async def test_woocommerce_orders_customers_and_the_ping(api: Api) -> None:
    ping = await api.http.post(WOO, content=b"webhook_id=12",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert ping.status_code == 200 and ping.json()["ignored"] == "ping"
    assert (await woo(api, "customer.created", fixture("woocommerce/customer_created.json"))).status_code == 200
    [customer] = rows(api, Customer, id="woocommerce-26")
    assert (customer.phone, customer.first_name, customer.sms_consent) == ("+12015550155", "John", "none")
    pending = fixture("woocommerce/order_updated.json", status="pending")
    assert (await woo(api, "order.created", pending)).json()["ignored"].startswith("an order with status")
    order = fixture("woocommerce/order_updated.json")
    assert (await woo(api, "order.updated", order)).status_code == 200
    assert (await woo(api, "order.updated", fixture("woocommerce/order_updated.json", status="completed"))
            ).status_code == 200
    [purchase] = rows(api, Event, type="purchase")
    assert purchase.id == "woocommerce:order:727" and purchase.properties["amount"] == 29.35
    assert [i["product"] for i in purchase.properties["items"]] == ["Woo Single #1",
                                                                   "Ship Your Idea &ndash; Color: Black, Size: M Test"]
    assert points(api, "woocommerce-26") == 29
    refunded = fixture("woocommerce/order_refunded.json")
    assert (await woo(api, "order.updated", refunded)).status_code == 200
    assert (await woo(api, "order.updated", refunded)).status_code == 200
    assert points(api, "woocommerce-26") == 0
    [customer] = rows(api, Customer, id="woocommerce-26")
    assert (customer.orders_count, customer.points) == (1, 0)


async def test_a_single_opt_in_is_confirmed_by_text_once_under_double_opt_in(api: Api) -> None:
    single = {"state": "subscribed", "opt_in_level": "single_opt_in", "consent_updated_at": "2026-11-30T10:00:00Z"}
    body = fixture("shopify/customers_update.json", sms_marketing_consent=single)
    assert (await shopify(api, "customers/update", body)).status_code == 200
    assert (await shopify(api, "customers/update", body)).status_code == 200  # redelivered
    [customer] = rows(api, Customer, id="shopify-706405506930370084")
    assert customer.sms_consent == "pending"  # settings.yaml opt_in: double, until they reply YES
    assert await eventually(lambda: api.sender.sent)
    assert len(api.sender.sent) == 1 and api.sender.sent[0].to == "+12015550123"


async def test_partial_reversals_never_take_more_than_the_purchase_earned(api: Api) -> None:
    def reversal(event_id: str, **properties: Any) -> dict[str, Any]:
        return {"id": event_id, "type": "purchase_refunded", "customer_id": "c1", "properties": properties}

    events = [{"id": "order-1", "type": "purchase", "customer_id": "c1", "properties": {"amount": 100}},
              {"id": "bonus", "type": "purchase", "customer_id": "c1", "properties": {"amount": 500}},
              reversal("r1", purchase_event_id="order-1", amount=80),
              reversal("r2", purchase_event_id="order-1", amount=80),
              reversal("r3", purchase_event_id="order-404"), reversal("r4")]
    assert (await api.http.post("/events", json=events, headers=AUTH)).status_code == 202
    assert sorted(e.points for e in rows(api, PointsEntry, source="reversal")) == [-80, -20]
    assert points(api, "c1") == 500


async def test_a_delivery_id_seen_before_changes_nothing(api: Api) -> None:
    assert (await shopify(api, "orders/paid", fixture("shopify/orders_paid.json"))).status_code == 200
    refund = json.loads(fixture("shopify/refunds_create.json"))
    first = await shopify(api, "refunds/create", json.dumps(refund).encode(), webhook_id="r-1")
    assert first.json()["ignored"] is None and points(api, BUYER) == 149
    # The same delivery id with another refund id: only the delivery id can tell it is a repeat.
    second = await shopify(api, "refunds/create", json.dumps({**refund, "id": 1}).encode(), webhook_id="r-1")
    assert second.status_code == 200 and second.json()["ignored"] == "a repeated delivery: handled before"
    assert points(api, BUYER) == 149 and len(rows(api, Event, type="purchase_refunded")) == 1
    # A new delivery id about the same order: the order's own event id keeps it one purchase.
    assert (await shopify(api, "orders/paid", fixture("shopify/orders_paid.json"), webhook_id="new")).json() == {
        "ok": True, "ignored": None}
    assert len(rows(api, Event, type="purchase")) == 1 and points(api, BUYER) == 149

    created = fixture("woocommerce/customer_created.json")
    assert (await woo(api, "customer.created", created, delivery_id="d-7")).json()["ignored"] is None
    renamed = fixture("woocommerce/customer_created.json", first_name="Jonathan")
    assert (await woo(api, "customer.updated", renamed, delivery_id="d-7")).json()["ignored"] == (
        "a repeated delivery: handled before")
    [customer] = rows(api, Customer, id="woocommerce-26")
    assert customer.first_name == "John"
    assert (await woo(api, "customer.updated", renamed, delivery_id="d-8")).json()["ignored"] is None
    [customer] = rows(api, Customer, id="woocommerce-26")
    assert customer.first_name == "Jonathan"
