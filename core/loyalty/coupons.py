"""Coupons: issuing one (generated, or taken from an imported pool), looking a code up and
redeeming it for an order, and importing a pool of codes the shop's platform made.

One redemption rule for every path (POST /coupons/{code}/redeem at the checkout, a
purchase event's ``coupon_code``): a code is redeemed once, for one order, before it
expires; the same order again is the same redemption (idempotent), another order is a
conflict. See docs/loyalty.md "Coupons".
"""

from __future__ import annotations

import csv
import io
import logging
import secrets
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from core.customers.referral_codes import normalize_code
from language.config import CouponSeries
from store.tables import Coupon, Email, Message, PooledCoupon

log = logging.getLogger(__name__)

CODE_ALPHABET = string.ascii_uppercase + string.digits
MAX_IMPORT_CODES = 100_000  # per file: split a bigger pool into several imports
MAX_CODE_LENGTH = 32


class CouponPoolEmpty(Exception):
    """A ``pool: true`` series has no code left to issue (import more)."""

    def __init__(self, series: str) -> None:
        super().__init__(f"the coupon pool of series {series!r} is empty: import codes with "
                         f"`journeys coupons import {series} FILE.csv`")
        self.series = series


def issue(session: Session, series: str, spec: CouponSeries, *, key: str, customer_id: str, at: datetime,
          text: Message | Email | None = None) -> Coupon:
    """The coupon issued under ``key`` (once: a repeat returns the same one), generated or,
    for a ``pool`` series, taken from its pool. ``text``: the journey text or email it is
    issued in (its run, journey, version and step are recorded for the journey report).
    Raises CouponPoolEmpty."""
    found = session.exec(select(Coupon).where(Coupon.key == key)).first()
    if found is not None:
        return found
    code = _take_from_pool(session, series) if spec.pool else (spec.prefix or "") + _random_code(8)
    coupon = Coupon(code=code, series=series, key=key, customer_id=customer_id, issued_at=at,
                    expires_at=at + spec.expires_in if spec.expires_in else None)
    if text is not None:
        coupon.enrollment_id, coupon.journey_id = text.enrollment_id, text.journey_id
        coupon.journey_version, coupon.step_id = text.journey_version, text.step_id
    session.add(coupon)
    session.flush()
    return coupon


def _take_from_pool(session: Session, series: str) -> str:
    # SKIP LOCKED on PostgreSQL: concurrent issuers take different codes, nobody waits;
    # SQLite ignores FOR UPDATE, its writers are serialized (BEGIN IMMEDIATE).
    row = session.exec(select(PooledCoupon).where(PooledCoupon.series == series)
                       .order_by(col(PooledCoupon.imported_at), col(PooledCoupon.code)).limit(1)
                       .with_for_update(skip_locked=True)).first()
    if row is None:
        log.warning("coupon pool of series %s is empty: nothing issued", series)
        raise CouponPoolEmpty(series)
    session.delete(row)
    session.flush()
    return row.code


def _random_code(length: int) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


# --- the checkout ---------------------------------------------------------------------------

Reason = Literal["unknown", "expired", "redeemed", "not_yours"]


@dataclass
class CouponState:
    code: str
    valid: bool  # redeemable now
    reason: Reason | None  # why not
    series: str | None = None
    discount: str | None = None
    customer_id: str | None = None
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    redeemed_at: datetime | None = None
    redeemed_order_id: str | None = None


def state(coupon: Coupon | None, code: str, at: datetime, coupons: dict[str, CouponSeries],
          *, customer_id: str | None = None) -> CouponState:
    """What a code is worth at ``at`` (to ``customer_id``, when given)."""
    if coupon is None:
        return CouponState(code=code, valid=False, reason="unknown")
    spec = coupons.get(coupon.series)
    reason: Reason | None = None
    if coupon.redeemed_at is not None:
        reason = "redeemed"
    elif coupon.expires_at is not None and coupon.expires_at <= at:
        reason = "expired"
    elif customer_id is not None and coupon.customer_id != customer_id:
        reason = "not_yours"
    return CouponState(code=coupon.code, valid=reason is None, reason=reason, series=coupon.series,
                       discount=spec.discount if spec else None, customer_id=coupon.customer_id,
                       issued_at=coupon.issued_at, expires_at=coupon.expires_at, redeemed_at=coupon.redeemed_at,
                       redeemed_order_id=coupon.redeemed_order_id)


