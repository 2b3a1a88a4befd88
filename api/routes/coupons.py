"""Coupons at the checkout, for the shop's server (token): look a code up, redeem it for
an order (core/loyalty/coupons.py)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import ServicesDep, require_token
from api.edge import EdgeRoute
from core.clock import utcnow
from core.loyalty import coupons
from store.db import session_scope

router = APIRouter(prefix="/coupons", tags=["loyalty"], dependencies=[Depends(require_token)], route_class=EdgeRoute)

CodePath = Annotated[str, Path(description="The code as the customer typed it (any case, spaces or dashes)",
                               pattern=r"^[A-Za-z0-9 -]{1,64}$")]


class CouponOut(BaseModel):
    code: str
    valid: bool = Field(description="Redeemable now")
    reason: str | None = Field(description="Why not: expired | redeemed | not_yours")
    series: str | None
    discount: str | None = Field(description="The series' discount, as written in loyalty.yaml")
    customer_id: str | None = Field(description="Whose code it is (codes are personal)")
    issued_at: datetime | None
    expires_at: datetime | None
    redeemed_at: datetime | None
    redeemed_order_id: str | None


class RedeemIn(BaseModel):
    order_id: str = Field(pattern=r"^[^\x00-\x1f\x7f]{1,128}$",
                          description="The shop's order: the same order again is the same redemption")
    customer_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$",
                                    description="The buyer, if known: another customer's code is refused")


class RedemptionOut(CouponOut):
    redeemed: bool = Field(description="Redeemed for this order (now, or by an earlier call for it)")
    repeat: bool = Field(description="It had been redeemed for this order before")


def _out(state: coupons.CouponState) -> dict[str, Any]:
    return {"code": state.code, "valid": state.valid, "reason": state.reason, "series": state.series,
            "discount": state.discount, "customer_id": state.customer_id, "issued_at": state.issued_at,
            "expires_at": state.expires_at, "redeemed_at": state.redeemed_at,
            "redeemed_order_id": state.redeemed_order_id}


@router.get("/{code}", response_model=CouponOut, responses={404: {"description": "No such code"}})
async def get_coupon(code: CodePath, svc: ServicesDep) -> CouponOut:
    """Is the code valid now, whose is it, its discount and expiry."""
    def read() -> coupons.CouponState:
        with session_scope(svc.db, readonly=True) as session:
            return coupons.lookup(session, code, utcnow(), svc.catalog.loyalty.coupons)

    state = await asyncio.to_thread(read)
    if state.reason == "unknown":
        raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown: no such coupon code")
    return CouponOut(**_out(state))


@router.post("/{code}/redeem", response_model=RedemptionOut, responses={
    404: {"description": "No such code"},
    409: {"model": RedemptionOut, "description": "Not redeemed: already redeemed for another order, "
                                                 "another customer's code, or expired (`reason`)"}})
async def redeem_coupon(code: CodePath, body: RedeemIn, svc: ServicesDep) -> Any:
    """Redeem the code for an order, once. The same order again: 200, the same result."""
    def write() -> coupons.Redemption:
        with session_scope(svc.db) as session:
            return coupons.redeem(session, code, order_id=body.order_id, at=utcnow(),
                                  coupons=svc.catalog.loyalty.coupons, customer_id=body.customer_id)

    result = await asyncio.to_thread(write)
    if result.state.reason == "unknown":
        raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown: no such coupon code")
    out = RedemptionOut(**_out(result.state), redeemed=result.redeemed, repeat=result.repeat)
    if result.redeemed:
        out.valid, out.reason = False, None  # it was valid for this order; now it is used
        return out
    return JSONResponse(out.model_dump(mode="json"), status_code=status.HTTP_409_CONFLICT)
