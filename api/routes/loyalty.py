"""A customer's loyalty account: balance, tier, ledger history and referral code."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel, Field

from api.deps import ServicesDep, require_token
from api.edge import EdgeRoute
from core.clock import utcnow
from core.customers.records import UnknownCustomer
from core.loyalty.ledger import load_account

router = APIRouter(prefix="/customers", tags=["loyalty"], dependencies=[Depends(require_token)], route_class=EdgeRoute)

CustomerIdPath = Annotated[str, Path(description="Your customer id (opaque: not an email or phone)",
                                     pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]


class LedgerEntryOut(BaseModel):
    occurred_at: datetime
    points: int = Field(description="Positive: earned; negative: a deduction")
    reason: str
    source: str = Field(description="purchase | punch_card | referral | journey:<id> | ...")
    expires_at: datetime | None
    expired: bool


class NextExpiryOut(BaseModel):
    at: datetime = Field(description="When the soonest points lapse")
    points: int = Field(description="Points lapsing that day (the customer's local date)")


class PointsOut(BaseModel):
    customer_id: str
    balance: int = Field(description="Points earned and not expired, now")
    tier: str | None = Field(description="The tier journeys see (a downgrade shows after the daily job)")
    earned_last_12_months: int = Field(description="What the tier follows")
    next_tier: str | None
    points_to_next_tier: int | None
    next_expiry: NextExpiryOut | None
    referral_code: str | None = Field(description="Given on first need when loyalty.yaml has a referral program")
    history: list[LedgerEntryOut] = Field(description="Ledger entries, newest first, at most `limit`")
    history_total: int = Field(description="How many ledger entries the customer has in all")


@router.get("/{customer_id}/points", response_model=PointsOut)
async def get_points(customer_id: CustomerIdPath, svc: ServicesDep,
                     limit: Annotated[int, Query(ge=1, le=1000, description="Ledger entries to return")] = 100,
                     ) -> PointsOut:
    """The customer's points: balance, tier, 12-month earnings, next expiry, referral
    code and the ledger history (newest first)."""
    try:
        account = await asyncio.to_thread(load_account, svc.db, customer_id, svc.catalog.loyalty, utcnow(),
                                          default_timezone=svc.catalog.settings.default_timezone, limit=limit)
    except UnknownCustomer:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no customer {customer_id!r}") from None
    return PointsOut(
        customer_id=account.customer_id, balance=account.balance, tier=account.tier,
        earned_last_12_months=account.earned_last_12_months, next_tier=account.next_tier,
        points_to_next_tier=account.points_to_next_tier,
        next_expiry=(NextExpiryOut(at=account.next_expiry_at, points=account.next_expiry_points)
                     if account.next_expiry_at else None),
        referral_code=account.referral_code,
        history=[LedgerEntryOut(occurred_at=e.occurred_at, points=e.points, reason=e.reason, source=e.source,
                                expires_at=e.expires_at, expired=e.expired) for e in account.history],
        history_total=account.history_total,
    )
