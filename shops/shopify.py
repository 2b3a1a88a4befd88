"""Shopify's Admin REST API, version ``API_VERSION``: discount codes under a price rule,
and the customers and orders a back-fill reads (pages by the ``Link`` header).

Why REST price rules: the merchant makes one price rule per series in Shopify (the value,
percent or fixed, the expiry, "once per customer") and names its id in loyalty.yaml; each
issued code is a discount code under it, looked up by code with
``GET /discount_codes/lookup.json?code=`` (a 303 when it exists, 404 when not).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

from shops.base import Discount, JsonHttp, ShopRefused

API_VERSION = "2025-01"
PAGE_SIZE = 250  # Shopify's largest page
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


class ShopifyAdmin:
    name = "shopify"

    def __init__(self, shop_domain: str, admin_token: str, *, base_url: str | None = None, timeout: float = 10.0,
                 **http: Any) -> None:
        self.http = JsonHttp(base_url or f"https://{shop_domain}", {"X-Shopify-Access-Token": admin_token},
                             timeout=timeout, **http)
        self.prefix = f"/admin/api/{API_VERSION}"

    def find_discount(self, code: str) -> str | None:
        reply = self.http.call("GET", f"{self.prefix}/discount_codes/lookup.json?"
                               + urllib.parse.urlencode({"code": code}), ok=(200, 303, 404))
        if reply.status == 404:
            return None
        location = next((v for k, v in reply.headers.items() if k.lower() == "location"), "")
        found = re.search(r"/discount_codes/(\d+)", location)
        if reply.status == 200 and isinstance(reply.body, dict):
            return str(reply.body.get("discount_code", {}).get("id", "")) or location or "found"
        return found.group(1) if found else location or "found"

    def create_discount(self, discount: Discount) -> str:
        if discount.price_rule_id is None:
            raise ShopRefused(f"code {discount.code}: the series has no price_rule_id")
        reply = self.http.call("POST", f"{self.prefix}/price_rules/{discount.price_rule_id}/discount_codes.json",
                               {"discount_code": {"code": discount.code}})
        body = reply.body if isinstance(reply.body, dict) else {}
        return str(body.get("discount_code", {}).get("id", ""))

    # --- back-fill ------------------------------------------------------------------------

    def pages(self, resource: str, cursor: str | None) -> Iterator[tuple[list[dict[str, Any]], str | None]]:
        """(items, the next page's cursor) from ``cursor`` (None: the first page) on; the
        cursor is the path of the next page, None after the last."""
        path: str | None = cursor or f"{self.prefix}/{resource}.json?" + urllib.parse.urlencode(
            {"limit": PAGE_SIZE, **({"status": "any"} if resource == "orders" else {})})
        while path:
            reply = self.http.call("GET", path)
            body = reply.body if isinstance(reply.body, dict) else {}
            link = next((v for k, v in reply.headers.items() if k.lower() == "link"), "")
            found = _NEXT.search(link)
            following = None
            if found:
                parts = urllib.parse.urlsplit(found.group(1))
                following = parts.path + (f"?{parts.query}" if parts.query else "")
            yield list(body.get(resource) or []), following
            path = following

    def count(self, resource: str) -> int | None:
        reply = self.http.call("GET", f"{self.prefix}/{resource}/count.json"
                               + ("?status=any" if resource == "orders" else ""))
        value = reply.body.get("count") if isinstance(reply.body, dict) else None
        return value if isinstance(value, int) else None
