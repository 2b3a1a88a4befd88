"""Shopify's and WooCommerce's webhooks: orders, refunds, checkouts and customers onto the
engine's one event path (docs/shopify.md, docs/woocommerce.md).

The signature (a base64 HMAC-SHA256 of the raw body with the webhook secret) is checked
before the body is parsed: a forged or unsigned request gets a 401 and changes nothing.
A repeated delivery changes nothing either, twice over: a delivery id seen before
(``X-Shopify-Webhook-Id``, ``X-WC-Webhook-Delivery-ID``) is answered without doing
anything, and the events' ids come from the platform's ids (an order is
``shopify:order:<id>``), so another delivery about the same order is a duplicate on the
event path."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ValidationError

from api.deps import ServicesDep
from api.edge import SignedWebhookRoute, json_object
from core.clock import utcnow
from core.intake import shopify, woocommerce
from core.intake.commerce import Plan, already_handled, carry_out, handled

router = APIRouter(prefix="/integrations", tags=["integrations"], route_class=SignedWebhookRoute)
log = logging.getLogger(__name__)

_WOO_PING = re.compile(rb"^webhook_id=\d{1,20}$")


class WebhookAnswer(BaseModel):
    ok: bool = True
    ignored: str | None = None


def signed(secret: str | None, body: bytes, signature: str | None) -> bool:
    """Whether ``signature`` is base64(HMAC-SHA256(secret, body)), compared in constant time."""
    if not secret or not signature:
        return False
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, signature.strip().encode("ascii", "replace"))


async def _handle(svc: Any, body: bytes, topic: str, mapper: Callable[[str, dict[str, Any]], Plan],
                  source: str, delivery_id: str | None) -> WebhookAnswer:
    db = svc.router.db
    if await asyncio.to_thread(already_handled, db, source, delivery_id):
        return WebhookAnswer(ignored="a repeated delivery: handled before")
    try:
        plan = mapper(topic, json_object(body, "one resource"))
    except ValidationError as err:  # a field the event path refuses: say which, store nothing
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"the {topic[:64]} payload maps to an event the engine refuses: {where}: "
                            f"{first['msg'][:200]}") from None
    await carry_out(svc.router, svc.replies, plan, source=source, topic=topic[:64])
    await asyncio.to_thread(handled, db, source, delivery_id, topic, utcnow())
    return WebhookAnswer(ignored=plan.ignored)


_REFUSED: dict[int | str, dict[str, Any]] = {
    401: {"description": "The signature is missing or wrong (or no secret is set): nothing was done"}}


@router.post("/shopify/webhooks", response_model=WebhookAnswer, responses=_REFUSED)
async def shopify_webhook(request: Request, svc: ServicesDep) -> WebhookAnswer:
    """A Shopify webhook (orders, refunds, checkouts, customers), signed with
    JOURNEYS_SHOPIFY_WEBHOOK_SECRET in `X-Shopify-Hmac-Sha256`. Other topics get 200 and are ignored."""
    body = await request.body()
    if not signed(svc.shopify_webhook_secret, body, request.headers.get("x-shopify-hmac-sha256")):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or missing X-Shopify-Hmac-Sha256")
    return await _handle(svc, body, request.headers.get("x-shopify-topic", ""), shopify.plan, shopify.SOURCE,
                         request.headers.get("x-shopify-webhook-id"))


@router.post("/woocommerce/webhooks", response_model=WebhookAnswer, responses=_REFUSED)
async def woocommerce_webhook(request: Request, svc: ServicesDep) -> WebhookAnswer:
    """A WooCommerce webhook (orders, customers), signed with JOURNEYS_WOOCOMMERCE_WEBHOOK_SECRET
    in `X-WC-Webhook-Signature`. The unsigned ping WooCommerce sends when a webhook is saved
    (`webhook_id=<n>`, form-encoded) gets 200 and does nothing."""
    body = await request.body()
    if "x-wc-webhook-signature" not in request.headers and _WOO_PING.match(body.strip()):
        return WebhookAnswer(ignored="ping")
    if not signed(svc.woocommerce_webhook_secret, body, request.headers.get("x-wc-webhook-signature")):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or missing X-WC-Webhook-Signature")
    return await _handle(svc, body, request.headers.get("x-wc-webhook-topic", ""), woocommerce.plan,
                         woocommerce.SOURCE, request.headers.get("x-wc-webhook-delivery-id"))
