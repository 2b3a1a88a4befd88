"""A fake of the shops' admin APIs for the tests, as a real HTTP server (tests/local_server.py):
Shopify's REST discount codes (created under a price rule, looked up by code with a 303),
customers and orders in pages linked by ``Link`` headers; WooCommerce's coupons.

Steered by attributes: ``script`` (what the next requests of a kind get: ``"429"`` with a
Retry-After, ``"503"``, ``"500_after"`` (does the work, then answers 500), ``"stall_after"``
(does the work, then answers too late)), ``down`` (every request 503). ``log`` is what it
was asked, ``codes`` what it holds."""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.local_server import LocalServer

TOKEN = "shpat_test_admin_token"
WOO_AUTH = "Basic Y2tfdGVzdDpjc190ZXN0"  # ck_test:cs_test
V = "/admin/api/2025-01"


class FakeAdmin(LocalServer):
    def __init__(self) -> None:
        super().__init__(_Handler)
        self.lock = threading.Lock()
        self.codes: dict[str, dict[str, Any]] = {}  # code -> {id, platform, ...}
        self.log: list[tuple[str, str, int]] = []  # (method, path without query, status)
        self.script: dict[str, list[str]] = {"create": [], "lookup": [], "list": []}
        self.down = False
        self.customers: list[dict[str, Any]] = []
        self.orders: list[dict[str, Any]] = []
        self.page_size = 2
        # From the n-th page request (0-based), ``fail_pages`` requests answer 500 (an interruption).
        self.fail_page: int | None = None
        self.fail_pages = 4
        self.page_requests = 0
        self.retry_after = "0.2"

    def creates(self, status: int | None = None) -> list[tuple[str, str, int]]:
        return [entry for entry in self.log if entry[0] == "POST" and (status is None or entry[2] == status)]


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    @property
    def fake(self) -> FakeAdmin:
        return self.server.fake  # type: ignore[attr-defined,no-any-return]

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None, *,
               logged: bool = False) -> None:
        if not logged:
            self._log(status)
        raw = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _log(self, status: int) -> None:
        with self.fake.lock:
            self.fake.log.append((self.command, urllib.parse.urlsplit(self.path).path, status))

    def _route(self, method: str) -> None:
        parts = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
        shopify = parts.path.startswith("/admin/")
        if shopify and self.headers.get("X-Shopify-Access-Token") != TOKEN:
            return self._reply(401, {"errors": "[API] Invalid API key or access token"})
        if not shopify and self.headers.get("Authorization") != WOO_AUTH:
            return self._reply(401, {"code": "woocommerce_rest_cannot_view"})
        if self.fake.down:
            return self._reply(503, {"errors": "Service Unavailable"})
        kind = ("create" if method == "POST" else
                "lookup" if "lookup" in parts.path or "coupons" in parts.path else "list")
        with self.fake.lock:
            planned = self.fake.script[kind].pop(0) if self.fake.script[kind] else None
        if planned == "429":
            return self._reply(429, {"errors": "Exceeded 2 calls per second"}, {"Retry-After": self.fake.retry_after})
        if planned == "503":
            return self._reply(503, {"errors": "Service Unavailable"})
        if method == "POST":
            done = self._create(parts.path, body, shopify)
            if planned == "500_after":
                return self._reply(500, {"errors": "Internal Server Error"})
            if planned == "stall_after":
                self._log(201)  # done now; the answer comes too late
                self.fake._released.wait(2.0)
                return self._reply(201, done, logged=True)
            return self._reply(*done) if isinstance(done, tuple) else self._reply(201, done)
        if parts.path == f"{V}/discount_codes/lookup.json":
            found = self.fake.codes.get(query.get("code", ""))
            if found is None:
                return self._reply(404, {"errors": "Not Found"})
            return self._reply(303, None, {"Location": f"{self.fake.url}{V}/price_rules/{found['price_rule_id']}/"
                                                       f"discount_codes/{found['id']}.json"})
        if parts.path == "/wp-json/wc/v3/coupons":
            found = self.fake.codes.get(query.get("code", "").upper())
            return self._reply(200, [found] if found else [])
        for resource in ("customers", "orders"):
            if parts.path == f"{V}/{resource}/count.json":
                return self._reply(200, {"count": len(getattr(self.fake, resource))})
            if parts.path == f"{V}/{resource}.json":
                return self._page(resource, query)
        return self._reply(404, {"errors": "Not Found"})

    def _create(self, path: str, body: Any, shopify: bool) -> Any:
        with self.fake.lock:
            if shopify:
                rule = re.fullmatch(rf"{V}/price_rules/(\d+)/discount_codes.json", path)
                if rule is None or rule.group(1) != "507328175":
                    return 404, {"errors": "Not Found"}
                code = body["discount_code"]["code"]
            else:
                code = body["code"]
            if code in self.fake.codes:
                return 422, {"errors": {"code": ["must be unique"]}}
            entry = {"id": 1000 + len(self.fake.codes), "code": code, "platform": "shopify" if shopify else "woo",
                     "price_rule_id": 507328175, **({} if shopify else body)}
            self.fake.codes[code] = entry
            return {"discount_code": entry} if shopify else entry

    def _page(self, resource: str, query: dict[str, str]) -> None:
        with self.fake.lock:
            number = self.fake.page_requests
            self.fake.page_requests += 1
        first = self.fake.fail_page
        if first is not None and first <= number < first + self.fake.fail_pages:
            return self._reply(500, {"errors": "Internal Server Error"})
        items = getattr(self.fake, resource)
        start = int(query.get("page_info", "0"))
        size = min(int(query.get("limit", "50")), self.fake.page_size)
        headers = {}
        if start + size < len(items):
            headers["Link"] = (f'<{self.fake.url}{V}/{resource}.json?limit={query.get("limit", "50")}'
                               f'&page_info={start + size}>; rel="next"')
        return self._reply(200, {resource: items[start:start + size]}, headers)