def lookup(session: Session, raw_code: str, at: datetime, coupons: dict[str, CouponSeries]) -> CouponState:
    code = normalize_code(raw_code) or ""
    return state(session.get(Coupon, code) if code else None, code, at, coupons)


@dataclass
class Redemption:
    state: CouponState
    redeemed: bool  # True: redeemed for this order (now, or by an earlier identical call)
    repeat: bool = False  # it had been redeemed for this very order before


def redeem(session: Session, raw_code: str, *, order_id: str, at: datetime, coupons: dict[str, CouponSeries],
           customer_id: str | None = None, event_id: str | None = None) -> Redemption:
    """Redeem a code for ``order_id`` at ``at``. With ``customer_id``, only that customer's
    code (codes are personal). Idempotent by (code, order): the same order again is the
    same redemption; one conditional UPDATE, so two orders cannot both redeem it."""
    code = normalize_code(raw_code) or ""
    query = (update(Coupon)
             .where(col(Coupon.code) == code, col(Coupon.redeemed_at).is_(None),
                    (col(Coupon.expires_at).is_(None)) | (col(Coupon.expires_at) > at))
             .values(redeemed_at=at, redeemed_event_id=event_id, redeemed_order_id=order_id))
    if customer_id is not None:
        query = query.where(col(Coupon.customer_id) == customer_id)
    done = session.execute(query).rowcount  # type: ignore[attr-defined]
    coupon = session.get(Coupon, code) if code else None
    if coupon is not None:
        session.refresh(coupon)
    found = state(coupon, code, at, coupons, customer_id=customer_id)
    if done:
        return Redemption(state=found, redeemed=True)
    if coupon is not None and coupon.redeemed_at is not None and coupon.redeemed_order_id == order_id:
        return Redemption(state=found, redeemed=True, repeat=True)
    return Redemption(state=found, redeemed=False)


# --- pools ----------------------------------------------------------------------------------


class PoolImportError(ValueError):
    """A file that cannot be imported; nothing was imported. ``problems``: one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems[:20]) + (f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""))
        self.problems = problems


def read_codes(text: str) -> list[str]:
    """The codes of a CSV: one code per line, or a header row with a ``code`` column.
    Raises PoolImportError naming every bad or repeated line (1-based)."""
    rows = list(csv.reader(io.StringIO(text)))
    column, start = 0, 0
    if rows and any(cell.strip().lower() == "code" for cell in rows[0]):
        column = [cell.strip().lower() for cell in rows[0]].index("code")
        start = 1
    codes: list[str] = []
    seen: dict[str, int] = {}
    problems: list[str] = []
    for number, row in enumerate(rows[start:], start=start + 1):
        if not any(cell.strip() for cell in row):
            continue  # blank lines
        raw = row[column] if column < len(row) else ""
        code = normalize_code(raw)
        if code is None:
            problems.append(f"line {number}: no code")
        elif len(code) > MAX_CODE_LENGTH or not code.isalnum() or not code.isascii():
            problems.append(f"line {number}: {raw.strip()[:40]!r} is not a code (letters and digits, at most "
                            f"{MAX_CODE_LENGTH})")
        elif code in seen:
            problems.append(f"line {number}: {code} repeats line {seen[code]}")
        else:
            seen[code] = number
            codes.append(code)
    if len(codes) > MAX_IMPORT_CODES:
        problems.append(f"{len(codes)} codes: at most {MAX_IMPORT_CODES} per file")
    if not codes and not problems:
        problems.append("no codes in the file")
    if problems:
        raise PoolImportError(problems)
    return codes


def import_pool(session: Session, series: str, codes: list[str], at: datetime) -> int:
    """Add the codes to the series' pool, all or none: a code already in a pool or already
    issued is refused (the whole file). Returns how many were added."""
    taken: set[str] = set()
    for start in range(0, len(codes), 1000):
        chunk = codes[start:start + 1000]
        taken |= set(session.exec(select(PooledCoupon.code).where(col(PooledCoupon.code).in_(chunk))).all())
        taken |= set(session.exec(select(Coupon.code).where(col(Coupon.code).in_(chunk))).all())
    if taken:
        raise PoolImportError([f"{code} is already imported or issued" for code in sorted(taken)])
    session.add_all(PooledCoupon(code=code, series=series, imported_at=at) for code in codes)
    session.flush()
    return len(codes)


def pool_size(session: Session, series: str) -> int:
    return int(session.exec(select(func.count()).select_from(PooledCoupon)
                            .where(PooledCoupon.series == series)).one())
