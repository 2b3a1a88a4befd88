"""Coupon codes the shop's platform must know before a text carries them (a series with
``platform:`` in loyalty.yaml; docs/shopify.md, docs/woocommerce.md "Discount codes").

Exactly once, like a send: issuing a code in a text's ``coupon()`` also writes its
reservation (``shop_discounts``, state ``pending``) in the same transaction. Before the
text goes out, the send activity asks ``push`` to create every pending code of the
message in the platform. Each attempt is counted in the row before the call, so an attempt
after one whose outcome is unknown (a 5xx, a timeout, a worker killed mid-call) looks the
code up by its code first and only creates it when the platform does not have it. Until
every code is ``created`` the text is deferred, never sent with a code the shop does not
know.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from core.clock import utcnow
from language.config import CouponSeries
from shops.base import Discount, DiscountPlatform, ShopRefused, ShopUnavailable
from store.db import Database, session_scope
from store.tables import Coupon, Customer, ShopDiscount

log = logging.getLogger(__name__)

ROUNDS = 3  # look-then-create rounds per push after unknown outcomes; then the text is deferred


def reserve(session: Session, coupon: Coupon, spec: CouponSeries, at: datetime) -> None:
    """The code's reservation, once (a re-render finds it)."""
    if spec.platform is None or session.get(ShopDiscount, coupon.code) is not None:
        return
    session.add(ShopDiscount(code=coupon.code, series=coupon.series, platform=spec.platform, created_at=at))
    session.flush()


def waiting(session: Session, message_key: str) -> list[str]:
    """The codes of the message keyed ``message_key`` the platform does not have yet."""
    query = (select(ShopDiscount.code).join(Coupon, col(Coupon.code) == col(ShopDiscount.code))
             .where(col(Coupon.key).startswith(f"{message_key}:"), col(ShopDiscount.state) != "created")
             .order_by(col(ShopDiscount.code)))
    return list(session.exec(query).all())


@dataclass
class Pushed:
    ok: bool
    reason: str | None = None  # shop_code_unavailable | shop_code_refused | shop_not_configured


def push(db: Database, codes: list[str], platforms: Mapping[str, DiscountPlatform],
         series: Mapping[str, CouponSeries], at: datetime) -> Pushed:
    """Create each code in its platform (or find it there); all created: ``ok``."""
    for code in codes:
        outcome = _push_one(db, code, platforms, series, at)
        if not outcome.ok:
            return outcome
    return Pushed(ok=True)


def _push_one(db: Database, code: str, platforms: Mapping[str, DiscountPlatform],
              series: Mapping[str, CouponSeries], at: datetime) -> Pushed:
    with session_scope(db) as session:
        row = session.get(ShopDiscount, code)
        coupon = session.get(Coupon, code)
        if row is None or coupon is None or row.state == "created":
            return Pushed(ok=True)
        spec, platform, series_name, platform_name = series.get(row.series), platforms.get(row.platform), \
            row.series, row.platform
        if spec is not None and platform is not None:
            customer = session.get(Customer, coupon.customer_id) if row.platform == "woocommerce" else None
            discount = Discount(code=code, kind=spec.type, value=spec.value, price_rule_id=spec.price_rule_id,
                                expires_at=coupon.expires_at, email=customer.email if customer else None)
            look_first = row.attempts > 0  # an earlier attempt may have created it
            row.attempts += 1
            row.updated_at = at
            session.add(row)
    if spec is None or platform is None:
        log.error("code of series %s: %s is not configured (see docs/%s.md); the text waits", series_name,
                  platform_name, platform_name)
        return _note(db, code, "failed", f"{platform_name} is not configured", "shop_not_configured")
    # The attempt is committed before the call: after a crash from here on, the next one looks first.
    for _ in range(ROUNDS):
        try:
            found = platform.find_discount(code) if look_first else None
            platform_id = found if found is not None else platform.create_discount(discount)
        except ShopUnavailable as err:
            if err.unknown:  # it may have it now: look before creating again
                look_first = True
                continue
            log.warning("code of series %s not created in %s yet: %s", series_name, platform_name, err)
            return _note(db, code, "pending", str(err), "shop_code_unavailable")
        except ShopRefused as err:
            log.error("%s refused a code of series %s: %s", platform_name, series_name, err)
            return _note(db, code, "failed", str(err), "shop_code_refused")
        _note(db, code, "created", None, None, platform_id=platform_id or None)
        return Pushed(ok=True)
    return _note(db, code, "pending", "outcome unknown", "shop_code_unavailable")


def _note(db: Database, code: str, state: str, error: str | None, reason: str | None, *,
          platform_id: str | None = None) -> Pushed:
    with session_scope(db) as session:
        row = session.get(ShopDiscount, code)
        if row is not None:
            row.state, row.error, row.updated_at = state, error[:200] if error else None, utcnow()
            if platform_id:
                row.platform_id = platform_id[:80]
            session.add(row)
    return Pushed(ok=reason is None, reason=reason)
