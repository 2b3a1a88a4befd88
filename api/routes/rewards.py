"""Spending points: POST /customers/{id}/rewards/{reward} (core/loyalty/rewards.py)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Path, status
from pydantic import BaseModel, Field

from api.deps import ServicesDep, require_token
from api.edge import EdgeRoute
from api.routes.loyalty import CustomerIdPath
from core.clock import utcnow
from core.customers.records import UnknownCustomer
from core.loyalty.rewards import MAX_KEY_LENGTH, RewardRefused, redeem

router = APIRouter(prefix="/customers", tags=["loyalty"], dependencies=[Depends(require_token)], route_class=EdgeRoute)

RewardPath = Annotated[str, Path(description="A reward of loyalty.yaml `rewards`", pattern=r"^[a-z][a-z0-9_]{0,63}$")]
_KEY = f"^[A-Za-z0-9_.:-]{{1,{MAX_KEY_LENGTH}}}$"


class RedeemIn(BaseModel):
    key: str | None = Field(default=None, pattern=_KEY,
                            description="The idempotency key, if not sent as the Idempotency-Key header")


class RewardOut(BaseModel):
    customer_id: str
    reward: str
    points: int = Field(description="Points spent (once per key)")
    balance: int = Field(description="The balance after")
    code: str = Field(description="The coupon code")
    series: str
    discount: str
    expires_at: datetime | None
    repeat: bool = Field(description="This key had redeemed it before: nothing more was spent")


_REFUSALS = {"unknown_reward": 422, "key_reused": status.HTTP_409_CONFLICT,
             "not_enough_points": status.HTTP_409_CONFLICT, "coupon_pool_empty": status.HTTP_409_CONFLICT}


@router.post("/{customer_id}/rewards/{reward}", response_model=RewardOut, responses={
    404: {"description": "No such customer"},
    409: {"description": "Refused, nothing spent: `not_enough_points: not enough points: 320 of 500`, "
                         "`key_reused`, `coupon_pool_empty`"},
    422: {"description": "No such reward, or no idempotency key"}})
async def redeem_reward(
    customer_id: CustomerIdPath, reward: RewardPath, svc: ServicesDep,
    idempotency_key: Annotated[str | None, Header(pattern=_KEY, description="Makes a retry safe: the same key "
                                                  "returns the same coupon and spends nothing more")] = None,
    body: Annotated[RedeemIn | None, Body()] = None,
) -> RewardOut:
    """Spend the reward's points for a coupon of its series. Never takes a balance below
    zero; idempotent by key (header `Idempotency-Key` or body `key`, one is required)."""
    key = idempotency_key or (body.key if body else None)
    if not key:
        raise HTTPException(422,
                            "an idempotency key is required: the Idempotency-Key header or the body's `key`")
    try:
        done = await asyncio.to_thread(redeem, svc.db, svc.catalog.loyalty, customer_id, reward, key=key,
                                       at=utcnow())
    except UnknownCustomer:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no customer {customer_id!r}") from None
    except RewardRefused as err:
        raise HTTPException(_REFUSALS.get(err.reason, status.HTTP_409_CONFLICT), f"{err.reason}: {err}") from None
    return RewardOut(customer_id=customer_id, reward=done.reward, points=done.points, balance=done.balance,
                     code=done.code, series=done.series, discount=done.discount, expires_at=done.expires_at,
                     repeat=done.repeat)
