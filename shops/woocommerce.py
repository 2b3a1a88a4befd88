"""WooCommerce's REST API (``/wp-json/wc/v3``): one coupon per issued code, found again by
``GET /coupons?code=``. Keys go as HTTP Basic auth (WooCommerce's way over HTTPS)."""

from __future__ import annotations

import base64
import urllib.parse
from typing import Any

from shops.base import Discount, JsonHttp

PREFIX = "/wp-json/wc/v3"
DISCOUNT_TYPES = {"percent": "percent", "fixed": "fixed_cart"}


class WooCommerceAdmin:
    name = "woocommerce"

    def __init__(self, store_url: str, consumer_key: str, consumer_secret: str, *, timeout: float = 10.0,
                 **http: Any) -> None:
        basic = base64.b64encode(f"{consumer_key}:{consumer_secret}".encode()).decode()
        self.http = JsonHttp(store_url, {"Authorization": f"Basic {basic}"}, timeout=timeout, **http)

    def find_discount(self, code: str) -> str | None:
        reply = self.http.call("GET", f"{PREFIX}/coupons?" + urllib.parse.urlencode({"code": code}))
        found = [c for c in reply.body or [] if isinstance(c, dict) and str(c.get("code", "")).lower() == code.lower()]
        return str(found[0].get("id")) if found else None

    def create_discount(self, discount: Discount) -> str:
        coupon: dict[str, Any] = {"code": discount.code, "discount_type": DISCOUNT_TYPES[discount.kind or "percent"],
                                  "amount": f"{discount.value or 0:.2f}", "usage_limit": 1,
                                  "individual_use": True}
        if discount.expires_at is not None:
            coupon["date_expires_gmt"] = discount.expires_at.strftime("%Y-%m-%dT%H:%M:%S")
        if discount.email:
            coupon["email_restrictions"] = [discount.email]
        reply = self.http.call("POST", f"{PREFIX}/coupons", coupon)
        return str(reply.body.get("id", "")) if isinstance(reply.body, dict) else ""
