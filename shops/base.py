"""The contract between the engine and a shop platform's admin API, and the HTTP both
clients share: JSON over urllib (no extra dependency), retried on 429 (after its
``Retry-After``) and 5xx a bounded number of times, an error class that says what the
caller may do next.

Synchronous, like the SMS senders: the activities call it from their thread pool.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 4  # per call: then the caller defers (the text waits; the code is looked up first next time)
MAX_RETRY_AFTER = 30.0  # seconds: a longer Retry-After is not waited for here, the caller defers


@dataclass(frozen=True)
class Discount:
    """One customer's code in a series, as the platform is to know it."""

    code: str
    kind: Literal["percent", "fixed"] | None = None  # WooCommerce (a Shopify price rule holds its own)
    value: float | None = None
    price_rule_id: int | None = None  # Shopify
    expires_at: datetime | None = None
    email: str | None = None  # WooCommerce: restricts the coupon to the customer's address


class ShopError(Exception):
    """The platform did not answer as hoped. ``unknown``: it may have done what was asked."""

    def __init__(self, message: str, *, status: int | None = None, unknown: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.unknown = unknown


class ShopUnavailable(ShopError):
    """Down, rate-limited past our patience, or timing out: try again later."""


class ShopRefused(ShopError):
    """A 4xx other than 429: the request (or our configuration) is wrong; trying again as it is fails."""


class DiscountPlatform(Protocol):
    name: str

    def find_discount(self, code: str) -> str | None:
        """The platform's id of ``code``, or None when it has no such code."""
        ...

    def create_discount(self, discount: Discount) -> str:
        """Create the code; returns the platform's id. Raises ShopError."""
        ...


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 303 (Shopify's code lookup) is an answer, not somewhere to go


class JsonHttp:
    """JSON requests to one base URL with fixed headers; ``sleep`` is replaceable for tests."""

    def __init__(self, base_url: str, headers: Mapping[str, str], *, timeout: float = 10.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers)
        self.timeout = timeout
        self.sleep = sleep
        self._opener = urllib.request.build_opener(_NoRedirect)

    def call(self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200, 201)) -> Reply:
        """The reply, once it has one of the ``ok`` statuses (404 and 303 can be asked for).
        Retries 429 and 5xx up to MAX_ATTEMPTS, except a POST that may have been done (a 5xx,
        a timeout): that raises at once as ``unknown``, for the caller to look before it
        creates again."""
        data = json.dumps(body).encode() if body is not None else None
        last: ShopError = ShopUnavailable("no attempt made")
        for attempt in range(MAX_ATTEMPTS):
            try:
                reply = self._once(method, path, data)
            except (TimeoutError, urllib.error.URLError, ConnectionError) as err:
                reason = getattr(err, "reason", err)
                log.warning("%s %s: no answer (%s)", method, path.split("?")[0], type(reason).__name__)
                sent = not isinstance(reason, ConnectionRefusedError)  # refused: it never got there
                last = ShopUnavailable(f"{method} {path.split('?')[0]}: no answer ({type(reason).__name__})",
                                       unknown=sent and method != "GET")
                if last.unknown:
                    raise last from None
                if attempt + 1 < MAX_ATTEMPTS:
                    self.sleep(min(2.0 ** attempt * 0.25, MAX_RETRY_AFTER))
                continue
            if reply.status in ok:
                return reply
            if reply.status == 429 or reply.status >= 500:
                wait = _retry_after(reply.headers) if reply.status == 429 else 2.0 ** attempt * 0.25
                last = ShopUnavailable(f"{method} {path.split('?')[0]}: HTTP {reply.status}", status=reply.status,
                                       unknown=reply.status >= 500 and method != "GET")
                if wait is None or wait > MAX_RETRY_AFTER or last.unknown:
                    raise last
                log.info("%s %s: HTTP %s, again in %.2fs", method, path.split("?")[0], reply.status, wait)
                if attempt + 1 < MAX_ATTEMPTS:
                    self.sleep(wait)
                continue
            raise ShopRefused(f"{method} {path.split('?')[0]}: HTTP {reply.status}: {_error_text(reply.body)}",
                              status=reply.status)
        raise last

    def _once(self, method: str, path: str, data: bytes | None) -> Reply:
        request = urllib.request.Request(self.base_url + path, data=data, method=method,
                                         headers={**self.headers, "Accept": "application/json",
                                                  **({"Content-Type": "application/json"} if data else {})})
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return Reply(response.status, _json(response.read()), dict(response.headers.items()))
        except urllib.error.HTTPError as err:  # 3xx (not followed), 4xx, 5xx
            return Reply(err.code, _json(err.read()), dict(err.headers.items()))


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return 1.0  # Shopify's bucket leaks 2 a second: a second is enough for one more call
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None  # an HTTP date: longer than we wait here


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _error_text(body: Any) -> str:
    """The platform's error message, cut short (it names fields, never our secrets)."""
    if isinstance(body, dict):
        found = body.get("errors") or body.get("message") or body.get("code") or body
        return str(found)[:160]
    return str(body)[:160]
